// The dashboard's job list at 100,000 jobs: first page, a page deep in the list (keyset cursor), by project, by name
// prefix, and by state (the computed one, the only filter without an index) all answer fast, and the indexed
// filters read through their indexes. The jobs are copies of one real job, inserted in one statement.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { compileJobSpec, newJobId } from '@dsg/core';
import { openSqliteStore, type JobRecord, type Page } from '@dsg/store';

const N = 100_000;

it(`lists, pages and filters ${N.toLocaleString('en-US')} jobs fast, through indexes`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dsg-jobs-scale-'));
  try {
    const file = join(dir, 'j.sqlite');
    let s = openSqliteStore({ file });
    await s.init();
    const spec = { name: 'seed', command: ['true'] };
    await s.createJob({ id: newJobId(), name: 'seed', spec, compiled: compileJobSpec(spec), inputs: [], createdAt: Date.now(), warnings: [] });
    await s.close();

    const db = new Database(file);
    const cols = (db.prepare('PRAGMA table_info(jobs)').all() as Array<{ name: string }>).map((c) => c.name);
    const pick = cols.map((c) => (c === 'id' ? "printf('job_%09d', n)" : c === 'name' ? "printf('run-%d', n % 1000)" : c === 'project' ? "printf('p%d', n % 50)" : c)).join(', ');
    const t0 = performance.now();
    db.exec(`WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${N})
             INSERT INTO jobs (${cols.join(', ')}) SELECT ${pick} FROM seq, (SELECT * FROM jobs WHERE name = 'seed')`);
    const plan = (sql: string, ...args: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
    assert.match(plan('SELECT * FROM jobs WHERE project IN (?) ORDER BY id DESC LIMIT 51', 'p1'), /USING INDEX jobs_project/);
    assert.match(plan("SELECT * FROM jobs WHERE name LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT 51", 'run-1%'), /jobs_name|PRIMARY KEY|USING INDEX/);
    assert.match(plan('SELECT * FROM jobs WHERE id < ? ORDER BY id DESC LIMIT 51', 'job_000050000'), /USING (INTEGER )?PRIMARY KEY|USING INDEX/);
    db.close();
    console.log(`inserted ${N} jobs in ${(performance.now() - t0).toFixed(0)} ms`);

    s = openSqliteStore({ file });
    await s.init();
    try {
      const timed = async (what: string, fn: () => Promise<Page<JobRecord>>, boundMs: number) => {
        await fn(); // warm the statement cache
        const t = performance.now();
        const page = await fn();
        const ms = performance.now() - t;
        console.log(`${what}: ${page.items.length} rows in ${ms.toFixed(1)} ms`);
        assert.ok(ms < boundMs, `${what} took ${ms.toFixed(1)} ms (bound ${boundMs} ms)`);
        return page;
      };
      const first = await timed('first page', () => s.listJobs({ limit: 50 }), 100);
      assert.equal(first.items.length, 50);
      const deep = await timed('a page at job 50,000', () => s.listJobs({ limit: 50, cursor: 'job_000050000' }), 100);
      assert.equal(deep.items[0]!.id, 'job_000049999');
      const oldest = await timed('oldest first, after job 50,000', () => s.listJobs({ limit: 50, cursor: 'job_000050000', order: 'oldest' }), 100);
      assert.equal(oldest.items[0]!.id, 'job_000050001');
      const byProject = await timed('project p7', () => s.listJobs({ limit: 50, projects: ['p7'] }), 100);
      assert.equal(byProject.items.length, 50);
      await timed('name prefix run-42*', () => s.listJobs({ limit: 50, name: 'run-42*' }), 300);
      await timed('exact name run-7', () => s.listJobs({ limit: 50, name: 'run-7' }), 100);
      // State is computed from the counters: the scan stops at the first page of matches (all are queued here).
      await timed('state queued', () => s.listJobs({ limit: 50, state: 'queued' }), 300);
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
