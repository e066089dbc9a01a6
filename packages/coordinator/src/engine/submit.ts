/**
 * Accepting a job: validate the spec and the uploaded input list, check every input blob is present, warn when no
 * node could ever run the tasks, then create the job and its tasks in one commit. Nothing is queued unless all of
 * it is valid.
 */
import {
  compileJobSpec,
  fits,
  formatSize,
  isPlainRelativePath,
  newJobId,
  ValidationError,
  type Issue,
  type SubmitJobRequestV1,
  type WireInputFile,
} from '@dsg/core';
import type { JobRecord, Store } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';

export async function submitJob(req: SubmitJobRequestV1, deps: { store: Store; blobs: BlobStore; clock: Clock }): Promise<JobRecord> {
  const compiled = compileJobSpec(req.spec);
  const files = req.inputs ?? [];
  const issues: Issue[] = [];
  const seen = new Set<string>();
  const inputs: WireInputFile[] = [];
  files.forEach((f, i) => {
    if (!isPlainRelativePath(f.path)) issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is not a plain relative path` });
    else if (seen.has(f.path)) issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is listed twice` });
    else if (!compiled.inputs.some((d) => f.path === stripSlash(d) || f.path.startsWith(`${stripSlash(d)}/`)))
      issues.push({ path: `inputs[${i}].path`, message: `"${f.path}" is not under any of the spec's inputs` });
    seen.add(f.path);
    inputs.push({ path: f.path, sha256: f.sha256, size: f.size, mode: f.mode ?? 0o644 });
  });
  compiled.inputs.forEach((d, i) => {
    const dir = stripSlash(d);
    if (!files.some((f) => f.path === dir || f.path.startsWith(`${dir}/`)))
      issues.push({ path: `spec.inputs[${i}]`, message: `no file was uploaded for "${d}" (submit with \`dsg submit\`, which uploads inputs)` });
  });
  if (issues.length === 0) {
    const missing = await Promise.all(inputs.map(async (f) => ((await deps.blobs.size(f.sha256)) === f.size ? null : f)));
    missing.forEach((f, i) => {
      if (f) issues.push({ path: `inputs[${i}]`, message: `the content of "${f.path}" (${f.sha256.slice(0, 12)}…, ${f.size} bytes) has not been uploaded` });
    });
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid job inputs');

  const now = deps.clock.now();
  const warnings: string[] = [];
  const nodes = await deps.store.listNodeUsage(['online', 'offline']);
  if (nodes.length > 0 && !nodes.some((n) => fits(compiled.resources, n.node.capacity))) {
    const r = compiled.resources;
    const biggest = nodes.reduce((a, b) => (b.node.capacity.cpuMillis > a.node.capacity.cpuMillis ? b : a)).node;
    warnings.push(
      `no node in the grid can run these tasks: each needs ${r.cpuMillis / 1000} cores, ${formatSize(r.memoryBytes)} memory` +
        (r.gpus ? `, ${r.gpus} GPUs` : '') +
        `; the biggest node (${biggest.name}) has ${biggest.capacity.cpuMillis / 1000} cores, ${formatSize(biggest.capacity.memoryBytes)}` +
        (biggest.capacity.gpus ? `, ${biggest.capacity.gpus} GPUs` : '') +
        '. The job stays queued until a big enough node joins; lower `resources` or cancel it.',
    );
  }
  return deps.store.createJob({
    id: newJobId(now),
    name: compiled.name,
    spec: req.spec,
    compiled,
    inputs,
    createdAt: now,
    warnings,
  });
}

const stripSlash = (p: string): string => p.replace(/\/+$/, '');
