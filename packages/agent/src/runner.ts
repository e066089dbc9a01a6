/**
 * Runs one attempt from start to report:
 *
 *   prepare (working dir, inputs) ─▶ start (Executor; may wait for a free core) ─▶ stream logs ─▶ exit
 *     ─▶ collect + upload outputs ─▶ finished
 *
 * Every failure on the way has a place in the report: inputs that cannot be fetched are `inputs_unavailable`,
 * a program that cannot start is `executor_error`, outputs that cannot be uploaded are `outputs_failed`, an attempt
 * the agent's own stop interrupted is `agent_stopped` (all system failures, retried elsewhere), an attempt the
 * volunteer policy gave back (owner busy past the grace period) is `preempted` (retried elsewhere, never counted,
 * with the work lost in its message); the task's own exit
 * code, signal or timeout are reported as they are.
 * A program that exits 0 but leaves a required output pattern (`outputs`, not `optionalOutputs`) unmatched ends
 * as `outputs_missing`, a user failure: the next stage of a pipeline would otherwise fail far from the cause.
 * Whatever the end, the outputs that do exist are uploaded — but only files that really are inside the working dir:
 * every matched path is resolved in full (directories included, so `ln -s /elsewhere out` with `outputs: [out/*]`
 * uploads nothing from /elsewhere), and one that leads outside is refused, said in the task's log, and makes an
 * exit 0 end as `outputs_missing` naming it — never dropped silently.
 * The working dir is removed afterwards unless `keepWorkDirs`.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, chmod, lstat, mkdir, readdir, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { glob } from 'tinyglobby';
import { AttemptUsageWire, formatSize, outputPathMatcher, type AgentMessage, type Assignment, type FinishedMessage, type OutputFile } from '@dsg/core';
import type { CoordinatorHttp } from './coordinator-http.js';
import { sha256File } from './coordinator-http.js';
import type { ExecHandle, Executor } from './executor/executor.js';
import { gpuEnv, type Gpu, type GpuAllocator } from './gpu-allocator.js';
import { WorkDirs } from './work-dirs.js';

export interface RunnerDeps {
  readonly executor: Executor;
  readonly http: CoordinatorHttp;
  readonly workDir: string;
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly keepWorkDirs: boolean;
  /** Where working dirs come from and go back to (the agent's, which hands empty ones on); default: fresh ones. */
  readonly workDirs?: WorkDirs;
  /** Queue a message to the coordinator. */
  readonly send: (m: AgentMessage) => void;
  readonly logLimitBytes?: number;
  /** Which GPUs each task holds; absent: tasks get no GPU and see none. */
  readonly gpus?: GpuAllocator;
}

const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;

export class AttemptRun {
  private handle: ExecHandle | null = null;
  private cancelled = false;
  /** Set when the agent stops: why the attempt was interrupted (reported as `agent_stopped`, requeued elsewhere). */
  private interrupted: string | null = null;
  private buffers: { stdout: string; stderr: string } = { stdout: '', stderr: '' };
  private flushTimer: NodeJS.Timeout | null = null;
  private logged = 0;
  private truncated = false;
  readonly done: Promise<FinishedMessage>;

  constructor(readonly assignment: Assignment, private readonly deps: RunnerDeps) {
    this.done = this.run();
  }

  cancel(): void {
    this.cancelled = true;
    this.deps.gpus?.abandon(this.assignment.attemptId, 'cancelled');
    this.handle?.kill('cancel');
  }

  /** Paused by the volunteer policy (the machine's owner is back); a task that starts meanwhile is paused at once. */
  private suspendedAt: number | null = null;
  /** Time spent paused, for the wasted-time figure of a preempted attempt. */
  private pausedMs = 0;
  private startedAt: number | null = null;
  /** Set when the volunteer policy gives the task back: why (reported as `preempted`, requeued, never counted). */
  private preempted: string | null = null;

  /** Pause the task's processes (volunteer policy); idempotent. */
  suspend(now = Date.now()): void {
    if (this.suspendedAt !== null) return;
    this.suspendedAt = now;
    this.handle?.suspend?.();
  }

  /** Continue after `suspend`; idempotent. */
  resume(now = Date.now()): void {
    if (this.suspendedAt === null) return;
    if (this.startedAt !== null) this.pausedMs += now - Math.max(this.suspendedAt, this.startedAt);
    this.suspendedAt = null;
    this.handle?.resume?.();
  }

  /**
   * The machine's owner stayed busy past the policy's grace period: kill the task (SIGTERM, then SIGKILL) and report
   * it as `preempted`, with the work lost, so the coordinator runs it on another node without counting a failure.
   */
  preempt(why: string): void {
    this.preempted = why;
    this.deps.gpus?.abandon(this.assignment.attemptId, why);
    this.handle?.kill('cancel');
  }

  private preemptedMessage(startedAt: number | null): string {
    const now = Date.now();
    const paused = this.pausedMs + (this.suspendedAt !== null && startedAt !== null ? now - Math.max(this.suspendedAt, startedAt) : 0);
    const wasted = startedAt === null ? 0 : Math.max(0, now - startedAt - paused);
    return `preempted by the machine's owner (${this.preempted}); ${(wasted / 1000).toFixed(1)}s of work lost; it runs again on another node`;
  }

  /**
   * The agent is stopping: kill the task (or never start it) and report the attempt as `agent_stopped`, a system
   * failure the coordinator requeues at once — not `cancelled`, which would end the task for good. A task that
   * ends by itself before the kill lands is reported as it ended.
   */
  interrupt(why: string): void {
    this.interrupted = why;
    this.deps.gpus?.abandon(this.assignment.attemptId, why);
    this.handle?.kill('cancel');
  }

  private async run(): Promise<FinishedMessage> {
    const a = this.assignment;
    const dirs = this.deps.workDirs ?? new WorkDirs(this.deps.workDir, { reuse: false, keep: this.deps.keepWorkDirs });
    // Measured usage goes with `finished` only when valid: an out-of-range figure must not get the report refused.
    let usage: FinishedMessage['usage'];
    const finished = (end: FinishedMessage['end'], startedAt: number | null, outputs: OutputFile[] = []): FinishedMessage => ({
      type: 'finished', attemptId: a.attemptId, end, startedAt, finishedAt: Date.now(), outputs, ...(usage ? { usage } : {}),
    });
    let made: string | null = null;
    try {
      // Synchronous: one system call on the agent's own disk. Through the thread pool it cost ~3× the CPU (a hand-off
      // and a wake-up each way: 170–230 µs per mkdir and rmdir against 45–80 µs, measured on the 2-core VM).
      const cwd = dirs.create(a.attemptId);
      made = cwd;
      try {
        await this.placeInputs(cwd);
      } catch (e) {
        return finished({ kind: 'error', reason: 'inputs_unavailable', message: errorText(e) }, null);
      }
      if (this.interrupted) return finished({ kind: 'error', reason: 'agent_stopped', message: this.interrupted }, null);
      if (this.preempted) return finished({ kind: 'error', reason: 'preempted', message: this.preemptedMessage(null) }, null);
      if (this.cancelled) return finished({ kind: 'cancelled' }, null);

      // Its GPUs: whole devices no other task holds, chosen here (the coordinator counts them per node). It may wait
      // for one to free, like a prefetched task waits for a core.
      let gpus: Gpu[] = [];
      if (a.gpuDevices !== undefined || a.resources.gpus > 0) {
        if (!this.deps.gpus) return finished({ kind: 'error', reason: 'executor_error', message: 'this agent has no GPUs to give' }, null);
        try {
          // The devices the coordinator chose (checked here too: never one given twice); an older coordinator sends
          // none, and the agent chooses whole devices itself.
          gpus = a.gpuDevices !== undefined
            ? await this.deps.gpus.claim(a.attemptId, a.gpuDevices)
            : await this.deps.gpus.acquire(a.attemptId, a.resources.gpus, a.gpu ?? null);
        } catch (e) {
          if (this.interrupted) return finished({ kind: 'error', reason: 'agent_stopped', message: this.interrupted }, null);
          if (this.preempted) return finished({ kind: 'error', reason: 'preempted', message: this.preemptedMessage(null) }, null);
          if (this.cancelled) return finished({ kind: 'cancelled' }, null);
          return finished({ kind: 'error', reason: 'executor_error', message: errorText(e) }, null);
        }
      }
      const argv = a.run.kind === 'script' ? ['/bin/sh', '-c', a.run.script] : a.run.argv;
      // The executor may hold the task until a core is free (prefetched tasks); `started` is sent when it starts.
      this.handle = this.deps.executor.start(
        { argv, cwd, env: { ...this.envFor(cwd), ...(this.deps.gpus ? gpuEnv(gpus, a.gpuDevices?.[0]?.memoryBytes ?? null) : {}) }, timeoutMs: a.timeoutMs, resources: a.resources, ...(a.network ? { network: true } : {}) },
        {
          onStdout: (d) => this.onOutput('stdout', d),
          onStderr: (d) => this.onOutput('stderr', d),
          onStart: (at) => {
            this.startedAt = at;
            // Started while the machine's owner is busy (it waited for a core, or an assignment crossed the
            // suspension on the wire): pause it at once.
            if (this.suspendedAt !== null) this.handle?.suspend?.();
            this.deps.send({ type: 'started', attemptId: a.attemptId, at });
          },
        },
      );
      if (this.cancelled || this.interrupted || this.preempted) this.handle.kill('cancel');
      else if (this.suspendedAt !== null) this.handle.suspend?.();
      const r = await this.handle.done;
      this.deps.gpus?.release(a.attemptId); // the process is gone: its GPUs are free while outputs upload
      const measured = AttemptUsageWire.safeParse(r.usage ?? {});
      if (measured.success && Object.keys(measured.data).length > 0) usage = measured.data;
      this.flushLogs();
      if (this.interrupted && (r.cancelled || r.spawnError)) return finished({ kind: 'error', reason: 'agent_stopped', message: this.interrupted }, r.startedAt);
      if (this.preempted && r.cancelled) return finished({ kind: 'error', reason: 'preempted', message: this.preemptedMessage(this.startedAt ?? r.startedAt) }, this.startedAt ?? r.startedAt);
      if (r.spawnError) return finished({ kind: 'error', reason: 'executor_error', message: r.spawnError }, r.startedAt);
      let outputs: OutputFile[] = [];
      let unmatched: string[] = [];
      let refused: RefusedOutput[] = [];
      if (a.outputs.length > 0 || (a.optionalOutputs?.length ?? 0) > 0) {
        try {
          ({ outputs, unmatched, refused } = await this.collectOutputs(cwd));
        } catch (e) {
          return finished({ kind: 'error', reason: 'outputs_failed', message: errorText(e) }, r.startedAt);
        }
        if (refused.length > 0) {
          this.deps.send({ type: 'log', attemptId: a.attemptId, stream: 'stderr', data: refused.map((x) => `[dsg] output ${JSON.stringify(x.path)} was not uploaded: ${x.why}\n`).join('') });
        }
      }
      if (r.cancelled || this.cancelled) return finished({ kind: 'cancelled' }, r.startedAt, outputs);
      if (r.timedOut) return finished({ kind: 'timeout', timeoutMs: a.timeoutMs }, r.startedAt, outputs);
      // Killed by its cgroup's memory limit: say so, not "killed by signal SIGKILL" (a task that survived the loss
      // of a child and still exited 0 succeeded).
      if (r.oomKilled && !(r.exitCode === 0 && !r.signal))
        return finished({ kind: 'error', reason: 'memory_limit', message: `exceeded its memory limit of ${formatSize(a.resources.memoryBytes)}` }, r.startedAt, outputs);
      // A non-zero exit or a signal keeps its own failure: it says more than the outputs it did not write.
      if (r.exitCode === 0 && !r.signal && (unmatched.length > 0 || refused.length > 0))
        return finished({ kind: 'error', reason: 'outputs_missing', message: [
          ...(refused.length > 0 ? [describeRefused(refused)] : []),
          ...(unmatched.length > 0 ? [describeUnmatched(unmatched)] : []),
        ].join('; ') }, r.startedAt, outputs);
      return finished({ kind: 'exited', exitCode: r.exitCode, signal: r.signal }, r.startedAt, outputs);
    } catch (e) {
      this.flushLogs();
      return finished({ kind: 'error', reason: 'executor_error', message: errorText(e) }, null);
    } finally {
      this.deps.gpus?.release(a.attemptId);
      // Most short tasks leave nothing behind: their dir is handed on or removed with one system call (work-dirs.ts).
      if (made !== null) dirs.release(made);
    }
  }

  private envFor(cwd: string): Record<string, string> {
    const a = this.assignment;
    return {
      ...this.deps.baseEnv,
      ...a.env,
      DSG_JOB_ID: a.jobId,
      DSG_JOB_NAME: a.jobName,
      DSG_TASK_ID: a.taskId,
      DSG_TASK_INDEX: String(a.taskIndex),
      DSG_TASK_COUNT: String(a.taskCount),
      DSG_ARRAY_VALUE: a.arrayValue ?? String(a.taskIndex),
      DSG_ATTEMPT_ID: a.attemptId,
      DSG_ATTEMPT: String(a.attemptNumber),
      DSG_CPUS: String(Math.max(1, Math.ceil(a.resources.cpuMillis / 1000))),
      DSG_WORK_DIR: cwd,
    };
  }

  private async placeInputs(cwd: string): Promise<void> {
    await Promise.all(
      this.assignment.inputs.map(async (f) => {
        // Checked before anything is fetched or written. The spec already refuses such paths at submit; this
        // guards the agent against any assignment (workflow stages, older or buggy coordinators) that slips by.
        // An absolute path is refused rather than quietly read as relative to the working dir.
        if (isAbsolute(f.path)) throw new Error(`input path ${f.path} is absolute; input paths must be relative to the working directory`);
        const dest = join(cwd, f.path);
        if (!isInside(cwd, dest)) throw new Error(`input path ${f.path} leaves the working directory`);
        const src = await this.deps.http.blob(f.sha256, f.size);
        await mkdir(dirname(dest), { recursive: true });
        // A copy (a cheap reflink where the filesystem supports it), not a hard link: a task that writes to its
        // input must not alter the shared cache.
        await copyFile(src, dest, fsConstants.COPYFILE_FICLONE);
        await chmod(dest, f.mode & 0o777);
      }),
    );
  }

  /**
   * Uploads every file the output patterns match and returns them, with the required patterns (`outputs`) that
   * matched no file. Each pattern is globbed on its own so that "matched nothing" is exactly what tinyglobby says,
   * with no second matcher that could disagree with it; a task has few patterns.
   */
  private async collectOutputs(cwd: string): Promise<{ outputs: OutputFile[]; unmatched: string[]; refused: RefusedOutput[] }> {
    const a = this.assignment;
    const realCwd = await realpath(cwd);
    const patterns = [...new Set([...a.outputs, ...(a.optionalOutputs ?? [])])];
    const matches = await Promise.all(
      patterns.map((p) => glob(p, { cwd, onlyFiles: false, dot: false, followSymbolicLinks: false, expandDirectories: false })),
    );
    // tinyglobby leaves links out when it does not follow them (and following them could walk the whole disk), so
    // the links in the working dir are listed apart (not followed) and matched with the same patterns: each one is
    // resolved and checked below like any match, and none is dropped unexplained.
    const links = await linksIn(cwd);
    patterns.forEach((p, i) => {
      const declared = outputPathMatcher([p]);
      for (const l of links) if (declared(l) && !l.split('/').some((seg) => seg.startsWith('.'))) matches[i]!.push(l);
    });
    const paths = [...new Set(matches.flat().map((m) => m.replace(/\/$/, '')))];
    const out: OutputFile[] = [];
    const refused: RefusedOutput[] = [];
    const accepted = new Set<string>();
    let links_: Map<string, number> | undefined;
    for (const p of paths.sort()) {
      // Resolve the whole path, not just its last entry: any directory on the way may be a link (`out -> /etc`).
      // The file is then read through its resolved path, so what was checked is what is uploaded.
      const real = await realpath(join(cwd, p)).catch(() => null);
      if (!real) {
        refused.push({ path: p, why: 'it is a link that leads nowhere' });
        continue;
      }
      if (!isInside(realCwd, real)) {
        refused.push({ path: p, why: 'it resolves to outside the working directory (through a link); files outside it are never uploaded' });
        continue;
      }
      const st = await stat(real);
      if (st.isDirectory()) continue; // a pattern that matches a directory collects nothing from it (as ever)
      if (!st.isFile()) {
        refused.push({ path: p, why: 'it is not a regular file' });
        continue;
      }
      // A hard link is the same file under another name: `ln /var/lib/dsg/credentials.json out` passes every path
      // check above. A file with more than one link is uploaded only when all its links are inside the working dir
      // (the task linked its own files); otherwise one of its names is elsewhere, and it is refused.
      if (st.nlink > 1) {
        links_ ??= await hardLinkCounts(realCwd);
        if ((links_.get(`${st.dev}:${st.ino}`) ?? 0) < st.nlink) {
          refused.push({ path: p, why: `it is a hard link to a file that also has a name outside the working directory (${st.nlink} links); files outside it are never uploaded` });
          continue;
        }
      }
      const sha256 = await sha256File(real);
      await this.deps.http.uploadOutput(this.assignment.attemptId, p, real, sha256, st.size);
      out.push({ path: p, size: st.size, sha256 });
      accepted.add(p);
    }
    // A required pattern whose every match was refused matched nothing usable.
    const optional = new Set(a.optionalOutputs ?? []);
    const strip = (m: string): string => m.replace(/\/$/, '');
    const unmatched = patterns.filter((p, i) => !optional.has(p) && !matches[i]!.some((m) => accepted.has(strip(m)) || refused.some((r) => r.path === strip(m))));
    return { outputs: out, unmatched, refused };
  }

  private onOutput(stream: 'stdout' | 'stderr', data: string): void {
    if (this.truncated) return;
    const limit = this.deps.logLimitBytes ?? 8 * 1024 * 1024;
    this.logged += Buffer.byteLength(data);
    if (this.logged > limit) {
      this.truncated = true;
      this.buffers[stream] += data.slice(0, Math.max(0, data.length - (this.logged - limit)));
      this.buffers.stderr += '\n[dsg] log truncated: the task wrote more than the per-attempt limit\n';
      this.flushLogs();
      return;
    }
    this.buffers[stream] += data;
    if (this.buffers.stdout.length + this.buffers.stderr.length >= FLUSH_BYTES) this.flushLogs();
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flushLogs(), FLUSH_MS);
  }

  private flushLogs(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    for (const stream of ['stdout', 'stderr'] as const) {
      const data = this.buffers[stream];
      if (data) this.deps.send({ type: 'log', attemptId: this.assignment.attemptId, stream, data });
      this.buffers[stream] = '';
    }
  }
}

/** How many names each multiply-linked regular file has under `dir` (key `dev:ino`); links are not followed. */
async function hardLinkCounts(dir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const st = await lstat(join(e.parentPath, e.name)).catch(() => null);
    if (!st || st.nlink < 2) continue;
    const k = `${st.dev}:${st.ino}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** Every symbolic link under `dir`, as paths relative to it (links are listed, never followed). */
async function linksIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isSymbolicLink()).map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
}

interface RefusedOutput {
  readonly path: string;
  readonly why: string;
}

/** `output "out/key" was not uploaded: it resolves to outside the working directory (through a link)…` */
function describeRefused(refused: readonly RefusedOutput[]): string {
  const shown = refused.slice(0, 5).map((r) => `output ${JSON.stringify(r.path)} was not uploaded: ${r.why}`);
  return refused.length > 5 ? `${shown.join('; ')}; and ${refused.length - 5} more` : shown.join('; ');
}

function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep);
}

/** `output pattern "out/*.json" matched no file in the working directory (mark it optional if it may be absent)` */
function describeUnmatched(patterns: readonly string[]): string {
  const list = patterns.map((p) => JSON.stringify(p)).join(', ');
  return patterns.length === 1
    ? `output pattern ${list} matched no file in the working directory (mark it optional if it may be absent)`
    : `output patterns ${list} matched no file in the working directory (mark them optional if they may be absent)`;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
