/**
 * What a workflow runs next: pure rules shared by every Store, so SQLite and PostgreSQL release, skip and resolve
 * alike. A Store gathers the facts (each stage's progress, an earlier stage's outputs), calls these, and applies
 * what they return in the same transaction as the change that triggered them.
 *
 * Stage lifecycle (each stage is a job whose tasks are created when it is released):
 *
 *   waiting ──all needs succeeded──▶ released (tasks created) ──▶ queued/running ──▶ succeeded | failed | cancelled
 *      │                                                                             
 *      └──a need failed, was skipped or cancelled──▶ skipped (with the reason)
 *
 * Per-item chaining (`each: A`): the stage's gate opens when its other needs have succeeded; from then on its task k
 * is created the moment A's task k succeeds. When A ends without succeeding, the items whose A-task failed are
 * skipped (the stage records why), the others run on. `dsg retry` clears skip reasons and requeues what failed;
 * these same rules then release what becomes runnable, and succeeded tasks are never run again.
 */
import picomatch from 'picomatch/posix.js';
import type { WireInputFile } from './protocol.js';
import { MAX_ARRAY, type CompiledJobSpec } from './spec.js';
import { deriveJobState, isTerminalJob, type JobGate, type JobState, type TaskCounts } from './states.js';
import type { CompiledWorkflow } from './workflow.js';

/** A stage's state is its job's state. */
export type StageStatus = JobState;
export const isTerminalStage = isTerminalJob;

/** What a Store knows of one stage. */
export interface StageProgress extends JobGate {
  /** Counts of the tasks created so far. */
  readonly counts: TaskCounts;
  readonly cancelRequested: boolean;
}

/** A stage's state, derived from its progress; never stored. */
export const stageStatus = (p: StageProgress): StageStatus => deriveJobState(p.counts, p.cancelRequested, p);

export interface ReleasePlan {
  /** Stages whose gate opens now (create their tasks; for `each` stages, those whose upstream task succeeded). */
  readonly release: readonly string[];
  /** Stages that will not (fully) run, with the reason to record. */
  readonly skip: ReadonlyArray<{ readonly stage: string; readonly reason: string }>;
}

/**
 * Which stages open or are skipped, given every stage's progress. Applies its own skips before looking further
 * (a skip cascades down the graph in one call). A Store applies the plan and calls again while it returns
 * something (a release can end a stage at once, e.g. a fan-out over zero files).
 */
export function planWorkflow(wf: CompiledWorkflow, progress: ReadonlyMap<string, StageProgress>, cancelRequested: boolean): ReleasePlan {
  const status = new Map<string, StageStatus>();
  for (const s of wf.stages) status.set(s.name, stageStatus(progress.get(s.name)!));
  const release: string[] = [];
  const skip: Array<{ stage: string; reason: string }> = [];
  // Topological order: a skip decided for a stage is seen by the stages after it in the same pass.
  for (const s of wf.stages) {
    const p = progress.get(s.name)!;
    if (p.skipReason !== null) continue;
    if (!p.released) {
      if (cancelRequested) {
        skip.push({ stage: s.name, reason: 'the workflow was cancelled' });
        status.set(s.name, 'cancelled');
        continue;
      }
      // A waiting stage cancelled on its own (`dsg cancel job_…`) already reads cancelled: it is never released.
      if (p.cancelRequested) continue;
      const gateNeeds = s.needs.filter((d) => d !== s.each);
      // Only the gate's needs skip the whole stage. The per-item upstream ending badly must not: the items whose
      // upstream task succeeded run on (the released branch below records why the others never come), whether
      // that upstream ended before or after the gate opened.
      const broken = gateNeeds.find((d) => {
        const st = status.get(d)!;
        return isTerminalStage(st) && st !== 'succeeded';
      });
      if (broken !== undefined) {
        skip.push({ stage: s.name, reason: `it needs "${broken}", which ${endedAs(status.get(broken)!)}` });
        status.set(s.name, 'skipped');
        continue;
      }
      if (gateNeeds.every((d) => status.get(d) === 'succeeded')) release.push(s.name);
      continue;
    }
    // Released per-item stage: once its upstream has ended without succeeding, the items still missing never come.
    if (s.each !== null) {
      const up = status.get(s.each)!;
      if (isTerminalStage(up) && up !== 'succeeded') {
        const reason = `"${s.each}" ${endedAs(up)}: the tasks whose "${s.each}" task did not succeed are skipped`;
        skip.push({ stage: s.name, reason });
        status.set(s.name, stageStatus({ ...p, skipReason: reason }));
      }
    }
  }
  return { release, skip };
}

const endedAs = (s: StageStatus): string => (s === 'failed' ? 'failed' : s === 'skipped' ? 'was skipped' : s === 'cancelled' ? 'was cancelled' : s);

/** A workflow's state, derived from its stages' states: running while any stage is not finished. */
export function workflowState(stages: readonly StageStatus[], cancelRequested: boolean): StageStatus {
  if (stages.some((s) => !isTerminalStage(s))) {
    if (stages.some((s) => s === 'running' || (isTerminalStage(s) && s !== 'skipped'))) return 'running';
    return cancelRequested ? 'running' : 'queued';
  }
  if (cancelRequested) return 'cancelled';
  if (stages.some((s) => s === 'failed')) return 'failed';
  // A stage cancelled by hand skips what needs it: the workflow was cancelled, not failed.
  if (stages.some((s) => s === 'cancelled')) return 'cancelled';
  if (stages.some((s) => s === 'skipped')) return 'failed'; // skipped for a reason of its own (nothing to fan out over)
  return 'succeeded';
}

/** Per-item chaining: the stages that get their task `index` now that task `index` of `upstream` succeeded. */
export function itemReleases(wf: CompiledWorkflow, progress: ReadonlyMap<string, StageProgress>, upstream: string): string[] {
  // Not into a stage whose cancel was requested: an upstream task that ends well after the cancel must not queue more.
  return wf.stages
    .filter((s) => {
      const p = progress.get(s.name);
      return s.each === upstream && p !== undefined && p.released && p.skipReason === null && !p.cancelRequested;
    })
    .map((s) => s.name);
}

// ─── artifacts ───────────────────────────────────────────────────────────────────────────────────────────────
/** One output of a succeeded task of an earlier stage. */
export interface StageOutput {
  readonly taskIndex: number;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export type Resolution<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const GLOB_SPECIAL = /[*?[\]{}()!+@\\]/g;
const escapeGlob = (s: string): string => s.replace(GLOB_SPECIAL, (m) => `\\${m}`);

/** Substitute `${DSG_TASK_INDEX}` / `${DSG_ARRAY_VALUE}` (escaped, so a value cannot widen the glob). */
export function substituteArtifactPath(glob: string, taskIndex: number, arrayValue: string | null): string {
  return glob
    .replaceAll('${DSG_TASK_INDEX}', String(taskIndex))
    .replaceAll('${DSG_ARRAY_VALUE}', escapeGlob(arrayValue ?? String(taskIndex)));
}

function matcher(glob: string | null): (path: string) => boolean {
  if (glob === null) return () => true;
  if (!picomatch.scan(glob).isGlob) {
    const plain = glob.replace(/\\(.)/g, '$1');
    return (p) => p === plain;
  }
  return picomatch(glob, { dot: true });
}

/** Outputs of `outputs` (one stage's) matching `glob`, with the same path from two tasks an error. */
export function selectOutputs(stage: string, outputs: readonly StageOutput[], glob: string | null): Resolution<StageOutput[]> {
  const match = matcher(glob);
  const byPath = new Map<string, StageOutput>();
  for (const o of outputs) {
    if (!match(o.path)) continue;
    const other = byPath.get(o.path);
    if (other && other.taskIndex !== o.taskIndex)
      return {
        ok: false,
        message: `tasks ${Math.min(other.taskIndex, o.taskIndex)} and ${Math.max(other.taskIndex, o.taskIndex)} of stage "${stage}" both produced "${o.path}"; give each task its own file name (e.g. with $DSG_TASK_INDEX) or pick one with path:`,
      };
    byPath.set(o.path, o);
  }
  return { ok: true, value: [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}

/** The task values of a fan-out over an earlier stage's output files: their paths, sorted. */
export function filesFanOut(job: CompiledJobSpec, outputs: readonly StageOutput[]): Resolution<string[]> {
  if (job.fanOut.kind !== 'files') return { ok: false, message: 'not a fan-out over files' };
  const sel = selectOutputs(job.fanOut.from, outputs, job.fanOut.path);
  if (!sel.ok) return sel;
  if (sel.value.length === 0)
    return { ok: false, message: `nothing to fan out over: no output of stage "${job.fanOut.from}"${job.fanOut.path ? ` matched "${job.fanOut.path}"` : ''}` };
  // The same bound as an array's task count (the store packs task indexes in 24 bits; see its queue queries).
  if (sel.value.length > MAX_ARRAY)
    return { ok: false, message: `too many files to fan out over: stage "${job.fanOut.from}" has ${sel.value.length} matching outputs, and one stage makes at most ${MAX_ARRAY.toLocaleString('en')} tasks${job.fanOut.path ? '' : ' (narrow it with `path`)'}` };
  return { ok: true, value: sel.value.map((o) => o.path) };
}

/**
 * The files an earlier stage hands to task `taskIndex` of a stage: each `{ from, path }` input resolved against
 * that stage's outputs (and, for a fan-out over files, the task's own file). A pattern that matches nothing, two
 * tasks producing the same path, or an artifact landing on a local input's path is an error naming the input.
 */
export function resolveArtifacts(
  job: CompiledJobSpec,
  task: { readonly index: number; readonly arrayValue: string | null },
  outputsOf: (stage: string) => readonly StageOutput[],
  localPaths: ReadonlySet<string>,
): Resolution<WireInputFile[]> {
  const files = new Map<string, WireInputFile>();
  const add = (o: StageOutput, what: string): string | null => {
    if (localPaths.has(o.path)) return `${what} brings "${o.path}", which is also one of the stage's own inputs`;
    const prev = files.get(o.path);
    if (prev && prev.sha256 !== o.sha256) return `${what} brings "${o.path}", which another input already placed with different content`;
    files.set(o.path, { path: o.path, sha256: o.sha256, size: o.size, mode: 0o644 });
    return null;
  };
  for (const a of job.artifacts) {
    const what = `inputs[${a.at}] (from ${a.from}${a.path ? `, path ${a.path}` : ''})`;
    const glob = a.path === null ? null : substituteArtifactPath(a.path, task.index, task.arrayValue);
    const sel = selectOutputs(a.from, outputsOf(a.from), glob);
    if (!sel.ok) return { ok: false, message: `${what}: ${sel.message}` };
    if (sel.value.length === 0)
      return { ok: false, message: `${what}: no output of stage "${a.from}" matched${glob ? ` "${glob}"` : ''}` };
    for (const o of sel.value) {
      const err = add(o, what);
      if (err) return { ok: false, message: err };
    }
  }
  if (job.fanOut.kind === 'files' && task.arrayValue !== null) {
    const own = outputsOf(job.fanOut.from).find((o) => o.path === task.arrayValue);
    if (!own) return { ok: false, message: `the file "${task.arrayValue}" of stage "${job.fanOut.from}" is no longer among its outputs` };
    const err = add(own, `array (from ${job.fanOut.from})`);
    if (err) return { ok: false, message: err };
  }
  return { ok: true, value: [...files.values()] };
}
