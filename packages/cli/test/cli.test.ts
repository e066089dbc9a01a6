import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCoordinator } from '@dsg/coordinator';
import { ValidationError, type OutputV1 } from '@dsg/core';
import { DsgError } from '@dsg/core';
import {
  collectInputs, configFilePath, emptyLogNote, explainClientError, loadSpecFile, nodeNamer, normalizeCoordinatorUrl, parseSpecText, planOutputs, plural,
  resolveClientConfig, resolveGiveUpAfter, resolveServeConfig, SERVE_DEFAULTS, taskBaseEnv, taskValue,
} from '@dsg/cli';

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
    const r = resolveClientConfig({ ...base, flags: {}, env: {}, file, credentials: creds });
    assert.deepEqual([r?.coordinator, r?.token, r?.source], ['http://file:1', 'tf', '/c/config.json']);
    assert.deepEqual(r?.tokenSource, { kind: 'file', name: '/c/config.json', raw: 'tf' });
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
  it('names the source of a half configuration instead of saying nothing is configured', () => {
    assert.match(issues(() => resolveClientConfig({ ...base, flags: { coordinator: 'http://x:1' }, env: {}, file: null, credentials: null }))[0]!.message, /no API token \(the coordinator URL came from the --coordinator flag\)/);
    assert.match(issues(() => resolveClientConfig({ ...base, flags: {}, env: { DSG_TOKEN: 't' }, file: null, credentials: null }))[0]!.message, /no coordinator URL \(the token came from the DSG_TOKEN environment variable\)/);
  });
  it('takes the local socket only from the file the URL came from, unless DSG_NO_LOCAL_SOCKET=1', () => {
    const f = { ...file, socket: '/d/api.sock' };
    const c = { ...creds, socket: '/w/.dsg/api.sock' };
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: {}, file: f, credentials: c })?.localSocket, '/d/api.sock');
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: {}, file: null, credentials: c })?.localSocket, '/w/.dsg/api.sock');
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: { DSG_COORDINATOR: 'http://env:1' }, file: f, credentials: c })?.localSocket, null, 'another URL, another coordinator');
    assert.equal(resolveClientConfig({ ...base, flags: { coordinator: 'http://flag:1' }, env: {}, file: f, credentials: c })?.localSocket, null);
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: { DSG_NO_LOCAL_SOCKET: '1' }, file: f, credentials: c })?.localSocket, null);
    assert.equal(resolveClientConfig({ ...base, flags: {}, env: {}, file, credentials: c })?.localSocket, null);
    assert.deepEqual(issues(() => resolveClientConfig({ ...base, flags: {}, env: {}, file: { ...file, socket: 'api.sock' }, credentials: null })).map((i) => i.path), ['/c/config.json: socket']);
    assert.match(issues(() => resolveClientConfig({ ...base, flags: {}, env: {}, file: { ...file, socket: 7 as unknown as string }, credentials: null }))[0]!.message, /absolute path of the grid's local API socket, got 7/);
  });
  it('finds the config file under XDG_CONFIG_HOME or HOME', () => {
    assert.equal(configFilePath({ XDG_CONFIG_HOME: '/x' }), '/x/dsg/config.json');
    assert.equal(configFilePath({ HOME: '/home/u' }), '/home/u/.config/dsg/config.json');
  });
  it('tasks inherit only a safe environment', () => {
    assert.deepEqual(taskBaseEnv({ PATH: '/bin', HOME: '/h', DSG_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x' }), { PATH: '/bin', HOME: '/h' });
  });
});

describe('coordinator URLs are checked up front', () => {
  it('reads host:port as http://host:port', () => {
    assert.equal(normalizeCoordinatorUrl('127.0.0.1:7070', '--coordinator'), 'http://127.0.0.1:7070');
    assert.equal(normalizeCoordinatorUrl('localhost:7070', '--coordinator'), 'http://localhost:7070');
    assert.equal(normalizeCoordinatorUrl(' grid.lab.example ', '--coordinator'), 'http://grid.lab.example');
    assert.equal(normalizeCoordinatorUrl('[::1]:7070', '--coordinator'), 'http://[::1]:7070');
  });
  it('keeps http(s) URLs, without a trailing slash, a path prefix included', () => {
    assert.equal(normalizeCoordinatorUrl('https://grid.example/dsg/', 'x'), 'https://grid.example/dsg');
    assert.equal(normalizeCoordinatorUrl('HTTP://127.0.0.1:7070/', 'x'), 'http://127.0.0.1:7070');
  });
  it('refuses other schemes and garbage, naming where the value came from', () => {
    const bad = (v: string, where = 'DSG_COORDINATOR') => issues(() => normalizeCoordinatorUrl(v, where))[0]!;
    assert.deepEqual([bad('ftp://h:1').path, bad('ftp://h:1').message], ['DSG_COORDINATOR', 'the scheme must be http:// or https://, not ftp://; expected a coordinator URL like http://127.0.0.1:7070, got "ftp://h:1"']);
    assert.match(bad('not a url').message, /cannot contain spaces/);
    assert.match(bad('7070').message, /a port alone is not enough/);
    assert.match(bad('http://h:99999').message, /not a valid URL/);
    assert.match(bad('http://h:1/?x=1').message, /\?query/);
    assert.match(bad('http://me:secret@h:1').message, /not in the URL/);
    assert.match(bad('', '--coordinator').message, /empty/);
  });
  it('names the config file and key when the bad URL came from there', () => {
    const i = issues(() => resolveClientConfig({ flags: {}, env: {}, file: { coordinator: 'ws://h:1', token: 't' }, filePath: '/c/config.json', credentials: null, credentialsPath: '/w/c.json' }))[0]!;
    assert.equal(i.path, '/c/config.json: coordinator');
  });
});

describe('give-up time of waiting commands: --give-up-after > DSG_GIVE_UP_AFTER > 5m', () => {
  it('layers flag, env and default', () => {
    assert.deepEqual(resolveGiveUpAfter(undefined, {}), { ms: 300_000, source: 'default' });
    assert.deepEqual(resolveGiveUpAfter(undefined, { DSG_GIVE_UP_AFTER: '1h' }), { ms: 3_600_000, source: 'DSG_GIVE_UP_AFTER' });
    assert.deepEqual(resolveGiveUpAfter('30s', { DSG_GIVE_UP_AFTER: '1h' }), { ms: 30_000, source: '--give-up-after' });
    assert.equal(resolveGiveUpAfter('0', {}).ms, 0);
  });
  it('refuses a bad duration, naming its source', () => {
    assert.equal(issues(() => resolveGiveUpAfter(undefined, { DSG_GIVE_UP_AFTER: 'forever' }))[0]!.path, 'DSG_GIVE_UP_AFTER');
    assert.match(issues(() => resolveGiveUpAfter('5', {}))[0]!.message, /expected a duration like 30s, 5m or 1h/);
  });
});

describe('a rejected token names where it came from and what to do', () => {
  const base = { filePath: '/home/u/.config/dsg/config.json', credentialsPath: '/w/.dsg/credentials.json', credentials: null };
  const config = (flags: { coordinator?: string; token?: string }, env: Record<string, string>, file: { coordinator?: string; token?: string } | null) =>
    resolveClientConfig({ ...base, flags, env, file })!;
  const unauthorized = new DsgError('unauthorized', 'invalid token');
  it('the --token flag', () => {
    const m = explainClientError(unauthorized, config({ token: 'x' }, {}, { coordinator: 'http://h:1' }));
    assert.match(m, /rejected the token: invalid token/);
    assert.match(m, /the token came from the --token flag \(the URL came from the config file \/home\/u\/\.config\/dsg\/config\.json\)/);
    assert.match(m, /adminToken from the grid's credentials\.json/);
  });
  it('the DSG_TOKEN environment variable', () => {
    const m = explainClientError(unauthorized, config({}, { DSG_TOKEN: 'x', DSG_COORDINATOR: 'h:1' }, null));
    assert.match(m, /the token came from the DSG_TOKEN environment variable \("h:1" from the DSG_COORDINATOR environment variable, read as http:\/\/h:1\)/);
    assert.match(m, /set DSG_TOKEN to the adminToken/);
  });
  it('the config file, with its path', () => {
    const m = explainClientError(unauthorized, config({}, {}, { coordinator: 'http://h:1', token: 'old' }));
    assert.match(m, /the token came from the config file \/home\/u\/\.config\/dsg\/config\.json\n/);
    assert.match(m, /written by `dsg up` for a grid that may have been replaced/);
  });
  it('a node token used for a command (403)', () => {
    const m = explainClientError(new DsgError('forbidden', 'a node token cannot do this (needs jobs:read)'), config({ token: 'dsg_node_x', coordinator: 'http://h:1' }, {}, null));
    assert.match(m, /the token came from the --token flag; dsg commands need an admin, submitter or reader token/);
    assert.match(m, /use adminToken, not joinToken/);
  });
  it('a submitter or reader token refused (403) sends the user to the admin', () => {
    const m = explainClientError(new DsgError('forbidden', 'a reader token can read but not change anything (this needs jobs:write)'), config({ token: 'dsg_reader_x', coordinator: 'http://h:1' }, {}, null));
    assert.match(m, /refused: a reader token can read but not change anything/);
    assert.match(m, /ask the grid's admin/);
    assert.doesNotMatch(m, /joinToken/);
  });
  it('leaves other errors alone', () => {
    assert.equal(explainClientError(new DsgError('not_found', 'job job_x not found'), config({ token: 'x', coordinator: 'http://h:1' }, {}, null)), 'job job_x not found');
  });
});

describe('CLI wording', () => {
  it('pluralises counts', () => {
    assert.deepEqual([plural(1, 'core'), plural(2, 'core'), plural(0.5, 'core'), plural(0, 'task'), plural(1, 'GPU'), plural(3, 'GPU'), plural(1, 'retry', 'retries'), plural(2, 'retry', 'retries')],
      ['1 core', '2 cores', '0.5 cores', '0 tasks', '1 GPU', '3 GPUs', '1 retry', '2 retries']);
  });
  it('shows the index as the value of a plain `array: N` task (what DSG_ARRAY_VALUE holds)', () => {
    assert.equal(taskValue({ index: 7, arrayValue: null }), '7');
    assert.equal(taskValue({ index: 0, arrayValue: '0.5' }), '0.5');
  });
  it('names nodes, adding the id only when names clash, and falls back to the id of a forgotten node', () => {
    const name = nodeNamer([{ id: 'node_a', name: 'lab-1' }, { id: 'node_b', name: 'lab-2' }, { id: 'node_c', name: 'lab-2' }]);
    assert.deepEqual([name('node_a'), name('node_b'), name('node_gone'), name(null)], ['lab-1', 'lab-2 (node_b)', 'node_gone', '']);
  });
  it('says why a log is empty', () => {
    const job = { id: 'job_x' };
    const t = (state: 'queued' | 'assigned' | 'running' | 'succeeded' | 'failed' | 'cancelled', more: { attempts?: number; startedAt?: string | null; failure?: { kind: 'user'; reason: 'exit_code'; message: string } | null } = {}) =>
      ({ index: 3, state, attempts: more.attempts ?? 0, startedAt: more.startedAt ?? null, failure: more.failure ?? null });
    const none = { attemptId: null, complete: false };
    const ran = { attemptId: 'att_1', complete: true };
    assert.equal(emptyLogNote(job, t('queued'), none), 'task 3 has not started yet (queued; `dsg job job_x` says why it waits)');
    assert.equal(emptyLogNote(job, t('cancelled'), { attemptId: null, complete: true }), 'task 3 was cancelled before it started');
    assert.equal(emptyLogNote(job, t('succeeded', { attempts: 1, startedAt: 'x' }), ran), 'task 3 ran but wrote no output (it succeeded)');
    assert.equal(emptyLogNote(job, t('failed', { attempts: 1, startedAt: 'x', failure: { kind: 'user', reason: 'exit_code', message: 'exited with code 2' } }), ran), 'task 3 ran but wrote no output (it failed: exited with code 2)');
    assert.equal(emptyLogNote(job, t('running', { attempts: 1, startedAt: 'x' }), { attemptId: 'att_1', complete: false }), 'task 3 is running and has written no output yet');
    assert.equal(emptyLogNote(job, t('cancelled', { attempts: 1 }), ran), 'task 3 was cancelled before it started');
    assert.equal(emptyLogNote(job, t('queued', { attempts: 1 }), ran), 'task 3 is queued to run again (attempt 2); attempt 1 wrote no output');
    assert.equal(emptyLogNote(job, t('succeeded', { attempts: 2 }), ran, '1'), 'task 3, attempt 1, wrote no output');
  });
});

describe('coordinator settings: defaults < config file < DSG_* env < flags', () => {
  const base = { fileName: 'grid.yaml', defaults: SERVE_DEFAULTS, cwd: '/srv' };
  it('uses the defaults with nothing given', () => {
    const o = resolveServeConfig({ ...base, flags: {}, env: {}, file: null });
    assert.deepEqual(o, {
      dataDir: '/srv/.dsg', host: '0.0.0.0', port: 7070, heartbeatIntervalSeconds: 2, nodeTimeoutSeconds: 10, logLevel: 'info',
      offlineNodeRetentionSeconds: 7 * 24 * 3600, quarantine: { failures: 3, windowSeconds: 600, coolDownSeconds: 1800 },
      retention: { maxAgeDays: 30, maxBytes: 0, intervalMinutes: 60, graceMinutes: 60 },
      maxQueuedTasks: 1_000_000, maxQueuedTasksPerProject: 1_000_000, fairShare: { usageHalfLifeMinutes: 60 },
      rateLimits: { perTokenPerSecond: 200, perTokenBurst: 10_000, failedAuthPerMinute: 60 }, sessionHours: 12, tls: 'auto',
      advertise: true, maxPendingNodes: 64, pendingNodeTtlHours: 24, sqliteDriver: 'auto',
    });
  });
  it('the SQLite driver comes from the same layers and is checked', () => {
    assert.equal(resolveServeConfig({ ...base, flags: {}, env: { DSG_SQLITE_DRIVER: 'node' }, file: { sqliteDriver: 'better-sqlite3' } }).sqliteDriver, 'node');
    assert.equal(resolveServeConfig({ ...base, flags: { sqliteDriver: 'better-sqlite3' }, env: { DSG_SQLITE_DRIVER: 'node' }, file: null }).sqliteDriver, 'better-sqlite3');
    const bad = issues(() => resolveServeConfig({ ...base, flags: {}, env: { DSG_SQLITE_DRIVER: 'sqlite3' }, file: null }));
    assert.deepEqual(bad.map((i) => i.path), ['DSG_SQLITE_DRIVER']);
    assert.match(bad[0]!.message, /expected auto, node .* or better-sqlite3, got "sqlite3"/);
  });
  it('limits on machines waiting for approval come from the same layers and are checked', () => {
    const o = resolveServeConfig({ ...base, flags: { maxPendingNodes: '10' }, env: { DSG_PENDING_NODE_TTL_HOURS: '2' }, file: null });
    assert.deepEqual([o.maxPendingNodes, o.pendingNodeTtlHours], [10, 2]);
    const bad = issues(() => resolveServeConfig({ ...base, flags: { maxPendingNodes: '-1' }, env: {}, file: { pendingNodeTtlHours: 0 } }));
    assert.deepEqual(bad.map((i) => i.path).sort(), ['--max-pending-nodes', 'grid.yaml: pendingNodeTtlHours'].sort());
  });
  it('rate limits and the session length come from the same layers and are checked', () => {
    const o = resolveServeConfig({ ...base, flags: { rateLimit: '5' }, env: { DSG_RATE_LIMIT_BURST: '20', DSG_SESSION_HOURS: '2' }, file: { failedAuthPerMinute: 0 } });
    assert.deepEqual([o.rateLimits, o.sessionHours], [{ perTokenPerSecond: 5, perTokenBurst: 20, failedAuthPerMinute: 0 }, 2]);
    const bad = issues(() => resolveServeConfig({ ...base, flags: { rateLimit: '-1' }, env: { DSG_RATE_LIMIT_BURST: '0' }, file: null }));
    assert.deepEqual(bad.map((i) => i.path).sort(), ['--rate-limit', 'DSG_RATE_LIMIT_BURST']);
  });
  it('admission limits come from the same layers and are checked', () => {
    const o = resolveServeConfig({ ...base, flags: { maxQueuedTasksPerProject: '50' }, env: { DSG_MAX_QUEUED_TASKS: '500' }, file: null });
    assert.deepEqual([o.maxQueuedTasks, o.maxQueuedTasksPerProject], [500, 50]);
    const bad = issues(() => resolveServeConfig({ ...base, flags: {}, env: { DSG_MAX_QUEUED_TASKS: '0' }, file: null }));
    assert.deepEqual(bad.map((i) => i.path), ['DSG_MAX_QUEUED_TASKS']);
  });
  it('fair share: weights and per-project limits from the file, the half-life from every layer; bad values named by path', () => {
    const file = { projectWeights: { physics: 2, bio: 1 }, projectLimits: { physics: { maxRunningTasks: 100, maxGpus: 4, maxQueuedTasks: 5000 } }, usageHalfLifeMinutes: 30 };
    const o = resolveServeConfig({ ...base, flags: {}, env: {}, file });
    assert.deepEqual(o.fairShare, { usageHalfLifeMinutes: 30, projectWeights: { physics: 2, bio: 1 }, projectLimits: { physics: { maxRunningTasks: 100, maxGpus: 4, maxQueuedTasks: 5000 } } });
    assert.equal(resolveServeConfig({ ...base, flags: { usageHalfLife: '15' }, env: { DSG_USAGE_HALF_LIFE_MINUTES: '45' }, file }).fairShare?.usageHalfLifeMinutes, 15);
    assert.equal(resolveServeConfig({ ...base, flags: {}, env: { DSG_USAGE_HALF_LIFE_MINUTES: '45' }, file }).fairShare?.usageHalfLifeMinutes, 45);
    const bad = issues(() => resolveServeConfig({ ...base, flags: {}, env: {}, file: { projectWeights: { physics: 0 }, projectLimits: { bio: { maxGpus: -1, maxTasks: 3 } } } }));
    const paths = bad.map((i) => i.path).sort();
    assert.ok(paths.includes('grid.yaml: projectWeights.physics'), JSON.stringify(bad));
    assert.ok(paths.includes('grid.yaml: projectLimits.bio.maxGpus') || paths.includes('grid.yaml: projectLimits.bio'), JSON.stringify(bad));
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
  it('node retention and quarantine come from the file, env and flags, each bad value named', () => {
    const o = resolveServeConfig({ ...base, flags: { quarantineFailures: '0' }, env: { DSG_OFFLINE_NODE_RETENTION_HOURS: '2' }, file: { quarantineCoolDownMinutes: 5 } });
    assert.deepEqual([o.offlineNodeRetentionSeconds, o.quarantine], [7200, { failures: 0, windowSeconds: 600, coolDownSeconds: 300 }]);
    const bad = issues(() => resolveServeConfig({ ...base, flags: { quarantineFailures: '-1' }, env: {}, file: { offlineNodeRetentionHours: 'soon' } }));
    const byPath = Object.fromEntries(bad.map((i) => [i.path, i.message]));
    assert.match(byPath['--quarantine-failures'] ?? '', /0 \(off\) or more/);
    assert.match(byPath['grid.yaml: offlineNodeRetentionHours'] ?? '', /expected a number of hours/);
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
  it('talks to a grid on this machine through its local socket, and goes to the URL when the socket cannot be trusted', async () => {
    // Not spawnSync: the coordinator answering is in this process.
    const runAsync = (args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH']!, ...env }, cwd: tmpdir() }, (e, stdout, stderr) =>
          resolve({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }));
      });
    const dir = await mkdtemp(join(tmpdir(), 'dsg-bin-local-'));
    const coord = await startCoordinator({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0, tls: 'on', logLevel: 'silent', advertise: false });
    try {
      assert.ok(coord.localSocket);
      // The URL names a closed port: only the socket can answer.
      const home = join(dir, 'home');
      await mkdir(join(home, '.config', 'dsg'), { recursive: true });
      await writeFile(join(home, '.config', 'dsg', 'config.json'), JSON.stringify({ coordinator: 'https://127.0.0.1:9', token: coord.adminToken, tlsFingerprint: coord.tlsFingerprint, socket: coord.localSocket }));
      const ok = await runAsync(['nodes', '--json'], { HOME: home });
      assert.equal(ok.status, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout), { items: [] });
      const off = await runAsync(['nodes', '--json'], { HOME: home, DSG_NO_LOCAL_SOCKET: '1' });
      assert.equal(off.status, 3, 'DSG_NO_LOCAL_SOCKET=1: the URL only');
      // A data dir others may write to: someone could have put that socket there. The token is not sent to it.
      await chmod(join(dir, 'data'), 0o777);
      const open = await runAsync(['nodes', '--json'], { HOME: home });
      assert.equal(open.status, 3, open.stdout);
      await chmod(join(dir, 'data'), 0o700);
      // With the right URL, the grid answers either way.
      await writeFile(join(home, '.config', 'dsg', 'config.json'), JSON.stringify({ coordinator: coord.url, token: coord.adminToken, tlsFingerprint: coord.tlsFingerprint, socket: join(dir, 'gone.sock') }));
      const viaUrl = await runAsync(['nodes', '--json'], { HOME: home });
      assert.equal(viaUrl.status, 0, viaUrl.stderr);
    } finally {
      await coord.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('prints the JSON Schema', () => {
    const r = run(['spec', 'schema']);
    assert.equal(r.status, 0);
    assert.equal(JSON.parse(r.stdout).title, 'DSG job spec v1');
  });
});
