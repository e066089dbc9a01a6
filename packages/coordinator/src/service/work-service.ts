/**
 * The work service: what the HTTP routes (and anything else) call to accept, cancel and retry jobs and workflows.
 * It keeps the steps that must go together in one place — commit in the store, warm the engine's job cache, wake
 * the dispatcher, tell agents to kill what was cancelled — so routes stay thin and never reach into the engine.
 */
import {
  isJobId,
  isTerminalJob,
  isWorkflowId,
  NotFoundError,
  type SubmitJobRequestV1,
  type SubmitWorkflowRequestV1,
} from '@dsg/core';
import type { JobRecord, RetryResult, Store, WorkflowRecord } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { Engine } from '../engine/engine.js';
import { submitJob, submitWorkflow } from '../engine/submit.js';
import type { BlobStore } from '../files/blob-store.js';
import type { Logger } from '../logger.js';

export interface WorkServiceDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly log: Logger;
}

export class WorkService {
  constructor(private readonly deps: WorkServiceDeps) {}

  async submitJob(req: SubmitJobRequestV1): Promise<JobRecord> {
    const { store, blobs, clock, engine, log } = this.deps;
    const job = await submitJob(req, { store, blobs, clock });
    engine.jobs.put(job.id, { name: job.name, compiled: job.compiled, inputs: job.inputs });
    engine.requestTick();
    log.info({ jobId: job.id, name: job.name, tasks: job.taskCount }, 'job accepted');
    return job;
  }

  async submitWorkflow(req: SubmitWorkflowRequestV1): Promise<WorkflowRecord> {
    const { store, blobs, clock, engine, log } = this.deps;
    const wf = await submitWorkflow(req, { store, blobs, clock });
    for (const s of wf.stages) engine.jobs.put(s.job.id, { name: s.job.name, compiled: s.job.compiled, inputs: s.job.inputs });
    engine.requestTick();
    log.info({ workflowId: wf.id, name: wf.name, stages: wf.stages.length }, 'workflow accepted');
    return wf;
  }

  async job(id: string): Promise<JobRecord> {
    const job = isJobId(id) ? await this.deps.store.getJob(id) : null;
    if (!job) throw new NotFoundError('job', id);
    return job;
  }

  async workflow(id: string): Promise<WorkflowRecord> {
    const wf = isWorkflowId(id) ? await this.deps.store.getWorkflow(id) : null;
    if (!wf) throw new NotFoundError('workflow', id);
    return wf;
  }

  async cancelJob(id: string): Promise<JobRecord> {
    const r = isJobId(id) ? await this.deps.store.requestCancel(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('job', id);
    this.deps.engine.killAttempts(r.toKill, 'the job was cancelled');
    this.deps.engine.requestTick(); // a cancelled stage may skip others and end its workflow
    this.deps.log.info({ jobId: id, killing: r.toKill.length }, 'job cancel requested');
    return r.job;
  }

  async cancelWorkflow(id: string): Promise<WorkflowRecord> {
    const r = isWorkflowId(id) ? await this.deps.store.requestWorkflowCancel(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('workflow', id);
    this.deps.engine.killAttempts(r.toKill, 'the workflow was cancelled');
    this.deps.log.info({ workflowId: id, killing: r.toKill.length }, 'workflow cancel requested');
    return r.workflow;
  }

  async retryJob(id: string): Promise<{ job: JobRecord; result: RetryResult }> {
    const r = isJobId(id) ? await this.deps.store.retryJob(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('job', id);
    this.deps.engine.requestTick();
    this.deps.log.info({ jobId: id, ...r.result }, 'job retry');
    return r;
  }

  async retryWorkflow(id: string): Promise<{ workflow: WorkflowRecord; result: RetryResult }> {
    const r = isWorkflowId(id) ? await this.deps.store.retryWorkflow(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('workflow', id);
    this.deps.engine.requestTick();
    this.deps.log.info({ workflowId: id, ...r.result }, 'workflow retry');
    return r;
  }

  /** Whether a job is finished (no pending reason to show). */
  static finished(j: JobRecord): boolean {
    return isTerminalJob(j.state);
  }
}
