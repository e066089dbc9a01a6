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
 *       'K' cancel: a task that still waits is dropped, and one whose start is under way is killed (its exec may
 *           hang: a program on an NFS mount that stopped answering), each then ends with 'F' ECANCELED, stage
 *           "cancel"; a task already reported started: nothing (the agent signals its group)
 *   out 'H' hello (id 0, payload "dsg-spawn 4")  'P' started: i32 pid, u64 start time (ms since the epoch)
 *       'F' failed: i32 errno, string stage   'O' stdout bytes   'E' stderr bytes   'X' exited: i32 wait status
 *       'C' closed (exited, both pipes at EOF); by then the helper has sent SIGKILL to the task's process group,
 *           so what the task left running dies with it (protocol 3; before, the agent did it on 'C', and paid for a
 *           thrown ESRCH each time the group was already gone)
 *       'W' slow start: u64 when its start began (ms since the epoch; for an admitted task, when it left the queue).
 *           Sent once, for a start not over SLOW_START_MS after it began (its exec may hang): the agent counts an
 *           admitted task's time limit from then, so a start that never finishes still times out (protocol 4; a
 *           start that is quick, nearly all of them, costs no frame more)
 * Output frames are written as they come while no task waits for room, and held up to HOLD_MS (or HOLD_BYTES) while
 * some do, then sent in one write (see "Holding output back"); the frames and their order are the same either way.
 * Each task runs in a new session (its pid is its process group), stdin from /dev/null, default signal
 * handling and an empty signal mask, and no descriptor of this program (all are close-on-exec).
 * The program on argv[0] is looked up on the PATH of the task's environment, as Node's spawn does.
 * When stdin closes (its agent or launcher stopped, or died), dsg-spawn kills the process group of every task whose
 * leader it has not reaped yet (SIGKILL: nobody is left to report them; a group whose leader was reaped is not
 * signalled, since its number may already belong to another), and of each task whose start was still under way as
 * soon as that start is over, and exits. Starts run on threads of their own (see "Starting a child").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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
  int killed;    /* sent SIGKILL at the end (stdin closed) */
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
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }
/* Resources as 'Q' and 'L' carry them: cpu millis, memory bytes, thousandths of GPUs. */
static struct res get_res(const unsigned char *p) { return (struct res){ get64(p), get64(p + 8), get64(p + 16) }; }
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

/* The highest descriptor this program has made (only the main thread makes them; a child reads it). */
static volatile int fd_high = 2;
static void note_fds(const int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] > fd_high) fd_high = fds[i];
}

/* In the child: close every descriptor from `lo` up (close_range where the kernel has it, Linux 5.9+). */
static void close_from(int lo) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lo, ~0u, 0u) == 0) return;
#endif
  for (int fd = lo, hi = fd_high; fd <= hi; fd++) close(fd);
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
  /* Descriptors first, before anything that can block: starts run side by side (see "Starting a child"), so this
     child holds a copy of every pipe this program had open when it was cloned, other tasks' included, and one that
     waited with them (a hung exec) would keep those tasks' pipes from ever reaching EOF. Its own: stdout and
     stderr on 1 and 2, the failure pipe on 3 (close-on-exec); everything else above 3 is closed. */
  if (dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0) child_fail(a->fail, "dup2");
  int fail = a->fail;
  if (fail != 3) {
    if (dup2(fail, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0) child_fail(fail, "dup2");
    fail = 3;
  }
  close_from(4);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (setsid() < 0) child_fail(fail, "setsid");
  char num[24];
  int nl = snprintf(num, sizeof num, "%d\n", (int)getpid());
  for (uint32_t i = 0; i < a->ncg; i++) {
    int fd = open(a->cgs[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, num, (size_t)nl) != nl) child_fail(fail, "cgroup");
    close(fd);
  }
  if (chdir(a->cwd) < 0) child_fail(fail, "chdir");
  int nul = open("/dev/null", O_RDONLY);
  if (nul < 0) child_fail(fail, "open /dev/null");
  if (dup2(nul, 0) < 0) child_fail(fail, "dup2");
  if (nul > 2) close(nul);
  child_exec(a->argv, a->envp, fail);
  return 127;
}

/*
 * Starting a child: on Linux as glibc's posix_spawn does, clone(CLONE_VM | CLONE_VFORK) onto a stack of its own, so
 * nothing is copied — no page tables, no copy-on-write faults in either process. Profiled on the 2-core VM, fork's
 * page-table copy and the faults after it were most of this program's ~1 ms of CPU per task. Elsewhere, fork.
 *
 * CLONE_VFORK suspends the calling thread until the child has exec'd or failed (~55 µs for `true` on a VM that
 * forks fast). Done on the main thread, that wait held up everything else: a task that ended could not be reaped,
 * nor the next one started, while another exec'd — with two cores and short tasks, this program alone started
 * 0.74x of what `xargs -P2` did. Worse, an exec that hangs (a program on an NFS mount that stopped answering)
 * froze every task of the agent: no output, no end reported. So starts happen on spawner threads of their own (a
 * thread's vfork suspends only that thread): the main thread parses the frame and makes the pipes, a spawner
 * clones, waits for the exec and hands the outcome back through a pipe; the main thread then registers the task
 * and reports 'P'. One more spawner is made whenever more starts wait than spawners are free, up to MAX_SPAWNERS,
 * so a start that hangs holds up only itself. Tasks are reaped by pid (registered ones only), so a child that
 * ends before its start was handed back is never taken from under its spawner.
 */
#define MAX_SPAWNERS 8
/* A start not over this long after it began is told to the agent ('W'). */
#define SLOW_START_MS 500

struct start {
  uint32_t id;
  int admitted;      /* holds `r` of the capacity from the moment it is handed to a spawner */
  struct res r;
  unsigned char *payload;
  char **strs, **argv, **envp;
  struct child_args a;
  int out, err, fail; /* read ends */
  /* The child's pid as soon as it exists (CLONE_PARENT_SETTID writes it before the spawner waits for the exec),
     so that a cancel can kill a child whose exec hangs. 0 before. */
  volatile pid_t child;
  int cancelled;     /* 'K' came while it was starting: the child was killed; reported as cancelled, not started */
  int reaped;        /* its exec failed and its spawner reaps it (under sq_mu) */
  uint64_t since;    /* when it was handed to a spawner (main thread) */
  int told_slow;     /* 'W' was sent for it */
  struct start *iprev, *inext; /* the main thread's list of starts in flight */
  /* Filled by the spawner. */
  pid_t pid;
  int start_errno;
  unsigned char fb[4 + 32];
  ssize_t fbn;
  uint64_t at;
  struct start *next;
};

static pthread_mutex_t sq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sq_cv = PTHREAD_COND_INITIALIZER;
static struct start *sq_head, *sq_tail;
static int sq_len, spawners, idle_spawners; /* under sq_mu */
static int done_pipe[2]; /* spawner → main: a struct start * per finished start */
static size_t inflight;  /* handed to a spawner, outcome not read yet */
static struct start *inflight_list; /* the same starts (main thread only) */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A spawner hands a start that is over back to the main thread (see start_done). */
static void hand_back(struct start *st) {
  ssize_t w;
  do w = write(done_pipe[1], &st, sizeof st); while (w < 0 && errno == EINTR);
  if (w != (ssize_t)sizeof st) die("done pipe");
}

static void *spawner(void *arg) {
  (void)arg;
#ifdef __linux__
  enum { STACK = 256 * 1024 };
  char *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) die("mmap");
#endif
  /* Every signal stays blocked in this thread (it was created so): SIGCHLD goes to the main thread, and a child
     starts with all signals blocked, so it cannot run this program's handler before it has put them back. */
  for (;;) {
    pthread_mutex_lock(&sq_mu);
    idle_spawners++;
    while (!sq_head) pthread_cond_wait(&sq_cv, &sq_mu);
    idle_spawners--;
    struct start *st = sq_head;
    sq_head = st->next;
    if (!sq_head) sq_tail = NULL;
    sq_len--;
    int skip = st->cancelled;
    pthread_mutex_unlock(&sq_mu);
    if (skip) {
      st->pid = -1;
      st->start_errno = ECANCELED;
      close(st->a.out); close(st->a.err); close(st->a.fail); close(st->fail);
      hand_back(st);
      continue;
    }
#ifdef __linux__
    st->pid = clone(child_main, stack + STACK, CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD, &st->a, (pid_t *)&st->child);
#else
    st->pid = fork();
    if (st->pid == 0) _exit(child_main(&st->a));
    st->child = st->pid;
#endif
    st->start_errno = errno;
    st->at = now_ms();
    close(st->a.out); close(st->a.err); close(st->a.fail);
    st->fbn = 0;
    if (st->pid > 0) {
      ssize_t r;
      do r = read(st->fail, st->fb, sizeof st->fb); while (r < 0 && errno == EINTR);
      st->fbn = r;
      /* exec (or a step before it) failed: the child is exiting; reap it here (the main thread never waits for a
         pid it has not registered). */
      if (r >= 4) {
        pthread_mutex_lock(&sq_mu);
        st->reaped = 1; /* from now on its number may be reused: a cancel must not signal it */
        pthread_mutex_unlock(&sq_mu);
        while (waitpid(st->pid, NULL, 0) < 0 && errno == EINTR) {}
      }
    }
    close(st->fail);
    hand_back(st);
  }
  return NULL;
}

/* One more spawner thread (the caller holds sq_mu). It starts with every signal blocked (see spawner). */
static void add_spawner(void) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t th;
  int e = pthread_create(&th, NULL, spawner, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    if (spawners > 0) return; /* the ones there are will do */
    errno = e;
    die("pthread_create");
  }
  pthread_detach(th);
  spawners++;
}

static void start_spawners(void) {
  if (pipe2(done_pipe, O_CLOEXEC) < 0) die("pipe");
  note_fds(done_pipe, 2);
  note_fds(sig_pipe, 2);
  fcntl(done_pipe[0], F_SETFL, O_NONBLOCK);
  pthread_mutex_lock(&sq_mu);
  add_spawner();
  pthread_mutex_unlock(&sq_mu);
}

static void use(struct res r) { used.cpu += r.cpu; used.mem += r.mem; used.gpus += r.gpus; admitted_running++; }
static void unuse(struct res r) { used.cpu -= r.cpu; used.mem -= r.mem; used.gpus -= r.gpus; admitted_running--; }

/*
 * Hand a start to a spawner (the payload is taken over: freed once the start is over). An admitted start holds its
 * resources from now on. A frame that does not parse is reported with 'F' at once.
 */
static void request_start(uint32_t id, unsigned char *p, size_t n, int admitted, struct res r) {
  if (n < 12) { free(p); emit_failed(id, EINVAL, "frame"); return; }
  uint32_t argc = get32(p), envc = get32(p + 4), ncg = get32(p + 8);
  const char *s = (const char *)p + 12, *end = (const char *)p + n;
  uint32_t total = 1 + argc + envc + ncg;
  if (argc == 0 || total > (1u << 20)) { free(p); emit_failed(id, EINVAL, "frame"); return; }
  struct start *st = calloc(1, sizeof *st);
  char **strs = malloc(sizeof(char *) * total);
  char **argv = malloc(sizeof(char *) * (argc + 1));
  char **envp = malloc(sizeof(char *) * (envc + 1));
  if (!st || !strs || !argv || !envp) die("out of memory");
  for (uint32_t i = 0; i < total; i++) {
    const char *z = memchr(s, 0, (size_t)(end - s));
    if (!z) { free(st); free(strs); free(argv); free(envp); free(p); emit_failed(id, EINVAL, "frame"); return; }
    strs[i] = (char *)s;
    s = z + 1;
  }
  for (uint32_t i = 0; i < argc; i++) argv[i] = strs[1 + i];
  argv[argc] = NULL;
  for (uint32_t i = 0; i < envc; i++) envp[i] = strs[1 + argc + i];
  envp[envc] = NULL;
  int po[2], pe[2], perr[2];
  if (pipe2(po, O_CLOEXEC) < 0) die("pipe");
  if (pipe2(pe, O_CLOEXEC) < 0) die("pipe");
  if (pipe2(perr, O_CLOEXEC) < 0) die("pipe");
  note_fds(po, 2); note_fds(pe, 2); note_fds(perr, 2);
  st->id = id; st->admitted = admitted; st->r = r; st->payload = p; st->since = now_ms();
  st->strs = strs; st->argv = argv; st->envp = envp;
  st->a = (struct child_args){ strs[0], argv, envp, strs + 1 + argc + envc, ncg, po[1], pe[1], perr[1] };
  st->out = po[0]; st->err = pe[0]; st->fail = perr[0];
  if (admitted) use(r);
  inflight++;
  st->inext = inflight_list;
  if (inflight_list) inflight_list->iprev = st;
  inflight_list = st;
  pthread_mutex_lock(&sq_mu);
  if (sq_tail) sq_tail->next = st; else sq_head = st;
  sq_tail = st;
  sq_len++;
  if (sq_len > idle_spawners && spawners < MAX_SPAWNERS) add_spawner();
  pthread_cond_signal(&sq_cv);
  pthread_mutex_unlock(&sq_mu);
}

/* A start is over (read from done_pipe): register the task and report 'P', or report why it did not start. */
static void start_done(struct start *st) {
  inflight--;
  if (st->iprev) st->iprev->inext = st->inext; else inflight_list = st->inext;
  if (st->inext) st->inext->iprev = st->iprev;
  free(st->strs); free(st->argv); free(st->envp); free(st->payload);
  if (st->cancelled) {
    /* Cancelled while it started: never cloned, or killed before or just after its exec (its group too, then its
       status is collected here). Reported as not started. */
    if (st->pid > 0 && st->fbn < 4) { /* (a failed exec's child was reaped by its spawner) */
      kill(st->pid, SIGKILL);
      kill(-st->pid, SIGKILL);
      while (waitpid(st->pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    close(st->out); close(st->err);
    if (st->admitted) unuse(st->r);
    emit_failed(st->id, ECANCELED, "cancel");
    free(st);
    return;
  }
  if (st->pid < 0 || st->fbn >= 4) {
    close(st->out); close(st->err);
    if (st->admitted) unuse(st->r);
    if (st->pid < 0) emit_failed(st->id, st->start_errno, "fork");
    else emit('F', st->id, st->fb, (size_t)st->fbn);
    free(st);
    return;
  }
  fcntl(st->out, F_SETFL, O_NONBLOCK);
  fcntl(st->err, F_SETFL, O_NONBLOCK);
  struct task *t = calloc(1, sizeof *t);
  if (!t) die("out of memory");
  t->id = st->id; t->pid = st->pid; t->out = st->out; t->err = st->err;
  t->admitted = st->admitted; t->r = st->r;
  t->next = tasks; tasks = t;
  unsigned char b[12];
  put32(b, (uint32_t)st->pid);
  put32(b + 4, (uint32_t)st->at);
  put32(b + 8, (uint32_t)(st->at >> 32));
  emit('P', st->id, b, sizeof b);
  free(st);
}

/* Read every start that is over; `wait`: block until at least one is (or none is in flight). */
static void collect_starts(int wait) {
  for (;;) {
    struct start *st;
    ssize_t r = read(done_pipe[0], &st, sizeof st);
    if (r == (ssize_t)sizeof st) { start_done(st); wait = 0; continue; }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN && wait && inflight > 0) {
      struct pollfd p = {done_pipe[0], POLLIN, 0};
      poll(&p, 1, -1);
      continue;
    }
    return;
  }
}

/* Tell the agent of each start under way for SLOW_START_MS or more ('W', once); return the poll timeout (ms) until
   the next one is due, or -1 when none is in flight. */
static int tell_slow_starts(void) {
  if (!inflight_list) return -1;
  uint64_t now = now_ms();
  int wait = -1;
  for (struct start *st = inflight_list; st; st = st->inext) {
    if (st->told_slow || st->cancelled) continue;
    uint64_t due = st->since + SLOW_START_MS;
    if (now >= due) {
      unsigned char b[8];
      put32(b, (uint32_t)st->since);
      put32(b + 4, (uint32_t)(st->since >> 32));
      emit('W', st->id, b, sizeof b);
      st->told_slow = 1;
    } else if (wait < 0 || due - now < (uint64_t)wait) wait = (int)(due - now);
  }
  return wait;
}

/*
 * Holding output back. While tasks wait here for room, the agent has nothing urgent to learn: every core that frees
 * has already taken its next task. Frames then wait up to HOLD_MS (or until HOLD_BYTES are pending) and go out in one
 * write, so the agent wakes once for several tasks' starts and ends rather than once or twice per task. Once no task
 * waits, everything goes out at once, as before (an idle grid's starts and ends are not delayed). Measured on the
 * 2-core VM under `dsg up` with 10,000 x `true` (four alternated pairs): the agent's CPU per task 89-107 -> 54-58 us.
 */
#define HOLD_MS 3
#define HOLD_BYTES (64u << 10)
static uint64_t held_since; /* when the pending output was first held (monotonic ms); 0: not held */

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u; /* never 0 */
}

/* Write what is pending, or hold it (see above); returns the poll timeout, `wait` shortened to the hold's end. */
static int flush_or_hold(int wait) {
  if (olen == 0) { held_since = 0; return wait; }
  if (whead && olen < HOLD_BYTES) {
    uint64_t now = mono_ms();
    if (!held_since) held_since = now;
    if (now < held_since + HOLD_MS) {
      int left = (int)(held_since + HOLD_MS - now);
      return wait < 0 || wait > left ? left : wait;
    }
  }
  flush_out();
  held_since = 0;
  return wait;
}

/* Admission (see the top of this file). */
static int fits(const struct res *r) {
  if (!have_cap || admitted_running == 0) return 1;
  return used.cpu + r->cpu <= cap.cpu && used.mem + r->mem <= cap.mem && used.gpus + r->gpus <= cap.gpus;
}

static void release(struct task *t) {
  if (!t->admitted) return;
  t->admitted = 0;
  unuse(t->r);
}

/* Start waiting tasks from the head while they fit. */
static void pump(void) {
  while (whead && fits(&whead->r)) {
    struct waiting *w = whead;
    whead = w->next;
    if (!whead) wtail = NULL;
    request_start(w->id, w->p, w->n, 1, w->r); /* takes w->p */
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

/* 'K': a task that still waits is dropped; one whose start is under way (its exec may hang) is killed. */
static void cancel_waiting(uint32_t id) {
  for (struct start *st = inflight_list; st; st = st->inext) {
    if (st->id != id) continue;
    pthread_mutex_lock(&sq_mu);
    pid_t child = st->child;
    /* Killed under the lock: a failed child's spawner marks it reaped (under the lock) before it reaps it. */
    if (!st->cancelled && child > 0 && !st->reaped) kill(child, SIGKILL);
    st->cancelled = 1; /* a spawner that has not cloned yet skips it */
    pthread_mutex_unlock(&sq_mu);
    return;
  }
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

/* At the end (stdin closed): SIGKILL to the group of every task whose leader was not reaped (a reaped one's number
   may already belong to another group), once each. */
static void kill_unreaped(void) {
  for (struct task *t = tasks; t; t = t->next)
    if (!t->exited && !t->killed) {
      kill(-t->pid, SIGKILL);
      t->killed = 1;
    }
}

/* Reap the registered tasks that ended (by pid: a child whose start is still with a spawner is left alone). */
static void reap(void) {
  for (struct task *t = tasks, *next; t; t = next) {
    next = t->next; /* maybe_close may free t */
    if (t->exited) continue;
    int status;
    pid_t pid;
    do pid = waitpid(t->pid, &status, WNOHANG); while (pid < 0 && errno == EINTR);
    if (pid != t->pid) continue;
    t->exited = 1;
    release(t);
    emit_i32('X', t->id, status);
    /* Read what is already in the pipes before reporting the end. */
    if (t->out >= 0) drain(t, &t->out, 'O');
    if (t->err >= 0) drain(t, &t->err, 'E');
    maybe_close(t);
  }
  pump(); /* the cores that freed take the next waiting tasks */
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) { puts("dsg-spawn 4"); return 0; }
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
  start_spawners();
  emit('H', 0, "dsg-spawn 4", 11);
  flush_out();

  unsigned char *ibuf = NULL;
  size_t ilen = 0, icap = 0;
  int in_open = 1;
  struct pollfd *pfds = NULL;
  struct task **owners = NULL;
  size_t pcap = 0;
  while (in_open || tasks || inflight) {
    size_t ntasks = 0;
    for (struct task *t = tasks; t; t = t->next) ntasks++;
    size_t need = 3 + 2 * ntasks;
    if (need > pcap) {
      pcap = need * 2;
      pfds = realloc(pfds, pcap * sizeof *pfds);
      owners = realloc(owners, pcap * sizeof *owners);
      if (!pfds || !owners) die("out of memory");
    }
    size_t np = 0;
    pfds[np++] = (struct pollfd){sig_pipe[0], POLLIN, 0};
    pfds[np++] = (struct pollfd){in_open ? 0 : -1, POLLIN, 0};
    pfds[np++] = (struct pollfd){done_pipe[0], POLLIN, 0};
    for (struct task *t = tasks; t; t = t->next) {
      if (t->out >= 0) { owners[np] = t; pfds[np++] = (struct pollfd){t->out, POLLIN, 0}; }
      if (t->err >= 0) { owners[np] = t; pfds[np++] = (struct pollfd){t->err, POLLIN, 0}; }
    }
    /* Wakes when a start becomes slow (to tell it); -1 when no start is under way. */
    int wait = flush_or_hold(tell_slow_starts());
    if (poll(pfds, np, wait) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (size_t i = 3; i < np; i++) {
      if (!pfds[i].revents) continue;
      struct task *t = owners[i];
      if (pfds[i].fd == t->out) drain(t, &t->out, 'O');
      else if (pfds[i].fd == t->err) drain(t, &t->err, 'E');
      maybe_close(t);
    }
    if (pfds[2].revents) {
      /* Starts that are over: registered first, then reaped (one may have ended already: its SIGCHLD came while
         its pid was not known here). */
      collect_starts(0);
      reap();
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
        if (kind == 'S') {
          unsigned char *copy = malloc(len - 5 ? len - 5 : 1);
          if (!copy) die("out of memory");
          memcpy(copy, ibuf + off + 9, len - 5);
          request_start(id, copy, len - 5, 0, (struct res){0, 0, 0}); /* takes copy */
        }
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
        kill_unreaped();
        /* Starts still with a spawner: each task is killed as soon as its start is over (one whose exec hangs
           keeps this program waiting for it, but not the others). */
        while (inflight > 0) {
          collect_starts(1);
          kill_unreaped();
        }
        break;
      }
    }
  }
  flush_out();
  return 0;
}
