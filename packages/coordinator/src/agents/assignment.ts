/**
 * Wire mapping at the protocol edge: a created attempt plus its job's compiled spec → the `Assignment` an agent
 * receives (everything it needs to run the attempt with no further lookup but the input blobs).
 */
import { fanOutEnv, type Assignment, type WireRun } from '@dsg/core';
import type { CreatedAttempt } from '@dsg/store';
import type { CachedJob } from '../engine/job-cache.js';

export function toAssignment(att: CreatedAttempt, job: CachedJob): Assignment {
  const c = job.compiled;
  const run: WireRun = c.run.kind === 'script' ? { kind: 'script', script: c.run.script } : { kind: 'command', argv: [...c.run.argv] };
  return {
    attemptId: att.id,
    attemptNumber: att.number,
    jobId: att.jobId,
    jobName: job.name,
    taskId: att.taskId,
    taskIndex: att.taskIndex,
    taskCount: att.taskCount,
    arrayValue: att.arrayValue,
    run,
    env: { ...c.env, ...fanOutEnv(c.fanOut, att.taskIndex) },
    // Files from earlier workflow stages travel like the job's own inputs (fetched by hash, verified).
    inputs: att.taskInputs.length > 0 ? [...job.inputs, ...att.taskInputs] : job.inputs.map((i) => ({ ...i })),
    outputs: [...c.outputs],
    optionalOutputs: [...c.optionalOutputs],
    timeoutMs: c.timeoutMs,
    resources: { ...c.resources },
    ...(c.network ? { network: true } : {}),
    ...(c.gpu && c.resources.gpus > 0 ? { gpu: { memoryBytes: c.gpu.memoryBytes, models: c.gpu.models ? [...c.gpu.models] : null } } : {}),
    // The devices the scheduler chose and applyPlan re-checked: the agent hands over exactly these.
    ...(att.gpuDevices ? { gpuDevices: att.gpuDevices.map((g) => ({ index: g.index, memoryBytes: g.memoryBytes })) } : {}),
  };
}
