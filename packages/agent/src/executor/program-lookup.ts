/**
 * Where a task's program is on its PATH, looked up in the agent before an isolated task starts: whether it exists
 * at all (a missing program is told as spawn would tell it, not as the sandbox's exit code), and, for a task that
 * runs as another user, the first match that user may run (every directory on the way searchable by others, the
 * file executable by others).
 *
 * A walk down PATH costs a system call per directory, twice, and the agent's PATH is often long (~10 entries on
 * the VM: pyenv shims, cargo, /usr/local…): ~27 system calls per task, nine of them failing, each failed `stat`
 * a thrown exception in Node. So a found program is remembered for `ttlMs` (2 s): within that, one `stat` of the
 * file found checks that it is still there and still executable, and a program installed meanwhile in an earlier
 * directory of PATH is picked up at most `ttlMs` later. A program not found is never remembered (the task fails
 * anyway, and installing it must take effect at once). A PATH with a relative entry depends on the task's working
 * dir (new for every attempt) and is walked every time.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

interface Found {
  /** The first match on PATH (any user), or null. */
  readonly first: string | null;
  /** The first match others may run, or null. */
  readonly forOthers: string | null;
  readonly at: number;
}

export class ProgramLookup {
  private readonly found = new Map<string, Found>();

  constructor(
    private readonly ttlMs = 2000,
    private readonly now: () => number = Date.now,
    /** At most this many programs remembered (the oldest go first). */
    private readonly max = 256,
  ) {}

  /** The "no such program" message when `program` cannot be found, as spawn would say it; null when it exists. */
  missing(program: string, cwd: string, path: string | undefined): string | null {
    if (program === '') return null;
    if (program.includes('/')) return exists(isAbsolute(program) ? program : join(cwd, program)) ? null : program;
    return this.lookUp(program, cwd, path).first === null ? program : null;
  }

  /**
   * The first `program` on PATH that a user owning nothing on the way may run; null when there is none (the task's
   * own lookup then reports the failure), or when `program` names a path (it is used as it is).
   */
  forOthers(program: string, cwd: string, path: string | undefined): string | null {
    if (program === '' || program.includes('/')) return null;
    return this.lookUp(program, cwd, path).forOthers;
  }

  private lookUp(program: string, cwd: string, path: string | undefined): Found {
    const dirs = (path ?? DEFAULT_PATH).split(':').filter(Boolean);
    const relative = dirs.some((d) => !isAbsolute(d));
    const key = `${program}\0${path ?? DEFAULT_PATH}`;
    const now = this.now();
    const known = relative ? undefined : this.found.get(key);
    if (known && now - known.at < this.ttlMs && stillThere(known)) return known;
    let first: string | null = null;
    let forOthers: string | null = null;
    for (const dir of dirs) {
      const f = join(isAbsolute(dir) ? dir : join(cwd, dir), program);
      const st = stat(f);
      if (!st) continue;
      first ??= f;
      if ((st.mode & 0o001) !== 0 && searchableByOthers(dirname(f))) {
        forOthers = f;
        break;
      }
    }
    const result: Found = { first, forOthers, at: now };
    if (!relative) {
      this.found.delete(key);
      if (first !== null) {
        this.found.set(key, result);
        if (this.found.size > this.max) this.found.delete(this.found.keys().next().value!);
      }
    }
    return result;
  }
}

/** A remembered match still exists (and the one for others is still executable by them). */
function stillThere(f: Found): boolean {
  if (f.forOthers !== null) {
    const st = stat(f.forOthers);
    if (!st || (st.mode & 0o001) === 0) return false;
  }
  return f.first === null || f.first === f.forOthers || exists(f.first);
}

function exists(file: string): boolean {
  return stat(file) !== undefined;
}

/** The file's status, or undefined when it cannot be read (missing, a path through a file, not permitted). */
function stat(file: string): Stats | undefined {
  try {
    return statSync(file, { throwIfNoEntry: false }); // no exception thrown (and caught) for the usual miss
  } catch {
    return undefined;
  }
}

/** Every directory from `dir` up to the root is searchable by others. */
function searchableByOthers(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const st = stat(d);
    if (!st || (st.mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}
