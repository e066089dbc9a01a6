/**
 * The work service: what the HTTP routes (and anything else) call to accept, cancel and retry jobs and workflows.
 * It keeps the steps that must go together in one place — commit in the store, warm the engine's job cache, wake
 * the dispatcher, tell agents to kill what was cancelled — so routes stay thin and never reach into the engine.
 */
import {
  isJobId,
  OverLimitError,
  taskIdOf,
  type JobExplainV1,
  isTerminalJob,
  isWorkflowId,
  NotFoundError,
  type SubmitJobRequestV1,
  type SubmitWorkflowRequestV1,
} from '@dsg/core';
import type { JobRecord, Owner, RetryResult, Store, WorkflowRecord } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { Engine } from '../engine/engine.js';
import { submitJob, submitWorkflow } from '../engine/submit.js';
import type { BlobStore } from '../files/blob-store.js';
import { explainJob } from '@dsg/scheduler';
import type { Logger } from '../logger.js';
import { isOperatorOwned, ownerOf, requireProject, seesProject, type Principal } from '../auth.js';

export interface WorkServiceDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Admission limits (see CoordinatorOptions); defaults 1,000,000 in all, no extra cap per project. */
  readonly admission?: { readonly maxQueuedTasks?: number; readonly maxQueuedTasksPerProject?: number; readonly projectLimits?: Readonly<Record<string, { readonly maxQueuedTasks?: number }>> };
}

/** How long a client refused for a full queue is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 30;

export class WorkService {
  constructor(private readonly deps: WorkServiceDeps) {}

  /**
   * Admission control at ingress: refuse (429, Retry-After) a submit that would put more tasks waiting than the
   * grid's or the project's limit. Checked after validation (so a bad spec still gets its 400) and before anything is
   * stored. Two submits racing for the last room can both pass; the limit is a bound on the backlog, not a quota.
   */
  private async admit(project: string, incoming: number): Promise<void> {
    const maxAll = this.deps.admission?.maxQueuedTasks ?? 1_000_000;
    // A project's own limit (projectLimits.<project>.maxQueuedTasks) overrides the default for every project.
    const own = this.deps.admission?.projectLimits?.[project]?.maxQueuedTasks;
    const maxProject = own ?? this.deps.admission?.maxQueuedTasksPerProject ?? Infinity;
    const setting = own !== undefined ? `projectLimits.${project}.maxQueuedTasks` : 'maxQueuedTasksPerProject';
    const w = await this.deps.store.waitingTasks(project);
    if (w.total + incoming > maxAll)
      throw new OverLimitError(
        `the grid's queue is full: ${w.total} tasks wait to start and this adds ${incoming}, over the limit of ${maxAll} (maxQueuedTasks); try again when some have run`,
        RETRY_AFTER_SECONDS, { limit: 'maxQueuedTasks', waiting: w.total, incoming, max: maxAll },
      );
    if (w.project + incoming > maxProject)
      throw new OverLimitError(
        `project "${project}" has ${w.project} tasks waiting to start and this adds ${incoming}, over its limit of ${maxProject} (${setting}); try again when some have run`,
        RETRY_AFTER_SECONDS, { limit: setting, project, waiting: w.project, incoming, max: maxProject },
      );
  }

  /**
   * Accept a job from `by` (recorded as its owner). A submitter's job must be in one of its projects: checked once
   * the spec compiles (a bad spec still gets its 400), before its inputs are read and anything is stored.
   */
  async submitJob(req: SubmitJobRequestV1, by?: Principal): Promise<JobRecord> {
    const { store, blobs, clock, engine, log } = this.deps;
    const job = await submitJob(req, { store, blobs, clock, ...this.submitter(by) }, (c) => this.admit(c.project, c.taskCount));
    engine.jobs.put(job.id, { name: job.name, compiled: job.compiled, inputs: job.inputs, operatorOwned: isOperatorOwned(job.owner), inWorkflow: job.workflowId !== null });
    engine.requestTick();
    log.info({ jobId: job.id, name: job.name, tasks: job.taskCount }, 'job accepted');
    return job;
  }

  async submitWorkflow(req: SubmitWorkflowRequestV1, by?: Principal): Promise<WorkflowRecord> {
    const { store, blobs, clock, engine, log } = this.deps;
    const wf = await submitWorkflow(req, { store, blobs, clock, ...this.submitter(by) }, (c) =>
      this.admit(c.stages[0]?.job.project ?? 'default', c.stages.reduce((n, s) => n + s.job.taskCount, 0)));
    for (const s of wf.stages) engine.jobs.put(s.job.id, { name: s.job.name, compiled: s.job.compiled, inputs: s.job.inputs, operatorOwned: isOperatorOwned(s.job.owner), inWorkflow: true });
    engine.requestTick();
    log.info({ workflowId: wf.id, name: wf.name, stages: wf.stages.length }, 'workflow accepted');
    return wf;
  }

  /** The job, if `viewer` may see it: another project's job is "not found" to a submitter (see auth.ts). */
  private submitter(by: Principal | undefined): { owner?: Owner; checkProject?: (project: string) => void } {
    return by ? { owner: ownerOf(by), checkProject: (project) => requireProject(by, project) } : {};
  }

  async job(id: string, viewer?: Principal): Promise<JobRecord> {
    const job = isJobId(id) ? await this.deps.store.getJob(id) : null;
    if (!job || (viewer && !seesProject(viewer, job.compiled.project))) throw new NotFoundError('job', id);
    return job;
  }

  async workflow(id: string, viewer?: Principal): Promise<WorkflowRecord> {
    const wf = isWorkflowId(id) ? await this.deps.store.getWorkflow(id) : null;
    if (!wf || (viewer && !seesProject(viewer, wf.project))) throw new NotFoundError('workflow', id);
    return wf;
  }

  /** Cancel a job (its queued tasks range by range, its running ones killed); a finished job is left as it is. */
  async cancelJob(id: string, by?: Principal): Promise<{ job: JobRecord; alreadyFinished: boolean }> {
    if (by) await this.job(id, by);
    const r = isJobId(id) ? await this.deps.engine.cancels.cancel(id) : null;
    if (!r) throw new NotFoundError('job', id);
    this.deps.log.info({ jobId: id, state: r.job.state, alreadyFinished: r.alreadyFinished }, 'job cancel');
    return r;
  }

  /** Cancel every unfinished stage of a workflow; stages not started yet never start. */
  async cancelWorkflow(id: string, by?: Principal): Promise<{ workflow: WorkflowRecord; alreadyFinished: boolean }> {
    const { store, engine, clock, log } = this.deps;
    if (by) await this.workflow(id, by);
    const r = isWorkflowId(id) ? await store.requestWorkflowCancel(id, clock.now()) : null;
    if (!r) throw new NotFoundError('workflow', id);
    if (r.alreadyFinished) return { workflow: r.workflow, alreadyFinished: true };
    engine.killAttempts(r.toKill, 'the workflow was cancelled');
    for (const s of r.workflow.stages) if (s.job.finishedAt === null && s.job.released) await engine.cancels.cancel(s.job.id);
    log.info({ workflowId: id, killing: r.toKill.length }, 'workflow cancelled');
    return { workflow: (await store.getWorkflow(r.workflow.id))!, alreadyFinished: false };
  }

  async retryJob(id: string, by?: Principal): Promise<{ job: JobRecord; result: RetryResult }> {
    if (by) await this.job(id, by);
    const r = isJobId(id) ? await this.deps.store.retryJob(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('job', id);
    this.deps.engine.requestTick();
    this.deps.log.info({ jobId: id, ...r.result }, 'job retry');
    return r;
  }

  async retryWorkflow(id: string, by?: Principal): Promise<{ workflow: WorkflowRecord; result: RetryResult }> {
    if (by) await this.workflow(id, by);
    const r = isWorkflowId(id) ? await this.deps.store.retryWorkflow(id, this.deps.clock.now()) : null;
    if (!r) throw new NotFoundError('workflow', id);
    this.deps.engine.requestTick();
    this.deps.log.info({ workflowId: id, ...r.result }, 'workflow retry');
    return r;
  }

  /** Why a job (or one of its tasks) waits: the scheduler's chain run now against every online node. */
  async explainJob(id: string, taskIndex: number | null, viewer?: Principal): Promise<JobExplainV1> {
    const job = await this.job(id, viewer);
    const { store, engine } = this.deps;
    let task: JobExplainV1['task'] = null;
    if (taskIndex !== null) {
      const t = taskIndex < job.taskCount ? await store.getTask(taskIdOf(job.id, taskIndex)) : null;
      if (!t) throw new NotFoundError('task', `${id}.${taskIndex} (the job has ${job.taskCount} tasks, numbered from 0)`);
      task = { index: t.index, state: t.state };
    }
    const base = { jobId: job.id, state: job.state, task, queue: null, filters: [], nodes: [] };
    if (isTerminalJob(job.state)) return { ...base, verdict: 'finished', summary: `the job has ${job.state}; nothing waits` };
    if (task && task.state !== 'queued')
      return { ...base, verdict: 'not_queued', summary: `task ${task.index} is ${task.state}, not waiting for a node` };
    if (job.counts.queued === 0)
      return { ...base, verdict: 'not_queued', summary: job.state === 'waiting' ? `waiting for the stages it needs${job.skipReason ? ` (${job.skipReason})` : ''}` : 'no task of the job is queued' };
    const c = job.compiled;
    const x = explainJob(
      {
        jobId: job.id, resources: c.resources, typicalRunMs: null, seq: 0, queued: job.counts.queued, tasks: [],
        constraints: c.constraints, prefer: c.prefer, parallelism: c.parallelism, active: job.counts.assigned + job.counts.running,
        // What the dispatcher reads too (dispatcher.ts builds the same from the job cache).
        operatorOwned: isOperatorOwned(job.owner), ...(c.isolation ? { isolation: c.isolation } : {}), ...(c.gpu ? { gpu: c.gpu } : {}),
      },
      await engine.snapshotNodes({ releases: true }),
      engine.schedulerConfig,
      undefined,
      this.deps.clock.now(),
    );
    return {
      ...base,
      verdict: x.verdict,
      summary: x.summary,
      queue: await store.queueAhead(job.id),
      filters: x.filters.map((f) => ({ ...f })),
      nodes: x.nodes.map(({ nodeId, name, filter, verdict, message }) => ({ nodeId, name, filter, verdict, message })),
      startBy: x.startBy === null ? null : new Date(x.startBy).toISOString(),
    };
  }

}
