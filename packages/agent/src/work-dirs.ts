/**
 * Each attempt's working dir: `<workDir>/<attemptId>`, created before the task and removed after it.
 *
 * Creating and removing a directory are journaled file system changes, and removing one is the costly half: on
 * ext4, `rmdir` frees the directory's block and puts its inode on the orphan list, and it waits whenever the journal
 * is committing — which the coordinator's durable commits make frequent on a machine that runs both (measured on the
 * 2-core VM under `dsg up`: ~390 µs of the agent's event loop per task, against ~17 µs for a `mkdir`). So when a
 * task leaves its working dir exactly as it found it (empty, ours, same mode), the dir is kept as a spare
 * (`<workDir>/.spare-<n>`, renamed) and the next attempt gets it renamed to its own name: two renames in one
 * directory (~10 µs each) instead of a `mkdir` and an `rmdir`.
 *
 * Only where tasks share everything already: without a sandbox, every task runs as the same user and can reach
 * every other working dir, so an empty dir handed on tells the next task nothing it could not read anyway. With a
 * sandbox, tasks cannot see each other's dirs, and a dir could still carry something between them that `readdir`
 * does not show (an extended attribute, an ACL): there each attempt gets a fresh dir, as before.
 */
import { lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Spares kept at most (each is an empty directory: an inode and a block). */
export const MAX_SPARE_DIRS = 64;
const SPARE_PREFIX = '.spare-';

export interface WorkDirsOptions {
  /** Hand empty working dirs on to later attempts (only when tasks are not sandboxed; see above). */
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
  private readonly spares: string[] = [];
  private nextSpare = 0;
  /** The mode a directory made here has (0777 less the umask), which a reusable one must still have. */
  private dirMode: number | null = null;
  private readonly uid = process.getuid?.() ?? -1;

  constructor(readonly root: string, private readonly options: WorkDirsOptions) {}

  /**
   * Spares left by an earlier run of the agent are removed (they are empty: a plain rmdir each). Synchronous, at
   * start, before any attempt. Anything else in the directory is left alone.
   */
  dropLeftoverSpares(): void {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(SPARE_PREFIX)) remove(join(this.root, n));
  }

  /** The attempt's working dir, created (or a spare renamed to it). Synchronous: one system call, usually. */
  create(attemptId: string): string {
    const dir = join(this.root, attemptId);
    const spare = this.spares.pop();
    if (spare !== undefined) {
      try {
        renameSync(spare, dir);
        return dir;
      } catch {
        // Gone or renamed under us (someone cleaned the work dir): make a fresh one.
      }
    }
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dir, { recursive: true });
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

  /**
   * The attempt is over: keep its dir as a spare when it is exactly as made (empty, a directory we own, same mode),
   * else remove it — the cheap rmdir when empty, the recursive walk in the background when not.
   */
  release(dir: string): void {
    if (this.options.keep) return;
    if (this.options.reuse && this.spares.length < MAX_SPARE_DIRS && this.reusable(dir)) {
      const spare = join(this.root, `${SPARE_PREFIX}${this.nextSpare++}`);
      try {
        renameSync(dir, spare);
        this.spares.push(spare);
        return;
      } catch {
        // Fall through to removal.
      }
    }
    if (this.options.removeInBackground) removeInBackground(dir);
    else remove(dir);
  }

  /** How many spares are kept now (for tests and the agent's status). */
  spareCount(): number {
    return this.spares.length;
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
