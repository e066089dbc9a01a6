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
 * Only where tasks share everything already: without a sandbox every task runs as the same user and can reach every
 * other working dir, so an empty dir handed on tells the next task nothing it could not read anyway. With a
 * sandbox, tasks cannot see each other's dirs, and a dir could still carry something between them that `readdir`
 * does not show (an extended attribute, an ACL): there each attempt gets a fresh dir named after it,
 * `<workDir>/<attemptId>`, as it also does with `--keep-work-dirs` (debugging: the dirs stay, found by attempt).
 * A task learns its dir from its working directory and `DSG_WORK_DIR`, never from its name.
 */
import { lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Free slots kept at most (each is an empty directory: an inode and a block); more free at once are removed. */
export const MAX_FREE_SLOTS = 64;
const SLOT_PREFIX = 'slot-';
/** Spare dirs of agents before slots (renamed to each attempt's name): removed at start like leftover slots. */
const OLD_SPARE_PREFIX = '.spare-';
/** Leftovers being removed in the background, renamed first so that their names are free at once. */
const REMOVING_PREFIX = '.removing-';

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

  constructor(readonly root: string, private readonly options: WorkDirsOptions) {}

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
    return dir;
  }

  private reusable(dir: string): boolean {
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== this.uid || (st.mode & 0o7777) !== this.dirMode) return false;
      return readdirSync(dir).length === 0;
    } catch {
      return false;
    }
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
