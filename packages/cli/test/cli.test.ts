import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ValidationError, type OutputV1 } from '@dsg/core';
import { collectInputs, configFilePath, loadSpecFile, parseSpecText, planOutputs, resolveClientConfig, resolveServeConfig, SERVE_DEFAULTS, taskBaseEnv } from '@dsg/cli';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'dsg.js');

function issues(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return [...e.issues];
  }
  assert.fail('expected a ValidationError');
}

describe('client config precedence: flags > env > config file > ./.dsg/credentials.json', () => {
  const base = { filePath: '/c/config.json', credentialsPath: '/w/.dsg/credentials.json' };
  const file = { coordinator: 'http://file:1', token: 'tf' };
  const creds = { url: 'http://creds:1', adminToken: 'tc' };
  it('uses the file when nothing else is given', () => {
    assert.deepEqual(resolveClientConfig({ ...base, flags: {}, env: {}, file, credentials: creds }), { coordinator: 'http://file:1', token: 'tf', source: '/c/config.json' });
  });
  it('env beats the file, flags beat env', () => {
    const env = { DSG_COORDINATOR: 'http://env:1', DSG_TOKEN: 'te' };
    assert.equal(resolveClientConfig({ ...base, flags: {}, env, file, credentials: creds })?.coordinator, 'http://env:1');
    const r = resolveClientConfig({ ...base, flags: { coordinator: 'http://flag:1' }, env, file, credentials: creds });
    assert.deepEqual([r?.coordinator, r?.token], ['http://flag:1', 'te']);
  });
  it('falls back to the local credentials, and to nothing', () => {
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: {}, file: null, credentials: creds })?.token, 'tc');
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: {}, file: null, credentials: null }), null);
  });
  it('finds the config file under XDG_CONFIG_HOME or HOME', () => {
    assert.equal(configFilePath({ XDG_CONFIG_HOME: '/x' }), '/x/dsg/config.json');
    assert.equal(configFilePath({ HOME: '/home/u' }), '/home/u/.config/dsg/config.json');
  });
  it('tasks inherit only a safe environment', () => {
    assert.deepEqual(taskBaseEnv({ PATH: '/bin', HOME: '/h', DSG_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x' }), { PATH: '/bin', HOME: '/h' });
  });
});

describe('coordinator settings: defaults < config file < DSG_* env < flags', () => {
  const base = { fileName: 'grid.yaml', defaults: SERVE_DEFAULTS, cwd: '/srv' };
  it('uses the defaults with nothing given', () => {
    const o = resolveServeConfig({ ...base, flags: {}, env: {}, file: null });
    assert.deepEqual(o, { dataDir: '/srv/.dsg', host: '0.0.0.0', port: 7070, heartbeatIntervalSeconds: 2, nodeTimeoutSeconds: 10, logLevel: 'info' });
  });
  it('layers file, env and flags', () => {
    const file = { port: 8000, dataDir: '/data/dsg', heartbeatSeconds: 2, nodeTimeoutSeconds: 10 };
    const o = resolveServeConfig({ ...base, flags: { heartbeat: '1' }, env: { DSG_PORT: '9000' }, file });
    assert.deepEqual([o.port, o.dataDir, o.heartbeatIntervalSeconds, o.nodeTimeoutSeconds], [9000, '/data/dsg', 1, 10]);
    assert.equal(resolveServeConfig({ ...base, flags: { port: '9100' }, env: { DSG_PORT: '9000' }, file }).port, 9100);
  });
  it('names the source of every bad value', () => {
    const bad = issues(() => resolveServeConfig({ ...base, flags: { logLevel: 'loud' }, env: { DSG_PORT: 'http' }, file: { nodeTimeoutSeconds: -1, colour: 'blue' } }));
    const byPath = Object.fromEntries(bad.map((i) => [i.path, i.message]));
    assert.match(byPath['--log-level'] ?? '', /expected debug, info, warn, error or silent, got "loud"/);
    assert.match(byPath['DSG_PORT'] ?? '', /expected a port number/);
    assert.match(byPath['grid.yaml: nodeTimeoutSeconds'] ?? '', /greater than 0/);
    assert.match(byPath['grid.yaml: colour'] ?? '', /unknown setting/);
  });
  it('refuses a node timeout not longer than the heartbeat', () => {
    assert.match(issues(() => resolveServeConfig({ ...base, flags: { heartbeat: '10', nodeTimeout: '5' }, env: {}, file: null }))[0]!.message, /longer than the heartbeat/);
  });
});

describe('spec files', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'dsg-cli-'))));
  after(async () => rm(dir, { recursive: true, force: true }));

  it('reports a YAML syntax error with line and column', () => {
    const [i] = issues(() => parseSpecText('name: x\nscript: [unclosed\n', '.yaml', 'job.yaml'));
    assert.match(i!.message, /^job\.yaml:\d+:\d+: YAML syntax error/);
  });
  it('reports bad JSON and non-mapping documents', () => {
    assert.match(issues(() => parseSpecText('{"name": ', '.json', 'j.json'))[0]!.message, /not valid JSON/);
    assert.match(issues(() => parseSpecText('- a\n- b\n', '.yaml', 'l.yaml'))[0]!.message, /must hold a job spec mapping/);
  });
  it('names a missing input by its index and the path it looked for', async () => {
    await writeFile(join(dir, 'a.yaml'), 'name: a\nscript: cat x\ninputs: [missing.txt]\n');
    const loaded = await loadSpecFile(join(dir, 'a.yaml'));
    await assert.rejects(collectInputs(loaded), (e: unknown) => e instanceof ValidationError && e.issues[0]!.path === 'inputs[0]' && e.issues[0]!.message.includes(join(dir, 'missing.txt')));
  });
  it('expands directories recursively and hashes each file', async () => {
    await mkdir(join(dir, 'data', 'sub'), { recursive: true });
    await writeFile(join(dir, 'data', 'one.csv'), '1\n');
    await writeFile(join(dir, 'data', 'sub', 'two.csv'), '2\n');
    await writeFile(join(dir, 'run.py'), 'print(1)\n');
    await writeFile(join(dir, 'b.yaml'), 'name: b\nscript: python3 run.py\ninputs: [run.py, data/]\n');
    const inputs = await collectInputs(await loadSpecFile(join(dir, 'b.yaml')));
    assert.deepEqual(inputs.map((i) => [i.path, i.size]), [['run.py', 9], ['data/one.csv', 2], ['data/sub/two.csv', 2]]);
    assert.equal(inputs[1]!.sha256, createHash('sha256').update('1\n').digest('hex'));
  });
});

describe('dsg outputs layout', () => {
  const out = (taskIndex: number, path: string): OutputV1 => ({ taskIndex, path, size: 1, sha256: 'a'.repeat(64), attemptId: 'att_x' });
  it('keeps each relative path under DIR', () => {
    assert.deepEqual(planOutputs([out(0, 'out/a.json'), out(1, 'out/b.json')], '/r', false).map((p) => p.dest), ['/r/out/a.json', '/r/out/b.json']);
  });
  it('refuses two tasks writing the same path, suggesting --by-task, which separates them', () => {
    const [i] = issues(() => planOutputs([out(0, 'result.json'), out(1, 'result.json')], '/r', false));
    assert.match(i!.message, /tasks 0 and 1 both produced "result.json": pass --by-task/);
    assert.deepEqual(planOutputs([out(0, 'result.json'), out(1, 'result.json')], '/r', true).map((p) => p.dest), ['/r/task-0/result.json', '/r/task-1/result.json']);
  });
});

describe('the dsg binary', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH']!, HOME: '/nonexistent-home', ...env }, cwd: tmpdir() });

  it('exits 2 with path: message lines for an invalid spec, before contacting anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsg-bin-'));
    try {
      await writeFile(join(dir, 'bad.yaml'), 'name: bad\nscript: "true"\nresources: { memory: 512 }\ntimeout: soon\n');
      const r = run(['submit', join(dir, 'bad.yaml')], { DSG_COORDINATOR: 'http://127.0.0.1:9', DSG_TOKEN: 't' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /resources\.memory: expected a size like 512Mi/);
      assert.match(r.stderr, /timeout: expected a duration like 30s, 5m or 1h30m/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('exits 3 with a hint when no coordinator is configured', () => {
    const r = run(['jobs']);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /no coordinator configured: start one with `npm start`/);
  });
  it('exits 2 on an unknown command and prints help on --help', () => {
    assert.equal(run(['frobnicate']).status, 2);
    const h = run(['submit', '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /--wait/);
    assert.match(h.stdout, /Examples:/);
  });
  it('prints the JSON Schema', () => {
    const r = run(['spec', 'schema']);
    assert.equal(r.status, 0);
    assert.equal(JSON.parse(r.stdout).title, 'DSG job spec v1');
  });
});
