/**
 * Each attempt's working dir, created before the task and removed (or handed on) after it.
 *
 * Where tasks are not sandboxed, working dirs are **slots**, as in BOINC's client: `<workDir>/slot-<n>`, one per
 * attempt held at a time. A slot its task left exactly as it found it (empty, a directory the agent owns, the same
 * mode) goes back to the free slots and is the next attempt's working dir as it is: no file system change at all
 * between one task and the next, only the `lstat` and `readdir` that check it. Anything else is removed and the slot
 * number is not used again in this process.
 *
 * Why: every change to a directory is a journaled file system change, and on a machine that runs the coordinator
 * too its durable commits keep ext4's journal busy. Measured on the 2-core VM under `dsg up` (2,000–4,000 × `true`,
 * `bench-overhead --isolation none`, runs alternated): a `mkdir` and an `rmdir` per task cost the agent ~390 µs of
 * blocked event loop (the `rmdir` frees a block and waits on the journal); renaming a spare dir to the attempt's
 * name and back (what this did until 2026-12) ~100 µs of CPU per task, about a fifth of all the agent spends on a
 * task; slots, none of that (the agent's CPU per task 445 → 394 µs on average, eight pairs of runs alternated).
 *
 * **The check.** A slot is proved empty with a `readdir` once; after that, while its change time (ctime) is what it was
 * then, nothing in it has changed, and one `lstat` is the whole check: creating, removing or renaming an entry in a
 * directory, like a chmod, a chown, a `touch -d` or an extended attribute, sets its ctime to the current time, and no
 * call lets a process set a ctime it chooses. Two things could hide a change, and both are ruled out:
 *  - the kernel takes times from a clock that ticks every few milliseconds, so a change in the same tick as the proof
 *    could leave the ctime as it was: the ctime is trusted only once it is older than SETTLED_MS at the proof (a slot
 *    made or changed just now is read again next time; slots live for many tasks, so nearly all checks are the lstat);
 *  - a file system that does not keep ctimes itself (NFS caches attributes, FUSE reports what its daemon says): the
 *    shortcut is taken only on the local Linux file systems listed in CTIME_FILE_SYSTEMS, else every check reads.
 * Measured on the 2-core VM under `dsg up` (20,000 × `true`): 6 of the agent's ~9.5 system calls per task were the
 * check (`statx`, then `openat`, `newfstatat`, two `getdents64`, `close` for the `readdir`); now one.
 *
 * Only where tasks share everything already: without a sandbox every task runs as the same user and can reach every
 * other working dir, so an empty dir handed on tells the next task nothing it could not read anyway. With a
 * sandbox, tasks cannot see each other's dirs, and a dir could still carry something between them that `readdir`
 * does not show (an extended attribute, an ACL): there each attempt gets a fresh dir named after it,
 * `<workDir>/<attemptId>`, as it also does with `--keep-work-dirs` (debugging: the dirs stay, found by attempt).
 * A task learns its dir from its working directory and `DSG_WORK_DIR`, never from its name.
 */
import { lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, statfsSync, type Stats } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Free slots kept at most (each is an empty directory: an inode and a block); more free at once are removed. */
export const MAX_FREE_SLOTS = 64;
const SLOT_PREFIX = 'slot-';
/** Spare dirs of agents before slots (renamed to each attempt's name): removed at start like leftover slots. */
const OLD_SPARE_PREFIX = '.spare-';
/** Leftovers being removed in the background, renamed first so that their names are free at once. */
const REMOVING_PREFIX = '.removing-';
/**
 * How old a slot's ctime must be when its emptiness is proved for the ctime to stand for that proof later. Linux
 * stamps changes with a coarse clock (one tick: 1–10 ms, by the kernel's HZ); a change within the tick of the proof
 * could keep the ctime. A ctime older than this at the proof is followed only by changes with later times.
 */
export const SETTLED_MS = 50;
/**
 * Local Linux file systems whose ctimes the kernel keeps itself (statfs f_type): ext2/3/4, XFS, Btrfs, tmpfs, F2FS,
 * overlayfs (containers), ZFS. Anything else (NFS, CIFS, FUSE, 9p…) has every slot read at every check.
 */
const CTIME_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0xf2f52010, 0x794c7630, 0x2fc12fc1]);

/** What a proof of emptiness saw of a slot: while an lstat still shows this, the slot is as it was proved. */
interface ProvedEmpty {
  readonly ino: number;
  readonly ctimeMs: number;
}

export interface WorkDirsOptions {
  /** Hand empty working dirs on to later attempts as slots (only when tasks are not sandboxed; see above). */
  readonly reuse: boolean;
  /** Keep every working dir after its attempt (for debugging); nothing is removed or reused. */
  readonly keep: boolean;
  /**
   * Remove dirs on the thread pool rather than on the event loop: for sandboxed tasks, whose dir was a mount point
   * in the sandbox's mount namespace. Removing it while that namespace is still being torn down makes the kernel
   * detach the mount in it first, and the `rmdir` waits for that (~0.9 ms of blocked event loop per task, measured
   * on the 2-core VM under `dsg up` with the sandbox). Otherwise on the loop: a plain `rmdir` is cheaper there than
   * a hand-off to the pool and back (see the runner).
   */
  readonly removeInBackground?: boolean;
}

export class WorkDirs {
  /** Free slots, the most recently freed last (its inode and block are the likeliest still cached). */
  private readonly free: string[] = [];
  /** Slots handed out and not yet released. */
  private readonly held = new Set<string>();
  private nextSlot = 0;
  /** The mode a directory made here has (0777 less the umask), which a reusable one must still have. */
  private dirMode: number | null = null;
  private readonly uid = process.getuid?.() ?? -1;
  /** Slots whose emptiness was proved with a settled ctime (see "The check"). */
  private readonly proved = new Map<string, ProvedEmpty>();
  /** Whether the work dir's file system keeps ctimes (decided when the first slot is made); null: not yet known. */
  private ctimes: boolean | null = null;
  /** Slots read in full (`readdir`) to decide whether they can be handed on (for tests and measurement). */
  fullChecks = 0;

  constructor(readonly root: string, private readonly options: WorkDirsOptions, private readonly now: () => number = Date.now) {}

  /**
   * Slots and spares left by an earlier run of the agent are removed, synchronously, at start, before any attempt:
   * an empty one with one `rmdir`; one with files in it (its task was running when the agent stopped) is renamed
   * out of the way at once and removed in the background. Slot numbers start above every leftover's, so a new slot
   * is never a leftover still being removed, nor one a task that outlived the old agent still writes to. Anything
   * else in the directory is left alone.
   */
  dropLeftovers(): void {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith(SLOT_PREFIX)) {
        const i = Number(n.slice(SLOT_PREFIX.length));
        if (Number.isSafeInteger(i) && i >= this.nextSlot) this.nextSlot = i + 1;
      }
      if (n.startsWith(SLOT_PREFIX) || n.startsWith(OLD_SPARE_PREFIX)) {
        const p = join(this.root, n);
        try {
          rmdirSync(p);
        } catch {
          const away = join(this.root, `${REMOVING_PREFIX}${process.pid}-${n}`);
          try {
            renameSync(p, away);
            removeInBackground(away);
          } catch {
            removeInBackground(p);
          }
        }
      } else if (n.startsWith(REMOVING_PREFIX)) {
        removeInBackground(join(this.root, n)); // an earlier run stopped before it was done
      }
    }
  }

  /** The attempt's working dir: a free slot as it is, else one made (one `mkdir`). Synchronous. */
  create(attemptId: string): string {
    if (!this.options.reuse || this.options.keep) return this.make(join(this.root, attemptId));
    let dir = this.free.pop();
    if (dir === undefined) {
      for (;;) {
        const slot = join(this.root, `${SLOT_PREFIX}${this.nextSlot++}`);
        try {
          dir = this.make(slot);
          break;
        } catch (e) {
          // Someone made a directory of that name (a leftover we did not see): take the next number.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
    }
    this.held.add(dir);
    return dir;
  }

  /**
   * The attempt is over: its slot goes back to the free ones when it is exactly as made (empty, a directory we own,
   * same mode); any other dir is removed — the cheap `rmdir` when empty, the recursive walk in the background when
   * not (a symlink in its place is removed, never followed).
   */
  release(dir: string): void {
    if (this.options.keep) return;
    if (this.held.delete(dir)) {
      if (this.free.length < MAX_FREE_SLOTS && this.reusable(dir)) {
        this.free.push(dir);
        return;
      }
    }
    this.proved.delete(dir);
    if (this.options.removeInBackground) removeInBackground(dir);
    else remove(dir);
  }

  /** How many free slots are kept now (for tests and the agent's status). */
  freeSlots(): number {
    return this.free.length;
  }

  private make(dir: string): string {
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(this.root, { recursive: true }); // the work dir itself was removed under us
      mkdirSync(dir);
    }
    if (this.dirMode === null) {
      try {
        this.dirMode = lstatSync(dir).mode & 0o7777;
      } catch {
        // Measured again next time.
      }
    }
    this.ctimes ??= keepsCtimes(this.root);
    return dir;
  }

  private reusable(dir: string): boolean {
    let st: Stats;
    try {
      st = lstatSync(dir);
    } catch {
      return false;
    }
    if (!st.isDirectory() || st.uid !== this.uid || (st.mode & 0o7777) !== this.dirMode) return false;
    const seen = this.proved.get(dir);
    if (seen !== undefined && seen.ino === st.ino && seen.ctimeMs === st.ctimeMs) return true;
    this.proved.delete(dir);
    this.fullChecks++;
    let empty: boolean;
    try {
      empty = readdirSync(dir).length === 0;
    } catch {
      return false;
    }
    // The stat was taken before the read: a change between them shows in the read, and one after it has a later
    // ctime than this one once this one is settled.
    if (empty && this.ctimes === true && this.now() - st.ctimeMs > SETTLED_MS) this.proved.set(dir, { ino: st.ino, ctimeMs: st.ctimeMs });
    return empty;
  }
}

/** Whether `dir` is on a local Linux file system that keeps ctimes itself (CTIME_FILE_SYSTEMS). */
export function keepsCtimes(dir: string): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return CTIME_FILE_SYSTEMS.has(Number(statfsSync(dir).type));
  } catch {
    return false;
  }
}

/** `remove`, all of it on the thread pool. */
function removeInBackground(dir: string): void {
  void rmdir(dir).catch(() => rm(dir, { recursive: true, force: true })).catch(() => undefined);
}

/** The cheap rmdir when `dir` is empty; else the recursive walk, in the background (a symlink is removed, not followed). */
function remove(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    void rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
