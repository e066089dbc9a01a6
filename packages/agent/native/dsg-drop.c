/*
 * dsg-drop: the agent's own way to start a task as an unprivileged user, where util-linux `setpriv` was used
 * (packages/agent/src/executor/sandbox.ts, `dropPrivilegesArgv`). Run as root (inside the sandbox, or alone when
 * there is none):
 *
 *   dsg-drop UID GID -- PROGRAM [ARG...]
 *
 * does what `setpriv --reuid=UID --regid=GID --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --`
 * did, and checks each step: every capability dropped from the bounding set, supplementary groups cleared, real,
 * effective and saved gid and uid set (and read back), the inheritable and ambient sets emptied (the permitted and
 * effective ones are emptied by the change of uid from 0), no_new_privs set; then PROGRAM is run from the task's
 * PATH. Any step that fails ends it before the task runs, with exit code 126 and what failed on stderr; a PROGRAM
 * that cannot be run ends it with 127 (126 when found but not executable), as a shell would.
 *
 * Why not setpriv: it links libcap-ng and sets up locales, and that start-up was ~5.5 ms of CPU per task on the
 * 2-core VM (its exec, dynamic loading and initialisation) against ~2.2 ms for this program, in a sandboxed start
 * that costs ~27 ms in all. Optional like dsg-spawn: without a compiler the agent uses setpriv, as before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static void fail(const char *what) {
  fprintf(stderr, "dsg-drop: %s: %s (the task was not started)\n", what, strerror(errno));
  exit(126);
}

/* A user or group id: decimal digits only, 1 .. 2^31-1 (never root's, never -1). */
static long parse_id(const char *s) {
  if (!*s || strlen(s) > 10) return -1;
  long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  return v >= 1 && v <= 0x7fffffffL ? v : -1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    puts("dsg-drop 1");
    return 0;
  }
  long uid = argc > 4 ? parse_id(argv[1]) : -1, gid = argc > 4 ? parse_id(argv[2]) : -1;
  if (argc < 5 || strcmp(argv[3], "--") != 0 || uid < 0 || gid < 0) {
    fprintf(stderr, "usage: dsg-drop UID GID -- PROGRAM [ARG...]   (UID and GID: 1 or more)\n");
    return 126;
  }
  /* The bounding set first: dropping from it needs CAP_SETPCAP, which the change of uid takes away. */
  for (int cap = 0;; cap++) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      fail("reading the capability bounding set");
    }
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) fail("dropping a capability from the bounding set");
  }
  if (setgroups(0, NULL) < 0) fail("clearing the supplementary groups");
  if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0) fail("setting the group id");
  if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0) fail("setting the user id");
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0) fail("reading the ids back");
  if (ru != (uid_t)uid || eu != (uid_t)uid || su != (uid_t)uid || rg != (gid_t)gid || eg != (gid_t)gid || sg != (gid_t)gid) {
    errno = EPERM;
    fail("the ids did not change");
  }
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capset, &h, d) < 0) fail("clearing the capability sets");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) fail("clearing the ambient capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("setting no_new_privs");
  execvp(argv[4], argv + 4);
  int e = errno;
  fprintf(stderr, "dsg-drop: cannot run %s: %s\n", argv[4], strerror(e));
  return e == EACCES ? 126 : 127;
}
