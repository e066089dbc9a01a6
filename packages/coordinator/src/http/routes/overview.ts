/**
 * Dashboard read models: `GET /api/v1/overview` (the grid at a glance) and `GET /api/v1/nodes/:id/attempts`
 * (what a node runs now). Both are reads any reader may make; a submitter sees only its projects' queues,
 * failures and attempts.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { API_PREFIX, type NodeAttemptV1, type OverviewV1 } from '@dsg/core';
import { NodeAttemptListV1Schema, OverviewV1Schema } from '@dsg/core/wire-schemas';
import { routeSchema as S } from '../openapi.js';
import type { Store } from '@dsg/store';
import type { Engine } from '../../engine/engine.js';
import type { ThroughputMeter } from '../../events/throughput-meter.js';
import { seesProject, projectFilter } from '../../auth.js';
import { findNode } from './nodes.js';
import type { Authed } from './authed.js';

export interface OverviewRouteDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly throughput: ThroughputMeter;
  readonly authed: Authed;
  readonly now: () => number;
}

const MAX_PROJECTS = 50;
const MAX_FAILURES = 10;
const MAX_NODE_ATTEMPTS = 500;

export function overviewRoutes(app: FastifyInstance, deps: OverviewRouteDeps): void {
  const { store, engine } = deps;

  app.get(`${API_PREFIX}/overview`, {
    schema: S({ summary: 'The grid at a glance: nodes, resources in use, queues per project, throughput, recent failures', tags: ['grid'], response: { 200: OverviewV1Schema } }),
  }, async (req) => {
    const p = await deps.authed(req, 'jobs:read');
    const usage = await store.listNodeUsage();
    const nodes: OverviewV1['nodes'] = { online: 0, offline: 0, lost: 0, draining: 0, cordoned: 0 };
    const cores = { used: 0, total: 0 };
    const memoryBytes = { used: 0, total: 0 };
    const gpus = { used: 0, total: 0 };
    for (const u of usage) {
      nodes[u.node.state]++;
      if (u.node.state !== 'online') continue;
      if (u.node.draining) nodes.draining++;
      else if (u.node.cordoned) nodes.cordoned++;
      cores.used += u.running.cpuMillis / 1000;
      cores.total += u.node.capacity.cpuMillis / 1000;
      memoryBytes.used += u.running.memoryBytes;
      memoryBytes.total += u.node.capacity.memoryBytes;
      gpus.used += u.running.gpus;
      gpus.total += u.node.capacity.gpus;
    }
    // Queue depth per project, from the scheduler's own queue read (one row per job with queued tasks).
    const perProject = new Map<string, { queued: number; running: number }>();
    for (const q of await store.listQueuedJobs()) {
      const job = await engine.jobs.get(q.jobId);
      if (!job || !seesProject(p, job.compiled.project)) continue;
      const e = perProject.get(job.compiled.project) ?? { queued: 0, running: 0 };
      e.queued += q.queued;
      e.running += q.active;
      perProject.set(job.compiled.project, e);
    }
    const queue = [...perProject].map(([project, v]) => ({ project, ...v })).sort((a, b) => b.queued - a.queued).slice(0, MAX_PROJECTS);
    const projects = projectFilter(p);
    const failedJobs = await store.listJobs({ state: 'failed', limit: MAX_FAILURES, ...(projects ? { projects } : {}) });
    const recentFailures: OverviewV1['recentFailures'] = [];
    for (const j of failedJobs.items) {
      const t = (await store.listTasks(j.id, { state: 'failed', limit: 1 })).items[0];
      recentFailures.push({
        jobId: j.id, name: j.name, project: j.compiled.project, finishedAt: j.finishedAt === null ? null : new Date(j.finishedAt).toISOString(),
        failed: j.counts.failed, task: t?.index ?? null, reason: t?.failure?.message ?? null,
      });
    }
    const body: OverviewV1 = {
      at: new Date(deps.now()).toISOString(), nodes, cores, memoryBytes, gpus, queue,
      throughput: deps.throughput.lastHour(), recentFailures,
    };
    return body;
  });

  app.get(`${API_PREFIX}/nodes/:id/attempts`, {
    schema: S({
      summary: 'Attempts a node holds now (assigned or running)', tags: ['nodes'],
      params: z.strictObject({ id: z.string().min(1).max(200).meta({ description: 'A node id or name.' }) }),
      response: { 200: NodeAttemptListV1Schema }, errors: [404],
    }),
  }, async (req) => {
    const p = await deps.authed(req, 'nodes:read');
    const u = await findNode(store, (req.params as { id: string }).id);
    const attempts = (await store.activeAttemptsOnNode(u.node.id)).slice(0, MAX_NODE_ATTEMPTS);
    const items: NodeAttemptV1[] = [];
    const jobs = new Map<string, { name: string; compiled: { project: string } } | null>();
    for (const a of attempts) {
      if (!jobs.has(a.jobId)) jobs.set(a.jobId, await engine.jobs.get(a.jobId) ?? null);
      const job = jobs.get(a.jobId);
      if (!job || !seesProject(p, job.compiled.project)) continue;
      if (a.state !== 'assigned' && a.state !== 'running') continue;
      items.push({
        attemptId: a.id, jobId: a.jobId, jobName: job.name, taskIndex: a.taskIndex, state: a.state,
        assignedAt: new Date(a.assignedAt).toISOString(), startedAt: a.startedAt === null ? null : new Date(a.startedAt).toISOString(),
      });
    }
    return { items };
  });
}
