/**
 * Accepting work: validate the spec (a job or a workflow) and the uploaded input list, check every input blob is
 * present, resolve fan-outs over the lines of an input file, warn when no node could ever run the tasks, then
 * create everything in one commit. Nothing is queued unless all of it is valid.
 */
import {
  compileJobSpec,
  describeConstraint,
  matches,
  nodeAttributes,
  compileWorkflowSpec,
  eachChainOf,
  fits,
  formatSize,
  isPlainRelativePath,
  linesOf,
  MAX_ARRAY,
  newJobId,
  newWorkflowId,
  ValidationError,
  type CompiledJobSpec,
  type CompiledWorkflow,
  type InputFileV1,
  type Issue,
  type SubmitJobRequestV1,
  type SubmitWorkflowRequestV1,
  type WireInputFile,
} from '@dsg/core';
import type { JobRecord, NodeUsage, Owner, Store, WorkflowRecord } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';

export interface SubmitDeps {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  /** Who submits (recorded on the job or workflow); absent: not recorded. */
  readonly owner?: Owner;
  /** Refuse a project the submitter may not use; called right after the spec compiles, before inputs are read. */
  readonly checkProject?: (project: string) => void;
}

/** Largest file a `{ lines: FILE }` fan-out reads. */
const MAX_LINES_FILE_BYTES = 16 * 1024 * 1024;

/** Called once the work is valid and sized, before anything is stored: throws to refuse it (admission control). */
export type Admit<T> = (compiled: T) => Promise<void>;

export async function submitJob(req: SubmitJobRequestV1, deps: SubmitDeps, admit?: Admit<CompiledJobSpec>): Promise<JobRecord> {
  let compiled = compileJobSpec(req.spec, { params: req.params ?? {} });
  deps.checkProject?.(compiled.project);
  const files = req.inputs ?? [];
  const issues: Issue[] = [];
  // `spec.` keeps the spec's inputs apart from the request's own `inputs` list (the uploaded files) in messages.
  const { inputs, unclaimed } = claimInputs(compiled, files, 'spec.', issues);
  unclaimed.forEach((i) => issues.push({ path: `inputs[${i}].path`, message: `"${files[i]!.path}" is not under any of the spec's inputs` }));
  checkUploadShape(files, issues);
  if (issues.length === 0) await checkBlobsPresent(files, deps.blobs, issues);
  if (issues.length === 0) compiled = await resolveLines(compiled, inputs, deps.blobs, 'spec.', issues);
  if (issues.length > 0) throw new ValidationError(issues, 'invalid job inputs');
  await admit?.(compiled);

  const now = deps.clock.now();
  const nodes = await deps.store.listNodeUsage(['online', 'offline']);
  return deps.store.createJob({
    id: newJobId(now),
    name: compiled.name,
    spec: req.spec,
    compiled,
    inputs,
    createdAt: now,
    warnings: capacityWarnings(compiled, nodes),
    owner: deps.owner ?? null,
  });
}

export async function submitWorkflow(req: SubmitWorkflowRequestV1, deps: SubmitDeps, admit?: Admit<CompiledWorkflow>): Promise<WorkflowRecord> {
  let wf = compileWorkflowSpec(req.spec, { params: req.params ?? {} });
  deps.checkProject?.(wf.stages[0]?.job.project ?? 'default');
  const files = req.inputs ?? [];
  const issues: Issue[] = [];
  checkUploadShape(files, issues);
  const claimed = new Set<number>();
  const perStage = wf.stages.map((st) => {
    const r = claimInputs(st.job, files, `spec.stages.${st.name}.`, issues);
    const unclaimed = new Set(r.unclaimed);
    files.forEach((_, i) => {
      if (!unclaimed.has(i)) claimed.add(i);
    });
    return r.inputs;
  });
  files.forEach((f, i) => {
    if (!claimed.has(i)) issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is not under any stage's inputs` });
  });
  if (issues.length === 0) await checkBlobsPresent(files, deps.blobs, issues);
  if (issues.length === 0) wf = await resolveWorkflowLines(wf, perStage, deps.blobs, issues);
  if (issues.length > 0) throw new ValidationError(issues, 'invalid workflow inputs');
  await admit?.(wf);

  const now = deps.clock.now();
  const nodes = await deps.store.listNodeUsage(['online', 'offline']);
  return deps.store.createWorkflow({
    id: newWorkflowId(now),
    name: wf.name,
    spec: req.spec,
    compiled: wf,
    stages: wf.stages.map((st, i) => ({
      jobId: newJobId(now),
      inputs: perStage[i]!,
      warnings: capacityWarnings(st.job, nodes).map((w) => `stage ${st.name}: ${w}`),
    })),
    createdAt: now,
    owner: deps.owner ?? null,
  });
}

/** The uploaded files that belong to a spec's local inputs; every input must have at least one file. */
function claimInputs(compiled: CompiledJobSpec, files: readonly InputFileV1[], prefix: string, issues: Issue[]): { inputs: WireInputFile[]; unclaimed: number[] } {
  const inputs: WireInputFile[] = [];
  const unclaimed: number[] = [];
  files.forEach((f, i) => {
    if (compiled.inputs.some((d) => under(f.path, d.path))) inputs.push({ path: f.path, sha256: f.sha256, size: f.size, mode: f.mode ?? 0o644 });
    else unclaimed.push(i);
  });
  compiled.inputs.forEach((d) => {
    if (!files.some((f) => under(f.path, d.path))) {
      const at = specIndexOf(compiled, d.source);
      issues.push({ path: `${prefix}inputs${at >= 0 ? `[${at}]` : ''}`, message: `no file was uploaded for "${d.source}" (submit with \`dsg submit\`, which uploads inputs)` });
    }
  });
  return { inputs, unclaimed };
}

const specIndexOf = (c: CompiledJobSpec, source: string): number => c.inputs.findIndex((i) => i.source === source);

function checkUploadShape(files: readonly InputFileV1[], issues: Issue[]): void {
  const seen = new Set<string>();
  files.forEach((f, i) => {
    if (!isPlainRelativePath(f.path)) issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is not a plain relative path` });
    else if (seen.has(f.path)) issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is listed twice` });
    seen.add(f.path);
  });
}

async function checkBlobsPresent(files: readonly InputFileV1[], blobs: BlobStore, issues: Issue[]): Promise<void> {
  const sizes = await Promise.all(files.map((f) => blobs.size(f.sha256)));
  files.forEach((f, i) => {
    if (sizes[i] !== f.size) issues.push({ path: `inputs[${i}]`, message: `the content of "${f.path}" (${f.sha256.slice(0, 12)}…, ${f.size} bytes) has not been uploaded` });
  });
}

/** `{ lines: FILE }`: read the uploaded file and make one task per line. */
async function resolveLines(compiled: CompiledJobSpec, inputs: readonly WireInputFile[], blobs: BlobStore, prefix: string, issues: Issue[]): Promise<CompiledJobSpec> {
  const fan = compiled.fanOut;
  if (fan.kind !== 'lines' || fan.resolved) return compiled;
  const file = inputs.find((f) => f.path === fan.path);
  if (!file) {
    issues.push({ path: `${prefix}array.lines`, message: `"${fan.path}" was not uploaded as a file (is it a directory?)` });
    return compiled;
  }
  if (file.size > MAX_LINES_FILE_BYTES) {
    issues.push({ path: `${prefix}array.lines`, message: `"${fan.path}" is ${formatSize(file.size)}; at most ${formatSize(MAX_LINES_FILE_BYTES)} for a list of task values` });
    return compiled;
  }
  const chunks: Buffer[] = [];
  for await (const c of blobs.open(file.sha256)) chunks.push(c as Buffer);
  const values = linesOf(Buffer.concat(chunks).toString('utf8'));
  if (values.length === 0) issues.push({ path: `${prefix}array.lines`, message: `"${fan.path}" has no lines (blank lines and lines starting with # are skipped)` });
  else if (values.length > MAX_ARRAY) issues.push({ path: `${prefix}array.lines`, message: `"${fan.path}" has ${values.length} lines; at most ${MAX_ARRAY} tasks per job` });
  else if (values.some((v) => v.includes('\0'))) issues.push({ path: `${prefix}array.lines`, message: `"${fan.path}" contains a NUL byte` });
  else return { ...compiled, fanOut: { ...fan, resolved: true }, taskCount: values.length, arrayValues: values };
  return compiled;
}

async function resolveWorkflowLines(wf: CompiledWorkflow, perStage: ReadonlyArray<readonly WireInputFile[]>, blobs: BlobStore, issues: Issue[]): Promise<CompiledWorkflow> {
  const stages = [...wf.stages];
  for (let i = 0; i < stages.length; i++) {
    const st = stages[i]!;
    if (st.job.fanOut.kind !== 'lines') continue;
    const job = await resolveLines(st.job, perStage[i]!, blobs, `spec.stages.${st.name}.`, issues);
    stages[i] = { ...st, job };
    // Stages chained item by item to this one take its task count and values.
    for (const name of eachChainOf(wf, st.name)) {
      const k = stages.findIndex((s) => s.name === name);
      const s = stages[k]!;
      stages[k] = { ...s, job: { ...s.job, taskCount: job.taskCount, arrayValues: job.arrayValues } };
    }
  }
  return { ...wf, stages };
}

function capacityWarnings(compiled: CompiledJobSpec, nodes: readonly NodeUsage[]): string[] {
  if (nodes.length === 0) return [];
  if (compiled.constraints.length > 0) {
    const matching = nodes.filter((n) => {
      const attrs = nodeAttributes(n.node.labels, n.node.facts);
      return compiled.constraints.every((c) => matches(c, attrs));
    });
    if (matching.length === 0)
      return [
        `no node in the grid matches constraints ${compiled.constraints.map(describeConstraint).join(', ')}; the tasks wait until a matching node joins ` +
          '(an operator adds labels with `dsg agent --label KEY=VALUE`; `dsg nodes --json` shows each node\'s labels and facts)',
      ];
  }
  if (nodes.some((n) => fits(compiled.resources, n.node.capacity))) return [];
  const r = compiled.resources;
  const biggest = nodes.reduce((a, b) => (b.node.capacity.cpuMillis > a.node.capacity.cpuMillis ? b : a)).node;
  return [
    `no node in the grid can run these tasks: each needs ${r.cpuMillis / 1000} cores, ${formatSize(r.memoryBytes)} memory` +
      (r.gpus ? `, ${r.gpus} GPUs` : '') +
      `; the biggest node (${biggest.name}) has ${biggest.capacity.cpuMillis / 1000} cores, ${formatSize(biggest.capacity.memoryBytes)}` +
      (biggest.capacity.gpus ? `, ${biggest.capacity.gpus} GPUs` : '') +
      '. The job stays queued until a big enough node joins; lower `resources` or cancel it.',
  ];
}

const stripSlash = (p: string): string => p.replace(/\/+$/, '');
const under = (file: string, dir: string): boolean => file === stripSlash(dir) || file.startsWith(`${stripSlash(dir)}/`);
