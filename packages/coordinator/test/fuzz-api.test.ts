// Fuzzing the REST API and the agent protocol with generated inputs (fast-check), on a real SQLite store:
//  - every registered route, with random ids, query strings, bodies, content types and credentials, through
//    fastify's inject: never a 5xx, and every rejection a 4xx in the API's error format ({ error: { code, message } });
//  - random and mutated frames from a node that joined over a real WebSocket: each bad frame is answered with an
//    `error` message naming what was wrong, the coordinator never fails, and the node's connection still works after.
// 2,500 API requests + 1,500 frames (+ the 8,000 spec cases in core's fuzz-spec test) = 12,000 generated cases.
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { pino } from 'pino';
import WebSocket from 'ws';
import { AGENT_WS_PATH, PROTOCOL_VERSION } from '@dsg/core';
import { Authenticator } from '../src/auth.js';
import { AgentHub } from '../src/agents/agent-hub.js';
import { registeredRoutes } from '../src/http/server.js';
import { startTestApi, type TestApi } from './fixtures/api-app.js';

const json = fc.jsonValue({ maxDepth: 3 });
const idLike = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('job_01jd00000000000000000000000', 'wf_x', 'node_zz', '0', '-1', '99999999999999999999', '..', '%00', 'a'.repeat(300), '64'.repeat(32), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
);
const queryString = fc.dictionary(fc.constantFrom('limit', 'cursor', 'state', 'name', 'offset', 'attempt', 'task', 'since', 'action', 'actor', 'dryRun', 'x'), fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('0', '-5', '1e9', 'NaN', '[]', 'queued', '2026-01-01')), { maxKeys: 4 })
  .map((q) => new URLSearchParams(q).toString());

describe('fuzz: REST API and agent protocol', { timeout: 120_000 }, () => {
  let t: TestApi;
  before(async () => {
    t = await startTestApi();
    await mkdir(join(t.dir, 'static'), { recursive: true });
    await writeFile(join(t.dir, 'static', 'index.html'), '<!doctype html>');
  });
  after(async () => t.close());

  it('every route, random requests: never 5xx, every rejection a 4xx in the error format', async () => {
    // The change feed is a stream that stays open by design (minutes); events.test.ts covers its answers.
    const routes = registeredRoutes(t.app).filter((r) => r.url !== '/api/v1/events');
    assert.ok(routes.length > 20, `expected the whole API, got ${routes.length} routes`);
    // A valid submit to mutate, so that bodies get past the outer checks into the handlers.
    const validJob = { spec: { name: 'fz', script: 'echo hi', resources: { memory: '16Mi' } } };
    const body = fc.oneof(json, json.map((v) => ({ spec: { ...validJob.spec, ...(typeof v === 'object' && v && !Array.isArray(v) ? v : { script: v }) } })), fc.constant(validJob));
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes), fc.array(idLike, { minLength: 3, maxLength: 3 }), queryString, fc.option(body),
        fc.constantFrom('application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', undefined),
        fc.constantFrom('admin', 'none', 'garbage', 'node'),
        async (route, ids, qs, b, ctype, who) => {
          let i = 0;
          const url = route.url.replace(/:[a-zA-Z0-9]+|\*/g, () => encodeURIComponent(ids[i++ % 3]!)) + (qs ? `?${qs}` : '');
          const headers: Record<string, string> = {};
          if (who === 'admin') headers['authorization'] = `Bearer ${t.admin}`;
          if (who === 'node') headers['authorization'] = `Bearer ${t.nodeToken}`;
          if (who === 'garbage') headers['authorization'] = 'Bearer \u00ff\u0000x';
          if (ctype) headers['content-type'] = ctype;
          const req: InjectOptions = { method: route.method as InjectOptions['method'], url, headers };
          if (b !== null && !['GET', 'HEAD'].includes(route.method)) req.payload = ctype === 'application/json' || ctype === undefined ? JSON.stringify(b) : String(JSON.stringify(b));
          let r;
          try {
            r = await t.app.inject(req);
          } catch (e) {
            // inject refuses some header values itself (e.g. a NUL): that is the client library, not the API.
            if (/Invalid character in header|ERR_INVALID_CHAR/.test(String(e))) return;
            throw e;
          }
          // /readyz answers 503 while the engine does not take work (here: never started); that is its purpose.
          if (route.url === '/readyz') return;
          if (r.statusCode >= 500) failures.push(`${route.method} ${url} → ${r.statusCode} ${r.body.slice(0, 300)}`);
          if (r.statusCode >= 400 && route.method !== 'HEAD') {
            const parsed = parseOrNull(r.body);
            if (typeof parsed?.error?.code !== 'string' || typeof parsed.error.message !== 'string')
              failures.push(`${route.method} ${url} → ${r.statusCode} not in the error format: ${r.body.slice(0, 200)}`);
          }
        },
      ),
      { numRuns: 2500 },
    );
    assert.deepEqual([...new Set(failures)].slice(0, 20), []);
  });

  it('agent frames, random and mutated, over a real WebSocket: each refused with an error, the connection keeps working', async () => {
    const hub = new AgentHub(t.engine, new Authenticator(t.store), t.clock, 5000, pino({ level: 'silent' }), { refusals: t.engine.refusals });
    hub.attach(t.app.server);
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as { port: number }).port;
      const ws = new WebSocket(`ws://127.0.0.1:${port}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${t.nodeToken}` } });
      const inbox: Array<{ type: string; code?: string; message?: string }> = [];
      let closed: number | null = null;
      ws.on('message', (d) => inbox.push(JSON.parse(String(d)) as (typeof inbox)[number]));
      ws.on('close', (code) => (closed = code));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const GiB = 1024 ** 3;
      const hello = {
        type: 'hello', protocol: PROTOCOL_VERSION, nodeId: null, name: 'fuzz', agentVersion: 't',
        capacity: { cpuMillis: 1000, memoryBytes: GiB, gpus: 0, diskBytes: GiB },
        facts: { hostname: 'fuzz', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 1, memoryBytes: GiB, diskBytes: GiB, gpus: [] },
        labels: {}, running: [],
      };
      ws.send(JSON.stringify(hello));
      const waitFor = async (pred: () => boolean, what: string) => {
        for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
        assert.ok(pred(), `${what}; got ${JSON.stringify(inbox.slice(-3))}`);
      };
      await waitFor(() => inbox.some((m) => m.type === 'welcome'), 'a welcome');

      // Frames that are not a valid message: not JSON, wrong types, unknown types, valid shapes with bad values.
      const valid = [
        { type: 'heartbeat', running: [] },
        { type: 'started', attemptId: 'att_x', at: 1 },
        { type: 'log', attemptId: 'att_x', stream: 'stdout', data: 'x' },
        { type: 'finished', attemptId: 'att_x', end: { kind: 'exited', exitCode: 0 }, startedAt: null, finishedAt: 1, outputs: [] },
        { type: 'stopping' },
      ];
      const mutated = fc.tuple(fc.constantFrom(...valid), fc.constantFrom('type', 'attemptId', 'running', 'at', 'stream', 'data', 'end', 'outputs', 'zz'), json)
        .map(([m, k, v]) => ({ ...m, [k]: v }));
      const bad = fc.oneof(
        fc.string({ maxLength: 200 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }),
        json.filter((v) => v === null || typeof v !== 'object' || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string' || !['hello', 'heartbeat', 'started', 'log', 'finished', 'stopping'].includes((v as { type: string }).type)).map((v) => JSON.stringify(v)),
      );
      let sentBad = 0;
      const errorsBefore = inbox.filter((m) => m.type === 'error').length;
      await fc.assert(
        fc.asyncProperty(fc.oneof(bad.map((s) => ({ s, bad: true })), mutated.map((m) => ({ s: JSON.stringify(m), bad: false }))), async ({ s, bad: isBad }) => {
          if (isBad) sentBad++;
          ws.send(s);
        }),
        { numRuns: 1500 },
      );
      // Everything sent is answered or applied (a mutated but valid message for an unknown attempt is ignored);
      // every frame that was no message at all got an `error` naming what was wrong.
      ws.send(JSON.stringify({ type: 'heartbeat', running: [] }));
      await waitFor(() => inbox.filter((m) => m.type === 'error').length - errorsBefore >= sentBad, `an error for each of ${sentBad} bad frames`);
      for (const m of inbox.filter((x) => x.type === 'error')) assert.ok(typeof m.message === 'string' && m.message.length > 0, JSON.stringify(m));
      assert.equal(closed, null, 'the coordinator kept the connection open');
      const health = await t.app.inject({ method: 'GET', url: '/api/v1/health', headers: { authorization: `Bearer ${t.admin}` } });
      assert.equal(health.statusCode, 200);
      assert.equal(health.json().nodesOnline, 1, 'the node is still online');
      ws.close();
    } finally {
      await hub.close();
    }
  });
});

function parseOrNull(text: string): { error?: { code?: unknown; message?: unknown } } | null {
  try {
    return JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
  } catch {
    return null;
  }
}
