import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { JobId, NodeId } from '@dsg/core';
import { MIGRATIONS, openSqliteDatabase, openSqliteStore, runStoreConformance, SQLITE_DRIVERS, sqliteDriverAvailable, type SqliteDriverName, type Store } from '@dsg/store';
import { QUEUED_JOBS_SQL, QUEUED_TASKS_OF_JOB_SQL } from '../src/sqlite/queue-queries.js';
import { GPU_HELD_OF_NODE_SQL, GPU_HELD_SQL } from '../src/sqlite/gpu-queries.js';
import { Checkpointer } from '../src/sqlite/checkpointer.js';
import { sqliteModulePath } from '../src/sqlite/driver.js';

// Every case below runs once per SQLite driver (src/sqlite/driver.ts): the built-in node:sqlite and the native
// better-sqlite3. A driver this process cannot load (node:sqlite before Node 22.13, better-sqlite3 not installed
// or built for another Node) is skipped loudly, never with CI=true.
for (const driver of SQLITE_DRIVERS) {
  const available = sqliteDriverAvailable(driver);
  if (available !== true) {
    if (process.env['CI'] === 'true') it(`the SQLite driver ${driver} is available (CI=true: nothing may skip)`, () => assert.fail(available.message));
    else {
      process.stderr.write(`\n[store test] SKIPPING every case on the SQLite driver ${driver}: ${available.message}\n\n`);
      it(`SqliteStore on ${driver}`, { skip: `driver not available: ${available.message}` }, () => {});
    }
    continue;
  }
  describe(`SqliteStore on ${driver}`, () => sqliteStoreCases(driver));
}

function sqliteStoreCases(driver: SqliteDriverName): void {
  const Database = (file: string, o: { readonly?: boolean } = {}) => openSqliteDatabase(file, { driver, readonly: o.readonly ?? false });

  runStoreConformance(`SqliteStore (${driver}) on a temp file`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    const file = join(dir, 'dsg.sqlite');
    const opened: Store[] = [openSqliteStore({ file, driver })];
    return {
      store: opened[0]!,
      reopen: async () => {
        await opened[opened.length - 1]!.close();
        const s = openSqliteStore({ file, driver });
        opened.push(s);
        return s;
      },
      cleanup: async () => {
        for (const s of opened) await s.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

  it('migrations are numbered 1, 2, 3… without gaps, are recorded, and re-running init is a no-op', async () => {
    const versions = MIGRATIONS.map((m) => m.version);
    assert.deepEqual([...versions].sort((a, b) => a - b), versions.map((_, i) => i + 1), 'numbered from 1 without gaps');
    assert.ok(versions.every((v) => Number.isInteger(v) && v >= 1));
    const dir = await mkdtemp(join(tmpdir(), 'dsg-mig-'));
    try {
      const file = join(dir, 'x.sqlite');
      const said: string[] = [];
      const s = openSqliteStore({ file, driver, onUpgrade: (m) => said.push(m) });
      await s.init();
      await s.init();
      await s.close();
      assert.deepEqual(said, [], 'a new database is made, not upgraded: nothing to say');
      const db = Database(file, { readonly: true });
      try {
        assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').all().map((r) => ({ ...(r as object) })), [...versions].sort((a, b) => a - b).map((version) => ({ version })));
        assert.equal(db.pragma('journal_mode'), 'wal');
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a database made before migration 3 gets the per-job queue indexes, and its queued jobs are listed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-mig3-'));
    try {
      const file = join(dir, 'old.sqlite');
      // The schema as version 1 left it, with a job of 3 queued tasks written the way version 1 wrote them.
      const old = Database(file);
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      old.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
      old.prepare("INSERT INTO schema_migrations VALUES (1, 'init', 0)").run();
      old.prepare(`INSERT INTO jobs (id, name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at, n_queued)
                   VALUES ('job_old', 'old', '{}', '{}', '[]', '[]', 3, 1000, 1024, 0, 0, 0, 3)`).run();
      for (let i = 0; i < 3; i++) old.prepare("INSERT INTO tasks (id, job_id, idx, state, queue_seq) VALUES (?, 'job_old', ?, 'queued', ?)").run(`job_old.${i}`, i, 10 + i);
      old.close();

      const s = openSqliteStore({ file, driver });
      try {
        await s.init();
        const jobs = await s.listQueuedJobs();
        assert.deepEqual(jobs.map((j) => [j.jobId, j.queued, j.first.taskId, j.first.seq]), [['job_old', 3, 'job_old.0', 10]]);
        assert.deepEqual((await s.listQueuedTasks([{ jobId: 'job_old' as JobId, limit: 2 }])).map((t) => t.index), [0, 1]);
      } finally {
        await s.close();
      }
      const db = Database(file, { readonly: true });
      try {
        const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as Array<{ name: string }>).map((r) => r.name);
        assert.ok(names.includes('jobs_with_queued') && names.includes('tasks_job_queue'), names.join(', '));
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('migration 15 computes task ids instead of storing them: a database of version 14 keeps its tasks, ids and attempts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-mig15-'));
    try {
      const file = join(dir, 'old.sqlite');
      // The schema as version 14 left it: a job of 3 tasks written the way it wrote them (id stored), one of them
      // assigned with its attempt, and a second job queued behind it.
      const old = Database(file);
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const m of MIGRATIONS.filter((x) => x.version <= 14)) {
        old.exec(m.sql);
        old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
      }
      const job = (id: string, queued: number, assigned: number) =>
        old.prepare(`INSERT INTO jobs (id, name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at, n_queued, n_assigned)
                     VALUES (?, 'old', '{}', '{}', '[]', '[]', ?, 1000, 1024, 0, 0, 0, ?, ?)`).run(id, queued + assigned, queued, assigned);
      job('job_a', 2, 1);
      job('job_b', 2, 0);
      const task = old.prepare('INSERT INTO tasks (id, job_id, idx, state, queue_seq, current_attempt_id, attempts) VALUES (?, ?, ?, ?, ?, ?, ?)');
      task.run('job_a.0', 'job_a', 0, 'assigned', 1, 'att_1', 1);
      task.run('job_a.1', 'job_a', 1, 'queued', 2, null, 0);
      task.run('job_a.2', 'job_a', 2, 'queued', 3, null, 0);
      task.run('job_b.0', 'job_b', 0, 'queued', 4, null, 0);
      task.run('job_b.1', 'job_b', 1, 'queued', 5, null, 0);
      old.prepare(`INSERT INTO attempts (id, task_id, job_id, task_index, number, node_id, state, assigned_at, cpu_millis, memory_bytes, gpus, disk_bytes)
                   VALUES ('att_1', 'job_a.0', 'job_a', 0, 1, 'node_x', 'assigned', 0, 1000, 1024, 0, 0)`).run();
      old.close();

      const said: string[] = [];
      const s = openSqliteStore({ file, driver, onUpgrade: (m) => said.push(m) });
      try {
        await s.init();
        // A database holding tasks says it is being upgraded, before and after each migration.
        assert.match(said[0] ?? '', /^upgrading the database: migration 15 \(tasks_narrow\)/);
        assert.ok(said.some((m) => /^migration 16 \(tasks_job_queue_covering\) done in \d+\.\d s$/.test(m)), said.join('\n'));
        // The first task of each job, read from the covering index (migration 16), in queue order.
        assert.deepEqual((await s.listQueuedJobs()).map((j) => j.first.taskId), ['job_a.1', 'job_b.0']);
        const t = await s.getTask('job_a.0' as never);
        assert.equal(t?.id, 'job_a.0');
        assert.equal(t?.state, 'assigned');
        assert.equal((await s.getTask('job_b.1' as never))?.state, 'queued');
        // Only an id exactly as taskIdOf spells it finds a task.
        for (const bad of ['job_a.00', 'job_a.', 'job_a', 'job_a.-0', 'job_a.1e0']) assert.equal(await s.getTask(bad as never), null, bad);
        assert.deepEqual((await s.listAttempts('job_a.0' as never)).map((a) => a.id), ['att_1']);
        assert.deepEqual((await s.listQueued(3)).map((q) => q.taskId), ['job_a.1', 'job_a.2', 'job_b.0']);
        assert.deepEqual(await s.queueAhead('job_b' as JobId), { tasksAhead: 2, jobsAhead: 1 });
        assert.deepEqual((await s.listTasks('job_a' as JobId, { limit: 10 })).items.map((x) => x.id), ['job_a.0', 'job_a.1', 'job_a.2']);
      } finally {
        await s.close();
      }
      const db = Database(file, { readonly: true });
      try {
        const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'").all() as Array<{ name: string }>).map((r) => r.name).sort();
        assert.deepEqual(names, ['tasks_job_queue', 'tasks_with_inputs'], 'no index on the computed id, no global queue index, none on (job_id, idx)');
        // Migration 18: the table itself is keyed by (job_id, idx), one B-tree descent per task read.
        const ddl = (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").get() as { sql: string }).sql;
        assert.match(ddl, /PRIMARY KEY \(job_id, idx\)\s*\) WITHOUT ROWID/);
        const byId = (db.prepare('EXPLAIN QUERY PLAN SELECT * FROM tasks WHERE job_id = ? AND idx = ?').all('job_a', 1) as Array<{ detail: string }>).map((r) => r.detail);
        assert.deepEqual(byId, ['SEARCH tasks USING PRIMARY KEY (job_id=? AND idx=?)']);
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the dispatch pass reads the queue through indexes only: no scan of tasks, one row per job with queued tasks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-plan-'));
    try {
      const file = join(dir, 'q.sqlite');
      const s = openSqliteStore({ file, driver });
      await s.init();
      await s.close();
      const db = Database(file, { readonly: true });
      try {
        const plan = (sql: string, ...args: Array<string | number>): string[] =>
          (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail);
        const jobs = plan(QUEUED_JOBS_SQL);
        const tasks = plan(QUEUED_TASKS_OF_JOB_SQL, 'job_x', 10);
        console.log(`listQueuedJobs plan: ${jobs.join(' | ')}\nlistQueuedTasks plan: ${tasks.join(' | ')}`);
        // Jobs: only those in the partial index of jobs with queued tasks; each job's first queued task by seeks that
        // the index answers alone (no row of tasks read). The sort is over those jobs only.
        assert.ok(jobs.includes('SCAN j USING INDEX jobs_with_queued'), jobs.join('\n'));
        assert.ok(jobs.includes('SEARCH f USING COVERING INDEX tasks_job_queue (job_id=?)'), jobs.join('\n'));
        // One seek per job: the first task's position and index come from one subquery (packed in one integer).
        assert.equal(jobs.filter((d) => d.startsWith('SEARCH f ')).length, 1, jobs.join('\n'));
        assert.ok(!jobs.some((d) => /INTEGER PRIMARY KEY|^SEARCH t\b/.test(d)), `no row of tasks read: ${jobs.join('\n')}`);
        // Tasks: a range of one job's queued tasks, already in queue order (no sort of the job's tasks), index only.
        assert.deepEqual(tasks, ['SEARCH tasks USING COVERING INDEX tasks_job_queue (job_id=?)']);
        for (const d of [...jobs, ...tasks]) assert.doesNotMatch(d, /^SCAN (t|f|tasks)\b/, 'never a scan of the tasks table');
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the first queued task of each job is exact at queue positions far beyond 2^32 (packed with its index in SQL)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const file = join(dir, 'q.sqlite');
      const { compileJobSpec, newJobId, newAttemptId } = await import('@dsg/core');
      const first = openSqliteStore({ file, driver });
      await first.init();
      await first.close();
      // A database that has queued ~2^38 tasks over its life (the packing allows < 2^39).
      const big = 2 ** 38 + 12345;
      const db = Database(file);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'queue_seq'").run(big);
      db.close();
      const s = openSqliteStore({ file, driver });
      await s.init();
      const spec = { name: 'far', command: ['true'], array: 5, resources: { cpu: 1, memory: '16Mi' } };
      const job = await s.createJob({ id: newJobId(), name: 'far', spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
      const spec2 = { name: 'later', command: ['true'], resources: { cpu: 1, memory: '16Mi' } };
      const later = await s.createJob({ id: newJobId(), name: 'later', spec: spec2, compiled: compileJobSpec(spec2), inputs: [], createdAt: Date.now(), warnings: [] });
      let q = await s.listQueuedJobs();
      assert.deepEqual(q.map((j) => [j.jobId, j.first.index, j.first.seq]), [[job.id, 0, big + 1], [later.id, 0, big + 6]]);
      // Place tasks 0–2 of the first job: its first queued task is now index 3, at position big + 4.
      await s.upsertNode({ id: 'node_0000000000000000000000000a' as NodeId, name: 'n', capacity: { cpuMillis: 8000, memoryBytes: 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 1024 ** 3, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: Date.now() });
      const tasks = await s.listQueuedTasks([{ jobId: job.id, limit: 3 }]);
      const r = await s.applyPlan(tasks.map((t) => ({ attemptId: newAttemptId(Date.now()), taskId: t.taskId, nodeId: 'node_0000000000000000000000000a' as NodeId, prefetch: false })), Date.now(), { overcommit: 1 });
      assert.equal(r.created.length, 3);
      q = await s.listQueuedJobs();
      assert.deepEqual(q.map((j) => [j.jobId, j.first.index, j.first.seq, j.first.taskId]), [[job.id, 3, big + 4, `${job.id}.3`], [later.id, 0, big + 6, `${later.id}.0`]]);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('each job keeps its first queued task in its row, exact through placements, retries, losses, cancels and job retries', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const file = join(dir, 'q.sqlite');
      const { compileJobSpec, newJobId, newAttemptId, taskIdOf } = await import('@dsg/core');
      const s = openSqliteStore({ file, driver });
      await s.init();
      const db = Database(file, { readonly: true });
      const policy = { maxSystemRetries: 3 };
      // The invariant, checked against the tasks themselves after every step.
      const check = (step: string): void => {
        const bad = db.prepare(`SELECT id, queue_head AS head, (SELECT (f.queue_seq << 24) | f.idx FROM tasks f WHERE f.job_id = j.id AND f.state = 'queued' ORDER BY f.queue_seq LIMIT 1) AS truth
                                 FROM jobs j WHERE queue_head IS NOT truth`).all();
        assert.deepEqual(bad, [], `after ${step}`);
      };
      const node = 'node_0000000000000000000000000a' as NodeId;
      await s.upsertNode({ id: node, name: 'n', capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 64, memoryBytes: 64 * 1024 ** 3, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: Date.now() });
      const mk = async (name: string, array: number, retries = 0) => {
        const spec = { name, command: ['true'], array, retries, resources: { cpu: 1, memory: '16Mi' } };
        return s.createJob({ id: newJobId(), name, spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
      };
      const place = async (jobId: JobId, idx: number[]) =>
        (await s.applyPlan(idx.map((i) => ({ attemptId: newAttemptId(Date.now()), taskId: taskIdOf(jobId, i), nodeId: node, prefetch: false })), Date.now(), { overcommit: 1 })).created;
      const a = await mk('a', 6, 2);
      const b = await mk('b', 5000); // bigger than a chunk: its tasks arrive in chunks
      check('creating');
      const pa = await place(a.id, [0, 1, 2]);
      check('placing the first three of a');
      await place(a.id, [4]);
      check('placing a task behind the head');
      await s.recordReports([], [{ attemptId: pa[1]!.id, end: { kind: 'exited', exitCode: 1, signal: null }, startedAt: 1, finishedAt: 2, outputs: [] }], Date.now(), policy);
      check('a retry back to its place, before the head');
      assert.equal((await s.listQueuedJobs()).find((j) => j.jobId === a.id)?.first.index, 1);
      await s.loseAttempts([pa[0]!.id], 'lost', Date.now(), policy);
      check('a lost attempt requeued');
      await s.recordReports([], [{ attemptId: pa[2]!.id, end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: 1, finishedAt: 2, outputs: [] }], Date.now(), policy);
      check('a success');
      await s.requestCancel(b.id, Date.now());
      check('a cancel requested');
      await s.cancelQueuedTasks(b.id, { from: 0, to: 2000 }, Date.now());
      check('the first range cancelled');
      await s.cancelQueuedTasks(b.id, { from: 2000, to: 5000 }, Date.now());
      check('the rest cancelled');
      await s.retryJob(b.id, Date.now());
      check('the job retried');
      assert.equal((await s.listQueuedJobs()).find((j) => j.jobId === b.id)?.first.index, 0);
      db.close();
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('job rows stay exact when one transaction changes many tasks of several jobs (changes gathered, written once per job)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const file = join(dir, 'rows.sqlite');
      const { compileJobSpec, newJobId, newAttemptId, taskIdOf } = await import('@dsg/core');
      const s = openSqliteStore({ file, driver });
      await s.init();
      const db = Database(file, { readonly: true });
      const policy = { maxSystemRetries: 1 };
      // Every column the hot path gathers, against the tasks and attempts themselves.
      const check = (step: string): void => {
        const bad = db.prepare(`SELECT j.id,
            j.n_queued, j.n_assigned, j.n_running, j.n_succeeded, j.n_failed, j.n_cancelled, j.queue_head, j.run_ms_total, j.runs_timed, j.finished_at IS NOT NULL AS finished,
            (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'queued') AS q, (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'assigned') AS a,
            (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'running') AS r, (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'succeeded') AS s,
            (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'failed') AS f, (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'cancelled') AS c,
            (SELECT (t.queue_seq << 24) | t.idx FROM tasks t WHERE t.job_id = j.id AND t.state = 'queued' ORDER BY t.queue_seq LIMIT 1) AS head,
            (SELECT COALESCE(SUM(x.finished_at - x.started_at), 0) FROM attempts x WHERE x.job_id = j.id AND x.exit_code IS NOT NULL) AS ms,
            (SELECT COUNT(*) FROM attempts x WHERE x.job_id = j.id AND x.exit_code IS NOT NULL) AS runs,
            (SELECT COUNT(*) FROM tasks t WHERE t.job_id = j.id AND t.state IN ('queued', 'assigned', 'running')) = 0 AS done
          FROM jobs j`).all() as Array<Record<string, number | null>>;
        for (const x of bad) {
          assert.deepEqual(
            [x['n_queued'], x['n_assigned'], x['n_running'], x['n_succeeded'], x['n_failed'], x['n_cancelled'], x['queue_head'], x['run_ms_total'], x['runs_timed'], x['finished']],
            [x['q'], x['a'], x['r'], x['s'], x['f'], x['c'], x['head'], x['ms'], x['runs'], x['done']],
            `job ${x['id']} after ${step}`,
          );
        }
      };
      const node = 'node_0000000000000000000000000b' as NodeId;
      await s.upsertNode({ id: node, name: 'n', capacity: { cpuMillis: 1_000_000, memoryBytes: 1024 ** 4, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 1000, memoryBytes: 1024 ** 4, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: Date.now() });
      const jobs: JobId[] = [];
      for (const [i, n] of [40, 25, 7, 60].entries()) {
        const spec = { name: `j${i}`, command: ['true'], array: n, retries: i % 2, resources: { cpu: 1, memory: '1Mi' } };
        jobs.push((await s.createJob({ id: newJobId(), name: spec.name, spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] })).id);
      }
      check('creating');
      let seed = 7;
      const rand = (n: number): number => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) >>> 16) % n;
      let assigned: string[] = [];
      let running: string[] = [];
      for (let round = 0; round < 400; round++) {
        // One transaction: starts of what was assigned, ends of what ran (successes, failures that retry or fail,
        // exits 0 after a cancel), and placements from every job's queue, interleaved.
        const queued = await s.listQueued(12);
        const plan = queued.filter(() => rand(4) > 0).map((q) => ({ attemptId: newAttemptId(Date.now()), taskId: q.taskId, nodeId: node, prefetch: false }));
        const t = 1_000 + round * 10;
        const finishes = running.map((attemptId) => ({ attemptId: attemptId as never, end: { kind: 'exited' as const, exitCode: rand(3) === 0 ? 1 : 0, signal: null }, startedAt: t - 10, finishedAt: t + 1 + rand(50), outputs: [] })); // started in the round before
        const starts = assigned.map((attemptId) => ({ attemptId: attemptId as never, at: t }));
        const { placed } = await s.recordReportsAndPlace(starts, finishes, Date.now(), policy, { attempts: plan, overcommit: 1 });
        running = assigned;
        assigned = placed.created.map((c) => c.id);
        if (round === 5) {
          // Lost attempts (requeued or failed), in a transaction of their own.
          await s.loseAttempts(running.splice(0, 3) as never[], 'lost', Date.now(), policy);
          check(`losing attempts in round ${round}`);
        }
        if (round === 8) {
          await s.requestCancel(jobs[3]!, Date.now());
          await s.cancelQueuedTasks(jobs[3]!, { from: 0, to: 60 }, Date.now());
        }
        check(`round ${round}`);
        if (round > 8 && assigned.length === 0 && running.length === 0 && (await s.listQueued(1)).length === 0) break;
      }
      // Every job ran to its end: some tasks failed, some retried, the cancelled job's tasks ended cancelled.
      const rows = db.prepare('SELECT n_succeeded, n_failed, n_cancelled, finished_at FROM jobs').all() as Array<{ n_succeeded: number; n_failed: number; n_cancelled: number; finished_at: number | null }>;
      assert.deepEqual(rows.map((r) => r.finished_at !== null), [true, true, true, true], `every job finished: ${JSON.stringify(db.prepare('SELECT n_queued, n_assigned, n_running, n_succeeded, n_failed, n_cancelled FROM jobs').all())}`);
      assert.ok(rows.reduce((n, r) => n + r.n_failed, 0) > 0 && rows[3]!.n_cancelled > 0, 'with failures and cancels among the ends');
      assert.equal((await s.getTask(taskIdOf(jobs[0]!, 0)))?.jobId, jobs[0]);
      db.close();
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a node\'s facts and labels are parsed once, read-only, and new after the agent says hello again; a removed node is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const s = openSqliteStore({ file: join(dir, 'nodes.sqlite'), driver });
      await s.init();
      const id = 'node_0000000000000000000000000f' as NodeId;
      const facts = (model: string) => ({ hostname: 'h', os: 'linux', arch: 'x64', cpuModel: model, cores: 2, memoryBytes: 1024 ** 3, diskBytes: 0, gpus: [] });
      const hello = (model: string, labels: Record<string, string>) => s.upsertNode({ id, name: 'n', capacity: { cpuMillis: 2000, memoryBytes: 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: facts(model), labels, agentVersion: 't', address: null, now: Date.now() });
      await hello('old', { room: 'a' });
      const [first] = await s.listNodeUsage();
      const [again] = await s.listNodeUsage();
      assert.equal(first!.node.facts.cpuModel, 'old');
      assert.equal(again!.node.facts, first!.node.facts, 'parsed once, the same object handed out');
      assert.throws(() => { (first!.node.labels as Record<string, string>)['room'] = 'b'; }, TypeError, 'read-only');
      assert.throws(() => { (first!.node.facts.gpus as unknown[]).push({}); }, TypeError, 'read-only all the way down');
      await hello('new', { room: 'b' });
      const [after] = await s.listNodeUsage();
      assert.deepEqual([after!.node.facts.cpuModel, after!.node.labels], ['new', { room: 'b' }]);
      assert.deepEqual((await s.getNode(id))!.labels, { room: 'b' });
      await s.removeNode(id, { force: true, reason: 'test' }, Date.now(), { maxSystemRetries: 1 });
      assert.deepEqual(await s.listNodeUsage(), []);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('each node\'s allocation stays exact between reads: places, starts, ends, losses, rejected plans and deleted work', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const file = join(dir, 'alloc.sqlite');
      const { compileJobSpec, newJobId, newAttemptId } = await import('@dsg/core');
      const s = openSqliteStore({ file, driver });
      await s.init();
      const db = Database(file, { readonly: true });
      const policy = { maxSystemRetries: 1 };
      const nodes = ['node_0000000000000000000000000c', 'node_0000000000000000000000000d', 'node_0000000000000000000000000e'] as NodeId[];
      for (const [i, id] of nodes.entries()) {
        await s.upsertNode({ id, name: `n${i}`, capacity: { cpuMillis: (i + 2) * 1000, memoryBytes: 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: i + 2, memoryBytes: 1024 ** 3, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: Date.now() });
      }
      // What listNodeUsage says (kept between reads) against the attempts themselves.
      const check = async (step: string): Promise<void> => {
        const truth = new Map((db.prepare(`SELECT node_id, COUNT(*) AS n, SUM(cpu_millis) AS cpu, SUM(memory_bytes) AS mem, SUM(state = 'running') AS rn,
            SUM(CASE WHEN state = 'running' THEN cpu_millis ELSE 0 END) AS rcpu FROM attempts WHERE state IN ('assigned', 'running') GROUP BY node_id`).all() as Array<{ node_id: string; n: number; cpu: number; mem: number; rn: number; rcpu: number }>).map((r) => [r.node_id, r]));
        for (const u of await s.listNodeUsage()) {
          const t = truth.get(u.node.id);
          assert.deepEqual(
            [u.activeAttempts, u.allocated.cpuMillis, u.allocated.memoryBytes, u.runningAttempts, u.running.cpuMillis],
            [t?.n ?? 0, t?.cpu ?? 0, t?.mem ?? 0, t?.rn ?? 0, t?.rcpu ?? 0],
            `node ${u.node.name} after ${step}`,
          );
        }
      };
      const jobs: JobId[] = [];
      for (const [i, n] of [30, 20, 12].entries()) {
        const spec = { name: `a${i}`, command: ['true'], array: n, retries: 1, resources: { cpu: 1, memory: `${i + 1}Mi` } };
        jobs.push((await s.createJob({ id: newJobId(), name: spec.name, spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] })).id);
      }
      await check('creating');
      let seed = 11;
      const rand = (n: number): number => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) >>> 16) % n;
      let assigned: string[] = [];
      let running: string[] = [];
      let rejected = 0;
      for (let round = 0; round < 300; round++) {
        // Plans that ask more of a node than it has (a few are rejected for capacity), starts and ends in one commit.
        const queued = await s.listQueued(10);
        const plan = queued.map((q) => ({ attemptId: newAttemptId(Date.now()), taskId: q.taskId, nodeId: nodes[rand(3)]!, prefetch: rand(3) === 0 }));
        const t = 1_000 + round * 10;
        const finishes = running.filter(() => rand(3) > 0).map((attemptId) => ({ attemptId: attemptId as never, end: { kind: 'exited' as const, exitCode: rand(4) === 0 ? 1 : 0, signal: null }, startedAt: t - 10, finishedAt: t + 1, outputs: [] }));
        const ended = new Set(finishes.map((f) => f.attemptId as string));
        const starts = assigned.filter(() => rand(4) > 0).map((attemptId) => ({ attemptId: attemptId as never, at: t }));
        const started = new Set(starts.map((x) => x.attemptId as string));
        const { placed } = round % 2 === 0
          ? await s.recordReportsAndPlace(starts, finishes, Date.now(), policy, { attempts: plan, overcommit: 2 })
          : { placed: await (async () => { await s.recordReports(starts, finishes, Date.now(), policy); await check(`reports of round ${round}`); return s.applyPlan(plan, Date.now(), { overcommit: 2 }); })() };
        rejected += placed.rejected.length;
        running = [...running.filter((id) => !ended.has(id)), ...assigned.filter((id) => started.has(id))];
        assigned = [...assigned.filter((id) => !started.has(id)), ...placed.created.map((c) => c.id)];
        if (round % 7 === 3 && running.length > 0) await s.loseAttempts(running.splice(0, 2) as never[], 'lost', Date.now(), policy);
        await check(`round ${round}`);
        if (assigned.length === 0 && running.length === 0 && (await s.listQueued(1)).length === 0) break;
      }
      assert.ok(rejected > 0, 'some plans were more than a node had');
      const deleted = await s.deleteFinishedWork(jobs.map((id) => ({ kind: 'job' as const, id })));
      assert.ok(deleted.length > 0);
      await check('deleting finished work');
      db.close();
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('what a finish reads of its job and node once per transaction is read afresh in the next: a rename, a cancel', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
    try {
      const file = join(dir, 'batch.sqlite');
      const { compileJobSpec, newJobId, newAttemptId } = await import('@dsg/core');
      const s = openSqliteStore({ file, driver });
      await s.init();
      const policy = { maxSystemRetries: 1 };
      const node = 'node_00000000000000000000000010' as NodeId;
      const hello = (name: string) => s.upsertNode({ id: node, name, capacity: { cpuMillis: 8000, memoryBytes: 1024 ** 3, gpus: 0, diskBytes: 0 }, facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 1024 ** 3, diskBytes: 0, gpus: [] }, labels: {}, agentVersion: 't', address: null, now: Date.now() });
      await hello('before');
      const spec = { name: 'b', command: ['true'], array: 4, retries: 2, resources: { cpu: 1, memory: '1Mi' } };
      const job = (await s.createJob({ id: newJobId(), name: spec.name, spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] })).id;
      const queued = await s.listQueued(10);
      const { created } = await s.applyPlan(queued.map((q) => ({ attemptId: newAttemptId(Date.now()), taskId: q.taskId, nodeId: node, prefetch: false })), Date.now(), { overcommit: 1 });
      assert.equal(created.length, 4, 'one plan, one job read, four attempts');
      const end = (id: string, exitCode: number) => ({ attemptId: id as never, end: { kind: 'exited' as const, exitCode, signal: null }, startedAt: 1_000, finishedAt: 2_000, outputs: [] });
      // Two finishes in one transaction: the second reads the job and the node from what the first read.
      const first = await s.recordReports([], [end(created[0]!.id, 0), end(created[1]!.id, 1)], Date.now(), policy);
      assert.deepEqual(first.map((r) => [r.taskState, r.retry]), [['succeeded', false], ['queued', true]]);
      await hello('after');
      await s.requestCancel(job, Date.now());
      // The next transaction sees the new name and the cancel: a failed task of a cancelled job is not retried.
      const second = await s.recordReports([], [end(created[2]!.id, 1), end(created[3]!.id, 0)], Date.now(), policy);
      assert.deepEqual(second.map((r) => [r.taskState, r.retry]), [['cancelled', false], ['succeeded', false]]);
      const db = Database(file, { readonly: true });
      const names = (db.prepare('SELECT attempt_id, node_name FROM ledger').all() as Array<{ attempt_id: string; node_name: string }>);
      db.close();
      assert.deepEqual(created.map((c) => names.find((n) => n.attempt_id === c.id)?.node_name), ['before', 'before', 'after', 'after']);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a big job is accepted in chunks without holding the event loop, and a crash midway leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-bigjob-'));
    const file = join(dir, 'x.sqlite');
    const { compileJobSpec, newJobId } = await import('@dsg/core');
    try {
      const s = openSqliteStore({ file, driver });
      await s.init();
      // The longest gap between event-loop turns while 100,000 tasks are inserted.
      let worst = 0;
      let last = performance.now();
      const probe = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
      }, 1);
      const spec = { name: 'big', command: ['true'], array: 100_000 };
      const t0 = performance.now();
      const job = await s.createJob({ id: newJobId(), name: 'big', spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
      const took = performance.now() - t0;
      clearInterval(probe);
      console.log(`100,000 tasks accepted in ${took.toFixed(0)} ms; longest event-loop stall ${worst.toFixed(1)} ms`);
      assert.equal(job.state, 'queued');
      assert.equal(job.counts.queued, 100_000);
      // Chunks are sized for ~20 ms; one unchunked commit would hold it ~1 s. 250 ms leaves room for a loaded machine
      // preempting the process (seen at 111 ms with other test runs beside this one) and still fails an unchunked store.
      assert.ok(worst < 250, `the event loop was held ${worst.toFixed(1)} ms`);
      assert.equal((await s.listQueuedJobs())[0]?.queued, 100_000);
      {
        // Made from the numbers table (migration 18) in ten slices: every index once, each at its own queue position.
        const ro = Database(file, { readonly: true });
        const t = { ...ro.prepare(`SELECT COUNT(*) AS n, MIN(idx) AS lo, MAX(idx) AS hi, COUNT(DISTINCT queue_seq) AS seqs,
            MIN(queue_seq - idx) AS d1, MAX(queue_seq - idx) AS d2, SUM(typeof(idx) = 'integer' AND typeof(queue_seq) = 'integer') AS ints,
            SUM(id = job_id || '.' || idx) AS ids FROM tasks WHERE job_id = ?`).get(job.id) as Record<string, number> };
        const c = { ...ro.prepare('SELECT COUNT(*) AS n, MIN(n) AS lo, MAX(n) AS hi FROM counting').get() as Record<string, number> };
        ro.close();
        assert.deepEqual(t, { n: 100_000, lo: 0, hi: 99_999, seqs: 100_000, d1: t['d1'], d2: t['d1'], ints: 100_000, ids: 100_000 });
        assert.deepEqual(c, { n: 10_000, lo: 0, hi: 9_999 });
        assert.ok((await s.getTask(`${job.id}.99999` as never)) !== null);
      }

      // A crash between chunks: an unreleased plain job with some of its tasks. The next start removes it.
      const db = Database(file);
      db.prepare("INSERT INTO jobs (id, name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at, released) SELECT 'job_00000000000000000000000000', name, spec_json, compiled_json, inputs_json, warnings_json, task_count, cpu_millis, memory_bytes, gpus, disk_bytes, created_at, 0 FROM jobs WHERE id = ?").run(job.id);
      db.prepare("INSERT INTO tasks (job_id, idx, state, queue_seq) VALUES ('job_00000000000000000000000000', 0, 'queued', 999999999)").run();
      db.close();
      await s.close();
      const again = openSqliteStore({ file, driver });
      await again.init();
      assert.equal(await again.getJob('job_00000000000000000000000000' as JobId), null, 'the half-inserted job is gone');
      assert.equal((await again.getJob(job.id))?.counts.queued, 100_000, 'the accepted one is intact');
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the checkpoint worker moves committed WAL frames into the database file, and ends with close()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-ckpt-'));
    const file = join(dir, 'c.sqlite');
    const db = Database(file);
    const ckpt = new Checkpointer(file, driver, sqliteModulePath(driver));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec('CREATE TABLE t (x TEXT)');
      db.prepare("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO t SELECT printf('%0100d', i) FROM n").run();
      // With automatic checkpoints off, the rows are in the WAL only; the database file grows when they are copied.
      const before = statSync(file).size;
      assert.ok(before < 100_000, `nothing copied yet (${before} bytes)`);
      await ckpt.checkpoint();
      assert.ok(ckpt.usable);
      assert.ok(statSync(file).size > 2_000_000, `the worker copied the frames (${statSync(file).size} bytes)`);
      await ckpt.close();
      assert.equal(ckpt.usable, false);
      await ckpt.checkpoint(); // answered at once once closed
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, 20001);
    } finally {
      await ckpt.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a big finished job is deleted range by range without holding the event loop; while marked it cannot be retried', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-bigdel-'));
    const file = join(dir, 'x.sqlite');
    const { compileJobSpec, newJobId, DsgError } = await import('@dsg/core');
    try {
      const s = openSqliteStore({ file, driver });
      await s.init();
      const spec = { name: 'big', command: ['true'], array: 60_000 };
      const job = await s.createJob({ id: newJobId(), name: 'big', spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
      await s.requestCancel(job.id, Date.now());
      for (let from = 0; from < 60_000; from += 2000) await s.cancelQueuedTasks(job.id, { from, to: from + 2000 }, Date.now());
      assert.equal((await s.getJob(job.id))?.state, 'cancelled');

      let worst = 0;
      let last = performance.now();
      const probe = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
      }, 1);
      const t0 = performance.now();
      assert.deepEqual(await s.deleteFinishedWork([{ kind: 'job', id: job.id }]), [job.id]);
      clearInterval(probe);
      console.log(`60,000-task job deleted in ${(performance.now() - t0).toFixed(0)} ms; longest event-loop stall ${worst.toFixed(1)} ms`);
      // Chunks are sized for ~20 ms; one unchunked commit would hold it ~1 s. 250 ms leaves room for a loaded machine
      // preempting the process (seen at 111 ms with other test runs beside this one) and still fails an unchunked store.
      assert.ok(worst < 250, `the event loop was held ${worst.toFixed(1)} ms`);
      assert.equal(await s.getJob(job.id), null);

      // A job marked for deletion (as after a crash midway) refuses a retry.
      const other = await s.createJob({ id: newJobId(), name: 'x', spec: { name: 'x', command: ['true'] }, compiled: compileJobSpec({ name: 'x', command: ['true'] }), inputs: [], createdAt: Date.now(), warnings: [] });
      await s.close();
      const db = Database(file);
      db.prepare('UPDATE jobs SET deleting = 1 WHERE id = ?').run(other.id);
      db.close();
      const again = openSqliteStore({ file, driver });
      await again.init();
      await assert.rejects(again.retryJob(other.id, Date.now()), (e: unknown) => e instanceof DsgError && e.code === 'conflict');
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the GPU device state is read through the attempts_gpu_active partial index, never a scan of attempts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-gpuq-'));
    try {
      const file = join(dir, 'x.sqlite');
      const s = openSqliteStore({ file, driver });
      await s.init();
      await s.close();
      const db = Database(file, { readonly: true });
      try {
        const plan = (sql: string, ...args: Array<string | number>) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
        assert.match(plan(GPU_HELD_SQL), /USING INDEX attempts_gpu_active/);
        assert.match(plan(GPU_HELD_OF_NODE_SQL, 'node_x'), /SEARCH attempts USING INDEX attempts_gpu_active \(node_id=\?\)/);
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
