// The OpenAPI description against a real grid: a coordinator and an agent as processes, the description fetched
// over HTTP without a token and validated as OpenAPI 3.1, then real work — an uploaded input, a job with outputs
// and a failing task, a workflow whose stages pass a file, retry, cancel, tokens, the ledger and the audit log —
// and every answer of the API along the way (successes and refusals) checked against the description: its status
// listed for the route, its JSON body valid (ajv, JSON Schema 2020-12, strict), a file with the described type.
// This reaches what the inject-based API tests cannot: answers about attempts that really ran on a real node.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Sandbox, fetchFor, freePort, type Credentials } from './harness.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const BASE = 'https://dsg.invalid/components/';

/** A validator of answers against the description: `check(method, pathTemplate, status, contentType, body)`. */
function answersOf(doc: Json) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  const rewrite = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(rewrite)
      : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace('#/components/schemas/', BASE) : rewrite(x)]))
        : v;
  for (const [id, s] of Object.entries(doc.components.schemas as Json)) ajv.addSchema(rewrite(s) as Json, `${BASE}${id}`);
  const cache = new Map<string, ValidateFunction>();
  const seen = new Set<string>();
  return {
    seen,
    check(method: string, path: string, status: number, type: string, text: string): string | null {
      const where = `${method} ${path} ${status}`;
      seen.add(where);
      const op = doc.paths[path]?.[method.toLowerCase()];
      if (!op) return `${method} ${path} is not described`;
      const res = op.responses[String(status)];
      if (!res) return `${where}: status not described (${Object.keys(op.responses).join(', ')})`;
      if (method === 'HEAD') return null; // a HEAD answer has no body, whatever the status
      if (!res.content) return text === '' ? null : `${where}: described without a body, got ${text.slice(0, 100)}`;
      const media = res.content[type];
      if (!media) return `${where}: sent ${type}, described ${Object.keys(res.content).join(', ')}`;
      if (type !== 'application/json') return null;
      let v = cache.get(where);
      if (!v) cache.set(where, (v = ajv.compile(rewrite(media.schema) as Json)));
      return v(JSON.parse(text)) ? null : `${where}: ${ajv.errorsText(v.errors)} — ${text.slice(0, 300)}`;
    },
  };
}

describe('OpenAPI description on a real grid', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  after(async () => sb.cleanup());

  it('is served without a token, valid OpenAPI 3.1, and every answer of a real session matches it', async () => {
    const data = join(sb.dir, 'data');
    const coord = sb.start(['coordinator', '--data-dir', data, '--port', String(await freePort()), '--host', '127.0.0.1']);
    const creds: Credentials = await sb.credentials(data, coord.output);
    const fetch = fetchFor(creds);

    const d = await fetch(`${creds.url}/api/v1/openapi.json`);
    assert.equal(d.status, 200, 'the description needs no token');
    const doc = (await d.json()) as Json;
    const v = new Validator();
    const valid = await v.validate(doc);
    assert.equal(valid.valid, true, JSON.stringify(valid.errors)?.slice(0, 2000));
    assert.equal(v.version, '3.1');
    const answers = answersOf(doc);
    answers.seen.add('GET /api/v1/openapi.json 200');

    const problems: string[] = [];
    /** Call a route by its described path (`/api/v1/jobs/{id}`), filling its parameters; the answer is checked. */
    const call = async (method: string, path: string, o: { params?: Record<string, string>; query?: string; json?: unknown; body?: Buffer; token?: string | null; headers?: Record<string, string> } = {}) => {
      const url = path.replace(/\{([^}]+)\}/g, (_m, n: string) => (n === 'path' ? o.params![n]! : encodeURIComponent(o.params![n]!)));
      const token = o.token === undefined ? creds.adminToken : o.token;
      const r = await fetch(`${creds.url}${url}${o.query ? `?${o.query}` : ''}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(o.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(o.body ? { 'content-type': 'application/octet-stream' } : {}),
          ...o.headers,
        },
        ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}),
        ...(o.body ? { body: o.body } : {}),
      });
      const text = method === 'HEAD' ? '' : await r.text();
      const type = (r.headers.get('content-type') ?? '').split(';')[0]!.trim();
      const p = answers.check(method, path, r.status, type, text);
      if (p) problems.push(p);
      return { status: r.status, text, json: () => JSON.parse(text) as Json };
    };

    sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--cpus', '2']);
    await sb.waitFor('the agent online', async () => (await call('GET', '/api/v1/nodes')).json().items.some((n: Json) => n.state === 'online'), 30_000, coord.output);
    const node = (await call('GET', '/api/v1/nodes')).json().items[0] as Json;
    await call('GET', '/api/v1/nodes/{id}', { params: { id: node.id } });
    await call('GET', '/api/v1/health');
    await call('GET', '/api/v1/status');
    await call('GET', '/api/v1/session');

    // An input file: uploaded, found, downloaded; a wrong hash refused.
    const input = Buffer.from('3\n1\n2\n');
    const sha = createHash('sha256').update(input).digest('hex');
    assert.equal((await call('HEAD', '/api/v1/blobs/{sha256}', { params: { sha256: sha } })).status, 404);
    assert.equal((await call('PUT', '/api/v1/blobs/{sha256}', { params: { sha256: sha }, body: input })).status, 201);
    assert.equal((await call('PUT', '/api/v1/blobs/{sha256}', { params: { sha256: 'f'.repeat(64) }, body: input })).status, 400);
    assert.equal((await call('HEAD', '/api/v1/blobs/{sha256}', { params: { sha256: sha } })).status, 200);
    assert.equal((await call('GET', '/api/v1/blobs/{sha256}', { params: { sha256: sha } })).text, input.toString());

    // A job: 3 tasks, task 2 fails; outputs, logs, attempts, explain, retry, cancel of a finished job.
    const spec = { name: 'oa', script: 'sort -n nums.txt > "out-$DSG_TASK_INDEX.txt"; echo "task $DSG_TASK_INDEX"; test "$DSG_TASK_INDEX" != 2', array: 3, inputs: ['nums.txt'], outputs: ['out-*.txt'], resources: { cpu: 0.5, memory: '16Mi' } };
    const sub = await call('POST', '/api/v1/jobs', { json: { spec, inputs: [{ path: 'nums.txt', sha256: sha, size: input.length }] } });
    assert.equal(sub.status, 201, sub.text);
    const id = sub.json().job.id as string;
    await sb.waitFor('the job to finish', async () => (await call('GET', '/api/v1/jobs/{id}', { params: { id } })).json().finishedAt, 30_000, coord.output);
    assert.equal((await call('GET', '/api/v1/jobs/{id}', { params: { id } })).json().state, 'failed');
    await call('GET', '/api/v1/jobs', { query: 'limit=5' });
    await call('GET', '/api/v1/jobs', { query: 'state=failed' });
    await call('GET', '/api/v1/jobs/{id}/tasks', { params: { id } });
    await call('GET', '/api/v1/jobs/{id}/tasks/{index}', { params: { id, index: '2' } });
    const attempts = (await call('GET', '/api/v1/jobs/{id}/tasks/{index}/attempts', { params: { id, index: '0' } })).json().items as Json[];
    assert.equal(attempts[0]!.state, 'succeeded');
    assert.match((await call('GET', '/api/v1/jobs/{id}/tasks/{index}/logs', { params: { id, index: '1' } })).json().data, /task 1/);
    const outs = (await call('GET', '/api/v1/jobs/{id}/outputs', { params: { id } })).json().items as Json[];
    assert.ok(outs.length >= 2, JSON.stringify(outs));
    assert.equal((await call('GET', '/api/v1/jobs/{id}/tasks/{index}/outputs/{path}', { params: { id, index: '0', path: 'out-0.txt' } })).text, '1\n2\n3\n');
    await call('GET', '/api/v1/jobs/{id}/explain', { params: { id } });
    assert.equal((await call('POST', '/api/v1/jobs/{id}/retry', { params: { id } })).status, 200);
    await sb.waitFor('the retried task to end', async () => (await call('GET', '/api/v1/jobs/{id}', { params: { id } })).json().finishedAt, 30_000, coord.output);
    assert.equal((await call('POST', '/api/v1/jobs/{id}/cancel', { params: { id } })).status, 409);

    // Refusals in the API's format, each status described for its route.
    assert.equal((await call('GET', '/api/v1/jobs/{id}', { params: { id: 'job_nope' } })).status, 404);
    assert.equal((await call('GET', '/api/v1/jobs', { query: 'limit=0' })).status, 400);
    assert.equal((await call('GET', '/api/v1/jobs', { token: null })).status, 401);
    assert.equal((await call('POST', '/api/v1/jobs', { json: { spec: { name: 'bad' } } })).status, 400);

    // A workflow: stage B reads A's output on the grid.
    const wf = await call('POST', '/api/v1/workflows', {
      json: { spec: { name: 'oa-wf', stages: { A: { script: 'echo a > a.txt', outputs: ['a.txt'], resources: { memory: '16Mi' } }, B: { needs: ['A'], inputs: [{ from: 'A' }], script: 'cat a.txt a.txt > b.txt', outputs: ['b.txt'], resources: { memory: '16Mi' } } } } },
    });
    assert.equal(wf.status, 201, wf.text);
    const wid = wf.json().workflow.id as string;
    await sb.waitFor('the workflow to finish', async () => (await call('GET', '/api/v1/workflows/{id}', { params: { id: wid } })).json().finishedAt, 30_000, coord.output);
    await call('GET', '/api/v1/workflows', {});
    assert.equal((await call('GET', '/api/v1/workflows/{id}/outputs', { params: { id: wid } })).json().items.length, 2);
    await call('POST', '/api/v1/workflows/{id}/retry', { params: { id: wid } });
    await call('POST', '/api/v1/workflows/{id}/cancel', { params: { id: wid } });

    // Tokens, node operations, the ledger, the audit log, refusals, garbage collection (dry run).
    const tok = await call('POST', '/api/v1/tokens', { json: { role: 'reader', name: 'oa reader' } });
    assert.equal(tok.status, 201, tok.text);
    await call('GET', '/api/v1/tokens');
    await call('GET', '/api/v1/jobs', { token: tok.json().secret });
    assert.equal((await call('POST', '/api/v1/jobs', { token: tok.json().secret, json: { spec } })).status, 403);
    await call('DELETE', '/api/v1/tokens/{id}', { params: { id: 'oa reader' } });
    await call('POST', '/api/v1/nodes/{id}/cordon', { params: { id: node.id } });
    await call('POST', '/api/v1/nodes/{id}/uncordon', { params: { id: node.id } });
    await call('GET', '/api/v1/ledger', { query: 'by=project' });
    await call('GET', '/api/v1/audit', { query: 'limit=20' });
    await call('GET', '/api/v1/audit/verify');
    await call('GET', '/api/v1/security/refusals');
    await call('GET', '/api/v1/join-requests');
    await call('POST', '/api/v1/gc', { json: { dryRun: true } });

    // The CLI fetches the same document (`dsg openapi -o FILE`, through the configured coordinator).
    const out = join(sb.dir, 'dsg-openapi.json');
    const cli = await sb.run(['openapi', '-o', out], { env: { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken } });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stderr, /wrote the OpenAPI 3\.1\.0 description of DSG API \d+\.\d+\.\d+ \(\d+ paths\)/);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), doc);

    assert.deepEqual(problems, [], `answers not as the description says:\n${problems.join('\n')}`);
    assert.ok(answers.seen.size >= 45, `expected to check most routes, checked ${answers.seen.size}: ${[...answers.seen].join(', ')}`);
  });
});
