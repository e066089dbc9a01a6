// The audit log end to end through the CLI, on a real coordinator and agent: a node joining and a job submitted
// are recorded with who and from where; `dsg audit verify` passes and prints the head; after the database file is
// edited while the coordinator is stopped, `dsg audit verify` exits 1 naming the entry.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteDatabase } from '@dsg/store';
import { Sandbox, type Credentials, freePort } from './harness.js';

interface Entry { seq: number; action: string; target: string; origin: string; actor: { kind: string; name: string; role: string } }

describe('audit log: dsg audit list and verify on a real grid', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  const work = join(sb.dir, 'work');
  let creds: Credentials;
  let port: number;
  let coord: ReturnType<Sandbox['start']>;
  const dsg = (args: string[]) => sb.run(args, { env: { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken }, cwd: work });
  const startCoordinator = async () => {
    coord = sb.start(['coordinator', '--data-dir', data, '--port', String(port), '--host', '127.0.0.1']);
    creds = await sb.credentials(data, coord.output);
    await sb.waitFor('coordinator ready', async () => (await fetch(`${creds.url}/readyz`)).ok, 30_000, coord.output);
  };

  before(async () => {
    mkdirSync(work);
    port = await freePort();
    await startCoordinator();
    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'lab-pc', '--cpus', '1', '--memory', '512Mi']);
  });
  after(() => sb.cleanup());

  it('records a node joining and a job, verifies, and catches an edit made while the coordinator was stopped', async () => {
    writeFileSync(join(work, 'job.yaml'), 'name: audited\nscript: echo hi\n');
    const s = await dsg(['submit', 'job.yaml', '--wait', '-q']);
    assert.equal(s.code, 0, s.stderr);
    const list = await dsg(['audit', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const items = (JSON.parse(list.stdout) as { items: Entry[] }).items;
    const joined = items.find((e) => e.action === 'node.joined');
    assert.ok(joined, list.stdout);
    assert.equal(joined.actor.role, 'node');
    assert.equal(joined.origin, '127.0.0.1');
    const submitted = items.find((e) => e.action === 'job.submitted');
    assert.ok(submitted);
    assert.equal(submitted.actor.role, 'admin');
    const human = await dsg(['audit', 'list']);
    assert.match(human.stdout, /job\.submitted/);

    const ok = await dsg(['audit', 'verify']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /intact: \d+ entries/);
    const head = /head: (\d+:[0-9a-f]{64})/.exec(ok.stdout)![1]!;
    assert.equal((await dsg(['audit', 'verify', '--head', head])).code, 0);
    const bad = await dsg(['audit', 'verify', '--head', 'nonsense']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--head/);

    await sb.stop(coord.proc);
    const db = openSqliteDatabase(join(data, 'dsg.sqlite'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare("UPDATE audit_log SET origin = '192.0.2.1' WHERE seq = ?").run(submitted.seq);
    db.close();
    await startCoordinator();
    const caught = await dsg(['audit', 'verify']);
    assert.equal(caught.code, 1, caught.stdout + caught.stderr);
    assert.match(caught.stdout, /TAMPERED/);
    assert.match(caught.stdout, new RegExp(`entry ${submitted.seq} was edited`));
  });
});
