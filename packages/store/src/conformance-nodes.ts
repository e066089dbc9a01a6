/**
 * Store conformance for node operations: operator flags honoured by applyPlan's re-check, remove (refused while a
 * node holds work, forced requeues it), pruning of long-gone nodes, and quarantine counting only a node's own system
 * failures within the window, released by the cool-down or an operator; and retention (finished work only, a
 * workflow as a whole, re-checked at deletion; the blobs remaining jobs refer to); join requests (pending nodes) and
 * join-code uses. Called by runStoreConformance.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, compileWorkflowSpec, newAttemptId, newJobId, newNodeId, newTokenId, newWorkflowId, taskIdOf, type AttemptId, type JobId, type NodeId } from '@dsg/core';
import type { FinishReport, Store, StorePolicy, TokenRecord } from './store.js';
import type { StoreFactoryResult } from './conformance.js';

const GiB = 1024 ** 3;
const MIN = 60_000;
const POLICY: StorePolicy = { maxSystemRetries: 10, quarantine: { failures: 3, windowMs: 10 * MIN, coolDownMs: 30 * MIN } };

export function runNodeConformance(name: string, make: () => Promise<StoreFactoryResult>): void {
  let clock = 1_800_000_000_000;
  const tick = (ms = 1000): number => (clock += ms);
  const withStore = (title: string, fn: (s: Store) => Promise<void>) =>
    it(title, async () => {
      const f = await make();
      try {
        await f.store.init();
        await fn(f.store);
      } finally {
        await f.cleanup();
      }
    });
  const job = async (s: Store, spec: Record<string, unknown>) => {
    const id = newJobId(tick());
    return s.createJob({ id, name: String(spec['name']), spec, compiled: compileJobSpec(spec), inputs: [], createdAt: clock, warnings: [] });
  };
  const node = async (s: Store, name: string): Promise<NodeId> => {
    const id = newNodeId(tick());
    await s.upsertNode({
      id, name, capacity: { cpuMillis: 8000, memoryBytes: 8 * GiB, gpus: 0, diskBytes: 100 * GiB },
      facts: { hostname: name, os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: [] },
      labels: {}, agentVersion: 't', address: null, now: clock,
    });
    return id;
  };
  const assign = (s: Store, jobId: JobId, index: number, nodeId: NodeId) =>
    s.applyPlan([{ attemptId: newAttemptId(tick()), taskId: taskIdOf(jobId, index), nodeId, prefetch: false }], clock, { overcommit: 1 });
  const fail = (attemptId: AttemptId, end: FinishReport['end']): FinishReport => ({ attemptId, end, startedAt: clock, finishedAt: tick(), outputs: [] });
  const SYSTEM: FinishReport['end'] = { kind: 'error', reason: 'inputs_unavailable', message: 'blob gone' };

  describe(`Store conformance, retention: ${name}`, () => {
    withStore('lists only finished work, a workflow as a whole; deletes re-check; referenced blobs follow what remains', async (s) => {
      const sha = (c: string) => c.repeat(64);
      const n = await node(s, 'n');
      const mk = async (nm: string, input: string) => {
        const id = newJobId(tick());
        return s.createJob({ id, name: nm, spec: {}, compiled: compileJobSpec({ name: nm, command: ['x'] }), inputs: [{ path: 'in', sha256: sha(input), size: 1, mode: 0o644 }], createdAt: clock, warnings: [] });
      };
      const done = await mk('done', 'a');
      const queued = await mk('queued', 'a');
      const retried = await mk('retried', 'b');
      for (const j of [done, retried]) {
        const [a] = (await assign(s, j.id, 0, n)).created;
        await s.recordReports([], [{ attemptId: a!.id, end: { kind: 'exited', exitCode: j === done ? 0 : 1, signal: null }, startedAt: clock, finishedAt: tick(), outputs: j === done ? [{ path: 'o', size: 5, sha256: sha('c') }] : [] }], clock, POLICY);
      }
      const spec = { name: 'wf', stages: { A: { command: ['x'] }, B: { needs: ['A'], command: ['x'] } } };
      const compiled = compileWorkflowSpec(spec);
      const wf = await s.createWorkflow({ id: newWorkflowId(tick()), name: 'wf', spec, compiled, createdAt: clock, stages: compiled.stages.map(() => ({ jobId: newJobId(tick()), inputs: [], warnings: [] })) });
      const stageA = wf.stages[0]!.job.id;
      const [wa] = (await assign(s, stageA, 0, n)).created;
      await s.recordReports([], [{ attemptId: wa!.id, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: clock, finishedAt: tick(), outputs: [{ path: 'w', size: 3, sha256: sha('d') }] }], clock, POLICY);

      // The unfinished workflow's finished stage A is not listed; neither is the queued job.
      let work = await s.listFinishedWork(100);
      assert.deepEqual(work.map((w) => [w.kind, w.id]), [['job', done.id], ['job', retried.id]]);
      assert.deepEqual([work[0]!.outputBytes, work[0]!.taskCount], [5, 1]);
      // A dry run's view: without `done`, its output goes, the input it shares with the queued job stays.
      const without = await s.referencedBlobs(new Set([done.id]));
      assert.deepEqual([...without].sort(), [sha('a'), sha('b'), sha('d')]);
      // A retry reopens `retried` before the deletion commits: it is kept.
      await s.retryJob(retried.id, tick());
      const deleted = await s.deleteFinishedWork(work.map((w) => ({ kind: w.kind, id: w.id })));
      assert.deepEqual(deleted, [done.id]);
      assert.equal(await s.getJob(done.id), null);
      assert.ok(await s.getJob(retried.id));
      assert.ok(await s.getJob(queued.id));
      assert.deepEqual([...(await s.referencedBlobs())].sort(), [sha('a'), sha('b'), sha('d')]);
      assert.equal(await s.jobExists(done.id), false);

      // Once the workflow finishes (B runs), it is listed and deleted as a whole.
      const stageB = wf.stages[1]!.job.id;
      const [wb] = (await assign(s, stageB, 0, n)).created;
      await s.recordReports([], [{ attemptId: wb!.id, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: clock, finishedAt: tick(), outputs: [] }], clock, POLICY);
      work = await s.listFinishedWork(100);
      const w = work.find((x) => x.kind === 'workflow')!;
      assert.deepEqual([w.id, [...w.jobIds].sort(), w.outputBytes, w.taskCount], [wf.id, [stageA, stageB].sort(), 3, 2]);
      assert.deepEqual([...(await s.deleteFinishedWork([{ kind: 'workflow', id: wf.id }]))].sort(), [stageA, stageB].sort());
      assert.equal(await s.getWorkflow(wf.id), null);
      assert.deepEqual([...(await s.referencedBlobs())].sort(), [sha('a'), sha('b')]);
      const st = await s.stats();
      assert.deepEqual(st.jobsByState, { queued: 2 });
      assert.deepEqual(st.nodesByState, { online: 1 });
    });
  });

  describe(`Store conformance, join requests: ${name}`, () => {
    const request = (id: string, key: string, at: number) => ({
      id, keyHash: key, name: 'pc', factsJson: '{}', address: '10.0.0.5', createdAt: at, lastSeenAt: at,
      state: 'pending' as const, decidedAt: null, decidedBy: null, reason: null, nodeId: null,
    });
    withStore('a poll with the same key refreshes one request; a decision is taken once; stale pending ones are forgotten', async (s) => {
      const t0 = tick();
      await s.upsertJoinRequest(request('AAAA-AAAA', 'k1', t0));
      await s.upsertJoinRequest({ ...request('BBBB-BBBB', 'k1', tick()), name: 'pc-renamed', address: '10.0.0.6' });
      const all = await s.listJoinRequests();
      assert.equal(all.length, 1, 'the same key is the same request');
      assert.deepEqual([all[0]!.id, all[0]!.name, all[0]!.address, all[0]!.createdAt], ['AAAA-AAAA', 'pc-renamed', '10.0.0.6', t0]);
      const nodeId = newNodeId(tick());
      assert.equal(await s.decideJoinRequest('AAAA-AAAA', { state: 'approved', at: clock, by: 'admin', reason: null, nodeId }), true);
      assert.equal(await s.decideJoinRequest('AAAA-AAAA', { state: 'rejected', at: clock, by: 'admin', reason: 'late', nodeId: null }), false, 'decided once');
      const got = await s.findJoinRequestByKey('k1');
      assert.deepEqual([got?.state, got?.nodeId, got?.decidedBy], ['approved', nodeId, 'admin']);
      assert.equal(await s.findJoinRequestByKey('nope'), null);
      await s.upsertJoinRequest(request('CCCC-CCCC', 'k2', tick()));
      tick(10_000);
      assert.equal(await s.deleteStaleJoinRequests(clock - 5_000), 1, 'only the pending one not seen since');
      assert.deepEqual((await s.listJoinRequests()).map((r) => r.id), ['AAAA-AAAA']);
    });
  });

  describe(`Store conformance, node operations: ${name}`, () => {
    withStore('cordoned, draining and quarantined nodes are refused by applyPlan; clearing the flags takes them back', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 3 });
      const n = await node(s, 'n');
      for (const change of [{ cordoned: true }, { cordoned: false, draining: true }]) {
        const rec = await s.setNodeFlags(n, change, clock);
        assert.ok(rec);
        const r = await assign(s, j.id, 0, n);
        assert.deepEqual(r.rejected.map((x) => x.why), ['node_unavailable'], JSON.stringify(change));
      }
      const back = await s.setNodeFlags(n, { cordoned: false, draining: false }, clock);
      assert.deepEqual([back!.cordoned, back!.draining], [false, false]);
      assert.equal((await assign(s, j.id, 0, n)).created.length, 1);
      assert.equal(await s.setNodeFlags(newNodeId(tick()), { cordoned: true }, clock), null);
      // Flags survive the node joining again.
      await s.setNodeFlags(n, { cordoned: true }, clock);
      await s.upsertNode({ ...(await s.getNode(n))!, now: tick() });
      assert.equal((await s.getNode(n))!.cordoned, true);
    });

    withStore('remove: refused while the node holds work; forced, its attempts end as lost and their tasks are requeued', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'] });
      const n = await node(s, 'n');
      const [a] = (await assign(s, j.id, 0, n)).created;
      const refused = await s.removeNode(n, { force: false, reason: 'r' }, tick(), POLICY);
      assert.equal(refused!.removed, false);
      assert.deepEqual(refused!.held.map((x) => x.id), [a!.id]);
      assert.ok(await s.getNode(n));
      const forced = await s.removeNode(n, { force: true, reason: 'removed by an operator' }, tick(), POLICY);
      assert.equal(forced!.removed, true);
      assert.equal(forced!.requeued[0]!.retry, true);
      assert.equal(await s.getNode(n), null);
      assert.equal((await s.getTask(taskIdOf(j.id, 0)))!.state, 'queued');
      assert.equal((await s.getAttempt(a!.id))!.state, 'lost');
      assert.equal(await s.removeNode(n, { force: true, reason: 'r' }, tick(), POLICY), null);
    });

    withStore('prune forgets offline and lost nodes gone since before the cut-off that hold no work, and only those', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'] });
      const [old, holding, recent, online] = [await node(s, 'old'), await node(s, 'holding'), await node(s, 'recent'), await node(s, 'online')];
      await assign(s, j.id, 0, holding);
      await s.setNodeState(old, 'offline', clock);
      await s.setNodeState(holding, 'lost', clock);
      const cut = tick(60_000);
      await s.setNodeState(recent, 'offline', tick());
      await s.upsertNode({ ...(await s.getNode(recent))!, now: clock });
      await s.setNodeState(recent, 'offline', clock);
      const gone = await s.pruneNodes(cut);
      assert.deepEqual(gone.map((n) => n.name), ['old']);
      assert.deepEqual((await s.listNodeUsage()).map((u) => u.node.name).sort(), ['holding', 'online', 'recent']);
      void online;
    });

    withStore('preempted by the machine\'s owner: requeued every time, never counted against retries, never quarantines', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], retries: 0 });
      const n = await node(s, 'n');
      for (let i = 0; i < 6; i++) {
        const [a] = (await assign(s, j.id, 0, n)).created;
        assert.ok(a, `assigned (round ${i})`);
        await s.recordReports([], [fail(a.id, { kind: 'error', reason: 'preempted', message: 'owner back; 1.0s of work lost' })], clock, POLICY);
        const t = (await s.listTasks(j.id, { limit: 1 })).items[0]!;
        assert.deepEqual([t.state, t.userFailures, t.systemFailures], ['queued', 0, 0], `round ${i}`);
      }
      assert.equal((await s.getNode(n))!.quarantinedUntil, null);
    });

    withStore('quarantine: 3 system failures of the node\'s own within 10 min; not user failures, not lost attempts; cool-down and release', async (s) => {
      const j = await job(s, { name: 'j', command: ['x'], array: 20, retries: 10 });
      const n = await node(s, 'n');
      const run = async (index: number, end: FinishReport['end']) => {
        const [a] = (await assign(s, j.id, index, n)).created;
        assert.ok(a, 'assigned');
        await s.recordReports([], [fail(a.id, end)], clock, POLICY);
      };
      // User failures and lost attempts never count.
      for (let i = 0; i < 4; i++) await run(i, { kind: 'exited', exitCode: 1, signal: null });
      await run(4, { kind: 'lost', message: 'gone' });
      await run(5, { kind: 'error', reason: 'agent_stopped', message: 'stopping' });
      assert.equal((await s.getNode(n))!.quarantinedUntil, null);
      // Two system failures, then the window passes: the count starts again.
      await run(6, SYSTEM);
      await run(7, SYSTEM);
      tick(11 * MIN);
      await run(8, SYSTEM);
      await run(9, SYSTEM);
      assert.equal((await s.getNode(n))!.quarantinedUntil, null, 'only 2 within the window');
      await run(10, SYSTEM);
      const q = (await s.getNode(n))!;
      assert.equal(q.quarantinedUntil, clock + 30 * MIN);
      assert.match(q.quarantineReason!, /^3 system failures in 10 min \(latest: inputs_unavailable: blob gone\)$/);
      assert.deepEqual((await assign(s, j.id, 11, n)).rejected.map((x) => x.why), ['node_unavailable']);
      // After the cool-down it takes work again, and the failures before it no longer count.
      tick(31 * MIN);
      await run(11, SYSTEM);
      assert.equal((await s.getNode(n))!.quarantinedUntil, q.quarantinedUntil, 'not quarantined again by one failure');
      await run(12, SYSTEM);
      await run(13, SYSTEM);
      const again = (await s.getNode(n))!;
      assert.ok(again.quarantinedUntil! > clock);
      // An operator's release ends it now, and resets the count.
      const released = await s.setNodeFlags(n, { releaseQuarantine: true }, tick());
      assert.equal(released!.quarantinedUntil, clock);
      assert.equal((await assign(s, j.id, 14, n)).created.length, 1);
      await run(15, SYSTEM);
      assert.equal((await s.getNode(n))!.quarantinedUntil, released!.quarantinedUntil, 'the failures before the release no longer count');
    });
  });

  describe(`Store conformance, join-code uses: ${name}`, () => {
    withStore('useToken counts up to maxUses and no further; tokens without a limit count on', async (s) => {
      const code: TokenRecord = { id: newTokenId(tick()), hash: 'h-code', role: 'node', name: 'code', createdAt: clock, revokedAt: null, expiresAt: clock + 3_600_000, maxUses: 2 };
      const join: TokenRecord = { id: newTokenId(tick()), hash: 'h-join', role: 'node', name: 'join', createdAt: clock, revokedAt: null };
      await s.createToken(code);
      await s.createToken(join);
      assert.deepEqual(await Promise.all([s.useToken(code.id), s.useToken(code.id), s.useToken(code.id)]), [true, true, false]);
      for (let i = 0; i < 5; i++) assert.equal(await s.useToken(join.id), true);
      const [c, j] = [(await s.getToken(code.id))!, (await s.getToken(join.id))!];
      assert.deepEqual([c.uses, c.maxUses, j.uses, j.maxUses], [2, 2, 5, null]);
    });
  });
}