/** Workflow routes: submit, list, show (the stage graph), cancel, retry, outputs by stage. */
import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  ConflictError,
  ListWorkflowsQueryV1Schema,
  SubmitWorkflowRequestV1Schema,
  type RetryResponseV1,
  type SubmitWorkflowResponseV1,
  type WorkflowV1,
} from '@dsg/core';
import { itemsV1Schema, OutputV1Schema, pageV1Schema, RetryResponseV1Schema, WorkflowV1Schema } from '@dsg/core/wire-schemas';
import type { JobRecord, Store, WorkflowRecord } from '@dsg/store';
import type { PendingReason } from '@dsg/scheduler';
import type { WorkService } from '../../service/work-service.js';
import { toOutputV1, toWorkflowV1 } from '../mappers.js';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import { z } from 'zod';

const WorkflowParams = z.strictObject({ id: z.string().meta({ description: 'A workflow id (`wf_…`).' }) });
import type { Audit, Authed } from './authed.js';
import { projectFilter } from '../../auth.js';

export interface WorkflowRouteDeps {
  readonly work: WorkService;
  readonly store: Store;
  readonly authed: Authed;
  readonly audit: Audit;
  readonly pendingOf: (j: JobRecord) => PendingReason | undefined;
}

export function workflowRoutes(app: FastifyInstance, deps: WorkflowRouteDeps): void {
  const { work, authed } = deps;
  const v1 = (w: WorkflowRecord): WorkflowV1 => toWorkflowV1(w, deps.pendingOf);

  app.post(`${API_PREFIX}/workflows`, { schema: S({ summary: 'Submit a workflow', tags: ['workflows'], body: SubmitWorkflowRequestV1Schema, response: { 201: z.strictObject({ workflow: WorkflowV1Schema }) }, errors: [404, 409, 413] }) }, async (req, reply) => {
    const p = await authed(req, 'jobs:write');
    const body = parseOr400(SubmitWorkflowRequestV1Schema, req.body, 'body');
    const wf = await work.submitWorkflow(body, p);
    await deps.audit(req, 'workflow.submitted', wf.id, { name: wf.name, project: wf.project, stages: wf.stages.length });
    const res: SubmitWorkflowResponseV1 = { workflow: v1(wf) };
    return reply.status(201).send(res);
  });
  app.get(`${API_PREFIX}/workflows`, { schema: S({ summary: 'List workflows, newest first', tags: ['workflows'], querystring: ListWorkflowsQueryV1Schema, response: { 200: pageV1Schema(WorkflowV1Schema) } }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const q = parseOr400(ListWorkflowsQueryV1Schema, req.query, 'query');
    const projects = projectFilter(p);
    const page = await deps.store.listWorkflows({ limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(projects ? { projects } : {}) });
    return { items: page.items.map(v1), nextCursor: page.nextCursor };
  });
  app.get(`${API_PREFIX}/workflows/:id`, { schema: S({ summary: 'A workflow with its stage graph', tags: ['workflows'], params: WorkflowParams, response: { 200: WorkflowV1Schema }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    return v1(await work.workflow((req.params as { id: string }).id, p));
  });
  app.post(`${API_PREFIX}/workflows/:id/cancel`, { schema: S({ summary: 'Cancel a workflow (409 with it in `details.workflow` when it had finished)', tags: ['workflows'], params: WorkflowParams, response: { 200: WorkflowV1Schema }, errors: [404, 409] }) }, async (req) => {
    const p = await authed(req, 'jobs:write');
    const { id } = req.params as { id: string };
    const r = await work.cancelWorkflow(id, p);
    if (r.alreadyFinished) throw new ConflictError(`workflow ${id} already ${r.workflow.state}; there is nothing to cancel`, { workflow: v1(r.workflow), state: r.workflow.state });
    await deps.audit(req, 'workflow.cancelled', r.workflow.id, { name: r.workflow.name, project: r.workflow.project });
    return v1(r.workflow);
  });
  app.post(`${API_PREFIX}/workflows/:id/retry`, { schema: S({ summary: 'Retry a workflow\'s failed, cancelled and skipped work', tags: ['workflows'], params: WorkflowParams, response: { 200: RetryResponseV1Schema.extend({ workflow: WorkflowV1Schema }) }, errors: [404, 409] }) }, async (req) => {
    const p = await authed(req, 'jobs:write');
    const r = await work.retryWorkflow((req.params as { id: string }).id, p);
    await deps.audit(req, 'workflow.retried', r.workflow.id, { name: r.workflow.name, project: r.workflow.project, ...r.result });
    const body: RetryResponseV1 & { workflow: WorkflowV1 } = { ...r.result, workflow: v1(r.workflow) };
    return body;
  });
  app.get(`${API_PREFIX}/workflows/:id/outputs`, { schema: S({ summary: 'A workflow\'s output files, by stage', tags: ['workflows'], params: WorkflowParams, response: { 200: itemsV1Schema(OutputV1Schema.extend({ stage: z.string(), jobId: z.string() })) }, errors: [404] }) }, async (req) => {
    const p = await authed(req, 'jobs:read');
    const wf = await work.workflow((req.params as { id: string }).id, p);
    const items = [];
    for (const s of wf.stages) for (const o of await deps.store.listOutputs(s.job.id)) items.push({ stage: s.name, jobId: s.job.id, ...toOutputV1(o) });
    return { items };
  });
}
