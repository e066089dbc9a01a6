/*
 * dsg-spawn: the agent's optional native process starter (see packages/agent/src/executor/process-starter.ts).
 *
 * Why: starting a process from Node costs ~1-3 ms of the launcher's main thread (libuv forks the whole Node
 * process, then waits for exec); this small program starts a process without copying itself (clone with
 * CLONE_VM | CLONE_VFORK on Linux, as posix_spawn does; fork elsewhere), so per-task start-up leaves the Node
 * process altogether. It starts processes, streams their output and reports how they ended: timeouts, kills and
 * cgroups stay in TypeScript (the agent signals process groups itself).
 *
 * Admission: tasks sent with 'Q' wait here, in arrival order, until the resources they declare fit in the capacity
 * given with 'L' (the same rule as AdmissionExecutor: the head starts while it fits; a task bigger than the whole
 * capacity starts when nothing admitted runs). A core that frees takes the next task the moment its leader is
 * reaped, with no round trip through the agent's event loop: with short tasks that round trip, not the work, was
 * what kept cores idle (measured: 2,000 x `true` on 2 cores went from 0.36x to 0.55x of xargs when the agent
 * was merely given 8 slots instead of 2).
 *
 * Protocol, binary frames over stdin/stdout, integers little-endian:
 *   frame = u32 length of what follows, u8 kind, u32 id, payload
 *   in  'S' start:  u32 argc, u32 envc, u32 ncg, then NUL-terminated strings: cwd, argv[argc], env[envc],
 *                   cgroup.procs files[ncg] (the child writes its pid into each before exec)
 *       'Q' queued start: u64 cpu millis, u64 memory bytes, u64 thousandths of GPUs, then as 'S'; starts when it fits
 *       'L' capacity (id 0): u64 cpu millis, u64 memory bytes, u64 thousandths of GPUs   (before it, 'Q' starts at once)
 *       'K' cancel: a task that still waits is dropped ('F' with ECANCELED, stage "cancel"); else nothing
 *   out 'H' hello (id 0, payload "dsg-spawn 3")  'P' started: i32 pid, u64 start time (ms since the epoch)
 *       'F' failed: i32 errno, string stage   'O' stdout bytes   'E' stderr bytes   'X' exited: i32 wait status
 *       'C' closed (exited, both pipes at EOF); by then the helper has sent SIGKILL to the task's process group,
 *           so what the task left running dies with it (protocol 3; before, the agent did it on 'C', and paid for a
 *           thrown ESRCH each time the group was already gone)
 * Each task runs in a new session (its pid is its process group), stdin from /dev/null, default signal
 * handling and an empty signal mask, and no descriptor of this program (all are close-on-exec).
 * The program on argv[0] is looked up on the PATH of the task's environment, as Node's spawn does.
 * When stdin closes (its agent or launcher stopped, or died), dsg-spawn kills the process group of every task whose
 * leader it has not reaped yet (SIGKILL: nobody is left to report them; a group whose leader was reaped is not
 * signalled, since its number may already belong to another) and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mman.h>
#endif

#define MAX_FRAME (64u << 20)
#define READ_CHUNK 65536

struct res { uint64_t cpu, mem, gpus; };

struct task {
  uint32_t id;
  pid_t pid;
  int out, err; /* read ends, -1 once at EOF */
  int exited;
  int admitted;  /* holds `r` of the capacity until its leader is reaped */
  struct res r;
  struct task *next;
};

/* A task sent with 'Q' that waits for room: its resources and a copy of its start payload. */
struct waiting {
  uint32_t id;
  struct res r;
  unsigned char *p;
  size_t n;
  struct waiting *next;
};

static struct task *tasks;
static struct waiting *whead, *wtail;
static int have_cap;
static struct res cap, used;
static size_t admitted_running;
static int sig_pipe[2];
static unsigned char *obuf;
static size_t olen, ocap;

static void die(const char *what) {
  fprintf(stderr, "dsg-spawn: %s: %s\n", what, strerror(errno));
  exit(70);
}

static void out_reserve(size_t n) {
  if (olen + n <= ocap) return;
  while (olen + n > ocap) ocap = ocap ? ocap * 2 : 65536;
  obuf = realloc(obuf, ocap);
  if (!obuf) die("out of memory");
}
static void put32(unsigned char *p, uint32_t v) {
  p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = (v >> 24) & 0xff;
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void emit(char kind, uint32_t id, const void *payload, size_t n) {
  out_reserve(9 + n);
  put32(obuf + olen, (uint32_t)(5 + n));
  obuf[olen + 4] = (unsigned char)kind;
  put32(obuf + olen + 5, id);
  if (n) memcpy(obuf + olen + 9, payload, n);
  olen += 9 + n;
}
static void emit_i32(char kind, uint32_t id, int32_t v) {
  unsigned char b[4];
  put32(b, (uint32_t)v);
  emit(kind, id, b, 4);
}
/* 'F': a task that did not start, with the errno and the stage that failed. */
static void emit_failed(uint32_t id, int e, const char *stage) {
  unsigned char b[4 + 32];
  size_t n = strlen(stage);
  if (n > 32) n = 32;
  put32(b, (uint32_t)e);
  memcpy(b + 4, stage, n);
  emit('F', id, b, 4 + n);
}
static void flush_out(void) {
  size_t off = 0;
  while (off < olen) {
    ssize_t w = write(1, obuf + off, olen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = {1, POLLOUT, 0};
        poll(&p, 1, -1);
        continue;
      }
      exit(0); /* the launcher is gone */
    }
    off += (size_t)w;
  }
  olen = 0;
}

/*
 * The signals whose disposition is not the default here (what this program set, and any ignored one it inherited):
 * the only ones a child must put back before exec. Found once at start-up — resetting all 64 cost the child as many
 * system calls while this program waited on it (CLONE_VFORK).
 */
static int changed[NSIG];
static int n_changed;

static void note_changed_signals(void) {
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler != SIG_DFL) changed[n_changed++] = sig;
  }
}

static void on_sigchld(int sig) {
  (void)sig;
  int e = errno;
  ssize_t r = write(sig_pipe[1], "c", 1);
  (void)r;
  errno = e;
}

/* In the child: report errno and the stage that failed through the close-on-exec pipe, then exit. */
static void child_fail(int fd, const char *stage) {
  int e = errno;
  unsigned char b[4 + 32];
  put32(b, (uint32_t)e);
  size_t n = strlen(stage);
  if (n > 31) n = 31;
  memcpy(b + 4, stage, n);
  ssize_t r = write(fd, b, 4 + n);
  (void)r;
  _exit(127);
}

static void child_exec(char *const argv[], char *const envp[], int errfd) {
  const char *file = argv[0];
  if (!file || !*file) { errno = ENOENT; child_fail(errfd, "exec"); }
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    child_fail(errfd, "exec");
  }
  const char *path = NULL;
  for (char *const *e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) { path = *e + 5; break; }
  if (!path) path = "/usr/bin:/bin";
  size_t flen = strlen(file);
  int seen_eacces = 0;
  char buf[4096];
  for (const char *p = path;; ) {
    const char *end = strchr(p, ':');
    size_t dlen = end ? (size_t)(end - p) : strlen(p);
    if (dlen == 0) { dlen = 1; p = "."; } /* an empty entry is the working dir */
    if (dlen + 1 + flen + 1 <= sizeof buf) {
      memcpy(buf, p, dlen);
      buf[dlen] = '/';
      memcpy(buf + dlen + 1, file, flen + 1);
      execve(buf, argv, envp);
      if (errno == EACCES) seen_eacces = 1;
      else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG) child_fail(errfd, "exec");
    }
    if (!end) break;
    p = end + 1;
  }
  errno = seen_eacces ? EACCES : ENOENT;
  child_fail(errfd, "exec");
}

/* What the child needs between its start and exec. */
struct child_args {
  const char *cwd;
  char **argv, **envp, **cgs;
  uint32_t ncg;
  int out, err, fail; /* write ends: stdout, stderr, the failure pipe */
};

/*
 * The child, from its start to exec: default signal handling and an empty mask, a new session, into the task's
 * cgroups, its working dir, stdin from /dev/null and its output pipes. Only system calls and stack memory: on Linux
 * it shares this program's memory until exec (see start_child).
 */
static int child_main(void *arg) {
  const struct child_args *a = arg;
  for (int i = 0; i < n_changed; i++) signal(changed[i], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (setsid() < 0) child_fail(a->fail, "setsid");
  char num[24];
  int nl = snprintf(num, sizeof num, "%d\n", (int)getpid());
  for (uint32_t i = 0; i < a->ncg; i++) {
    int fd = open(a->cgs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, num, (size_t)nl) != nl) child_fail(a->fail, "cgroup");
    close(fd);
  }
  if (chdir(a->cwd) < 0) child_fail(a->fail, "chdir");
  int nul = open("/dev/null", O_RDONLY);
  if (nul < 0) child_fail(a->fail, "open /dev/null");
  if (dup2(nul, 0) < 0 || dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0) child_fail(a->fail, "dup2");
  if (nul > 2) close(nul);
  child_exec(a->argv, a->envp, a->fail);
  return 127;
}

/*
 * Start the child. On Linux as glibc's posix_spawn does: clone(CLONE_VM | CLONE_VFORK) onto a stack of its own, so
 * nothing is copied — no page tables, no copy-on-write faults in either process — and this program waits until the
 * child has exec'd or failed. Profiled on the 2-core VM, fork's page-table copy and the faults after it were most
 * of this program's ~1 ms of CPU per task. Elsewhere, fork.
 */
static pid_t start_child(struct child_args *a) {
#ifdef __linux__
  enum { STACK = 256 * 1024 };
  static char *stack;
  if (!stack) {
    stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) die("mmap");
  }
  return clone(child_main, stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
#else
  pid_t pid = fork();
  if (pid == 0) _exit(child_main(a));
  return pid;
#endif
}

static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }
/* Resources as 'Q' and 'L' carry them: cpu millis, memory bytes, thousandths of GPUs. */
static struct res get_res(const unsigned char *p) { return (struct res){ get64(p), get64(p + 8), get64(p + 16) }; }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Start a task now; the task on success, NULL when it failed to start (reported with 'F'). */
static struct task *start_task(uint32_t id, const unsigned char *p, size_t n) {
  if (n < 12) { errno = EINVAL; emit_i32('F', id, EINVAL); return NULL; }
  uint32_t argc = get32(p), envc = get32(p + 4), ncg = get32(p + 8);
  const char *s = (const char *)p + 12, *end = (const char *)p + n;
  uint32_t total = 1 + argc + envc + ncg;
  if (argc == 0 || total > (1u << 20)) goto bad;
  char **strs = malloc(sizeof(char *) * total);
  char **argv = malloc(sizeof(char *) * (argc + 1));
  char **envp = malloc(sizeof(char *) * (envc + 1));
  if (!strs || !argv || !envp) die("out of memory");
  for (uint32_t i = 0; i < total; i++) {
    const char *z = memchr(s, 0, (size_t)(end - s));
    if (!z) { free(strs); free(argv); free(envp); goto bad; }
    strs[i] = (char *)s;
    s = z + 1;
  }
  const char *cwd = strs[0];
  for (uint32_t i = 0; i < argc; i++) argv[i] = strs[1 + i];
  argv[argc] = NULL;
  for (uint32_t i = 0; i < envc; i++) envp[i] = strs[1 + argc + i];
  envp[envc] = NULL;
  char **cgs = strs + 1 + argc + envc;

  int po[2], pe[2], perr[2];
  if (pipe2(po, O_CLOEXEC) < 0) die("pipe");
  if (pipe2(pe, O_CLOEXEC) < 0) die("pipe");
  if (pipe2(perr, O_CLOEXEC) < 0) die("pipe");
  struct child_args a = { cwd, argv, envp, cgs, ncg, po[1], pe[1], perr[1] };
  /* All signals blocked across the start: the child must not run this program's SIGCHLD handler before it has
     put every handler back to the default. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t pid = start_child(&a);
  int start_errno = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    int e = start_errno;
    close(po[0]); close(po[1]); close(pe[0]); close(pe[1]); close(perr[0]); close(perr[1]);
    emit_failed(id, e, "fork");
    free(strs); free(argv); free(envp);
    return NULL;
  }
  close(po[1]); close(pe[1]); close(perr[1]);
  free(strs); free(argv); free(envp);
  unsigned char fb[4 + 32];
  ssize_t r;
  do r = read(perr[0], fb, sizeof fb); while (r < 0 && errno == EINTR);
  close(perr[0]);
  if (r >= 4) {
    /* exec (or a step before it) failed: the child is exiting; reap it now. */
    close(po[0]); close(pe[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    emit('F', id, fb, (size_t)r);
    return NULL;
  }
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  struct task *t = calloc(1, sizeof *t);
  if (!t) die("out of memory");
  t->id = id; t->pid = pid; t->out = po[0]; t->err = pe[0];
  t->next = tasks; tasks = t;
  {
    unsigned char b[12];
    uint64_t at = now_ms();
    put32(b, (uint32_t)pid);
    put32(b + 4, (uint32_t)at);
    put32(b + 8, (uint32_t)(at >> 32));
    emit('P', id, b, sizeof b);
  }
  return t;
bad:
  emit_failed(id, EINVAL, "frame");
  return NULL;
}

/* Admission (see the top of this file). */
static int fits(const struct res *r) {
  if (!have_cap || admitted_running == 0) return 1;
  return used.cpu + r->cpu <= cap.cpu && used.mem + r->mem <= cap.mem && used.gpus + r->gpus <= cap.gpus;
}

static void admit(struct task *t, const struct res *r) {
  t->admitted = 1;
  t->r = *r;
  used.cpu += r->cpu; used.mem += r->mem; used.gpus += r->gpus;
  admitted_running++;
}

static void release(struct task *t) {
  if (!t->admitted) return;
  t->admitted = 0;
  used.cpu -= t->r.cpu; used.mem -= t->r.mem; used.gpus -= t->r.gpus;
  admitted_running--;
}

/* Start waiting tasks from the head while they fit. */
static void pump(void) {
  while (whead && fits(&whead->r)) {
    struct waiting *w = whead;
    whead = w->next;
    if (!whead) wtail = NULL;
    struct task *t = start_task(w->id, w->p, w->n);
    if (t) admit(t, &w->r);
    free(w->p);
    free(w);
  }
}

static void enqueue(uint32_t id, const unsigned char *p, size_t n) {
  if (n < 24) {
    emit_failed(id, EINVAL, "frame");
    return;
  }
  struct waiting *w = calloc(1, sizeof *w);
  if (!w) die("out of memory");
  w->id = id;
  w->r = get_res(p);
  w->n = n - 24;
  w->p = malloc(w->n ? w->n : 1);
  if (!w->p) die("out of memory");
  memcpy(w->p, p + 24, w->n);
  if (wtail) wtail->next = w; else whead = w;
  wtail = w;
  pump();
}

static void cancel_waiting(uint32_t id) {
  for (struct waiting **pp = &whead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
    struct waiting *w = *pp;
    if (w->id != id) continue;
    *pp = w->next;
    if (wtail == w) wtail = prev;
    emit_failed(id, ECANCELED, "cancel");
    free(w->p);
    free(w);
    return;
  }
}

static void maybe_close(struct task *t) {
  if (!t->exited || t->out >= 0 || t->err >= 0) return;
  /* Leftovers of the task (background children that closed its pipes) die with it. Not when a task started since
     has the same pid: the number is that task's group now. */
  int reused = 0;
  for (struct task *o = tasks; o; o = o->next)
    if (o != t && o->pid == t->pid && !o->exited) reused = 1;
  if (!reused) kill(-t->pid, SIGKILL);
  emit('C', t->id, NULL, 0);
  for (struct task **pp = &tasks; *pp; pp = &(*pp)->next)
    if (*pp == t) { *pp = t->next; break; }
  free(t);
}

static void drain(struct task *t, int *fd, char kind) {
  static unsigned char buf[READ_CHUNK];
  for (;;) {
    ssize_t r = read(*fd, buf, sizeof buf);
    if (r > 0) { emit(kind, t->id, buf, (size_t)r); if (r < (ssize_t)sizeof buf) return; continue; }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    close(*fd);
    *fd = -1;
    return;
  }
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (struct task *t = tasks; t; t = t->next) {
      if (t->pid != pid) continue;
      t->exited = 1;
      release(t);
      emit_i32('X', t->id, status);
      /* Read what is already in the pipes before reporting the end. */
      if (t->out >= 0) drain(t, &t->out, 'O');
      if (t->err >= 0) drain(t, &t->err, 'E');
      maybe_close(t);
      break;
    }
  }
  pump(); /* the cores that freed take the next waiting tasks */
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) { puts("dsg-spawn 3"); return 0; }
  signal(SIGPIPE, SIG_IGN);
  /* Ctrl-C and a supervisor's SIGTERM reach the agent's whole process group, this helper too: like the launcher, it
     ignores them and lives exactly as long as its stdin (the agent decides what happens to the tasks it started). */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  note_changed_signals();
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(1, F_SETFD, FD_CLOEXEC);
  emit('H', 0, "dsg-spawn 3", 11);
  flush_out();

  unsigned char *ibuf = NULL;
  size_t ilen = 0, icap = 0;
  int in_open = 1;
  struct pollfd *pfds = NULL;
  struct task **owners = NULL;
  size_t pcap = 0;
  while (in_open || tasks) {
    size_t ntasks = 0;
    for (struct task *t = tasks; t; t = t->next) ntasks++;
    size_t need = 2 + 2 * ntasks;
    if (need > pcap) {
      pcap = need * 2;
      pfds = realloc(pfds, pcap * sizeof *pfds);
      owners = realloc(owners, pcap * sizeof *owners);
      if (!pfds || !owners) die("out of memory");
    }
    size_t np = 0;
    pfds[np++] = (struct pollfd){sig_pipe[0], POLLIN, 0};
    pfds[np++] = (struct pollfd){in_open ? 0 : -1, POLLIN, 0};
    for (struct task *t = tasks; t; t = t->next) {
      if (t->out >= 0) { owners[np] = t; pfds[np++] = (struct pollfd){t->out, POLLIN, 0}; }
      if (t->err >= 0) { owners[np] = t; pfds[np++] = (struct pollfd){t->err, POLLIN, 0}; }
    }
    if (poll(pfds, np, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (size_t i = 2; i < np; i++) {
      if (!pfds[i].revents) continue;
      struct task *t = owners[i];
      if (pfds[i].fd == t->out) drain(t, &t->out, 'O');
      else if (pfds[i].fd == t->err) drain(t, &t->err, 'E');
      maybe_close(t);
    }
    if (pfds[0].revents) {
      char junk[256];
      while (read(sig_pipe[0], junk, sizeof junk) > 0) {}
      reap();
    }
    if (pfds[1].revents) {
      if (ilen + READ_CHUNK > icap) {
        icap = (ilen + READ_CHUNK) * 2;
        ibuf = realloc(ibuf, icap);
        if (!ibuf) die("out of memory");
      }
      ssize_t r = read(0, ibuf + ilen, icap - ilen);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) in_open = 0;
      else if (r > 0) ilen += (size_t)r;
      size_t off = 0;
      while (ilen - off >= 4) {
        uint32_t len = get32(ibuf + off);
        if (len < 5 || len > MAX_FRAME) { fprintf(stderr, "dsg-spawn: bad frame length %u\n", len); return 65; }
        if (ilen - off - 4 < len) break;
        unsigned char kind = ibuf[off + 4];
        uint32_t id = get32(ibuf + off + 5);
        if (kind == 'S') start_task(id, ibuf + off + 9, len - 5);
        else if (kind == 'Q') enqueue(id, ibuf + off + 9, len - 5);
        else if (kind == 'K') cancel_waiting(id);
        else if (kind == 'L' && len - 5 >= 24) {
          cap = get_res(ibuf + off + 9);
          have_cap = 1;
          pump();
        }
        off += 4 + len;
      }
      memmove(ibuf, ibuf + off, ilen - off);
      ilen -= off;
      if (!in_open) {
        /* Nobody is left to run or report them: waiting tasks are dropped, not started. */
        while (whead) { struct waiting *w = whead; whead = w->next; free(w->p); free(w); }
        wtail = NULL;
        reap();
        for (struct task *t = tasks; t; t = t->next)
          if (!t->exited) kill(-t->pid, SIGKILL);
        break;
      }
    }
    flush_out();
  }
  flush_out();
  return 0;
}
