// The OpenAPI description of /api/v1: served without a token, a valid OpenAPI 3.1 document (checked with
// @seriousme/openapi-schema-validator, which holds the official 3.1 schema), and complete: every route fastify
// registers under /api/v1 is described (the failure names each route without one) and nothing described is gone.
// The checker the API tests use (fixtures/openapi-check.ts) is itself shown to fail on an undescribed status, a
// body that does not match, and a route without a schema. Real SQLite store in a temp dir, requests through inject.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { API_PREFIX, DSG_VERSION, jobSpecJsonSchema } from '@dsg/core';
import { openApiPath, routeSchema } from '../src/http/openapi.js';
import { registeredRoutes } from '../src/http/server.js';
import { startTestApi } from './fixtures/api-app.js';
import type { RegisteredRoute } from '../src/http/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Routes under /api/v1 that the document lacks, and operations of the document no route has. */
function compare(routes: readonly RegisteredRoute[], doc: Json): { missing: string[]; stale: string[] } {
  const api = routes.filter((r) => r.url.startsWith(`${API_PREFIX}/`));
  const missing = api.filter((r) => !doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()]).map((r) => `${r.method} ${r.url}`);
  const have = new Set(api.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
  const stale: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json))
    for (const m of Object.keys(item as Json)) if (METHODS.includes(m) && !have.has(`${m} ${path}`)) stale.push(`${m.toUpperCase()} ${path}`);
  return { missing, stale };
}

describe('OpenAPI description of /api/v1', () => {
  it('is served without a token, is valid OpenAPI 3.1, and describes every route (and only those)', async () => {
    const t = await startTestApi();
    try {
      const r = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      assert.equal(r.statusCode, 200, r.body);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const doc = r.json() as Json;

      const v = new Validator();
      const res = await v.validate(doc);
      assert.equal(res.valid, true, `not a valid OpenAPI document: ${JSON.stringify(res.errors)?.slice(0, 2000)}`);
      assert.equal(v.version, '3.1');

      const { missing, stale } = compare(registeredRoutes(t.app), doc);
      assert.deepEqual(missing, [], `routes under ${API_PREFIX} without a description: ${missing.join(', ')} — give each a \`schema: routeSchema({ … })\` (coordinator/src/http/openapi.ts) in its fastify options`);
      assert.deepEqual(stale, [], `described operations that no route has: ${stale.join(', ')}`);
      assert.ok(Object.keys(doc.paths).length >= 40, `expected the whole API, got ${Object.keys(doc.paths).length} paths`);

      // The version is the package's; both ways of signing in are described; open routes say so.
      const pkg = JSON.parse(await readFile(fileURLToPath(new URL('../../../../package.json', import.meta.url)), 'utf8')) as { version: string };
      assert.equal(doc.info.version, pkg.version);
      assert.equal(doc.info.version, DSG_VERSION);
      assert.deepEqual(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer', description: doc.components.securitySchemes.bearer.description });
      assert.equal(doc.components.securitySchemes.session.in, 'cookie');
      assert.deepEqual(doc.security, [{ bearer: [] }, { session: [] }]);
      const open = Object.entries(doc.paths as Json).flatMap(([p, item]) => Object.entries(item as Json).filter(([, op]) => Array.isArray(op.security) && op.security.length === 0).map(([m]) => `${m.toUpperCase()} ${p}`)).sort();
      assert.deepEqual(open, ['GET /api/v1/openapi.json', 'POST /api/v1/join-requests', 'POST /api/v1/session']);

      // Every operation: a unique id, request and answer schemas where it has them, errors in the API's format.
      const ids = new Set<string>();
      for (const [path, item] of Object.entries(doc.paths as Json))
        for (const [m, op] of Object.entries(item as Json)) {
          const where = `${m.toUpperCase()} ${path}`;
          assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} used twice`);
          ids.add(op.operationId);
          assert.ok(op.summary, `${where}: no summary`);
          for (const [status, resp] of Object.entries(op.responses as Json)) {
            if (m === 'head') assert.equal(resp.content, undefined, `${where} ${status}: a HEAD answer has no body`);
            else if (Number(status) >= 400 && !(path.endsWith('/join-requests') && status === '403'))
              assert.equal(resp.content?.['application/json']?.schema?.$ref, '#/components/schemas/Error', `${where} ${status}: not the API's error format`);
          }
          for (const st of ['400', '429', '500']) assert.ok(op.responses[st], `${where}: ${st} not described`);
          if (!(Array.isArray(op.security) && op.security.length === 0)) for (const st of ['401', '403']) assert.ok(op.responses[st], `${where}: ${st} not described`);
          for (const p of path.matchAll(/\{([^}]+)\}/g))
            assert.ok((op.parameters ?? []).some((x: Json) => x.in === 'path' && x.name === p[1]), `${where}: path parameter ${p[1]} not described`);
        }
      // Request schemas are the ones the server validates with: e.g. the submit body's strictness and the list limits.
      const submit = doc.paths['/api/v1/jobs'].post.requestBody.content['application/json'].schema;
      assert.equal(submit.additionalProperties, false);
      assert.deepEqual(submit.required, ['spec']);
      const limit = (doc.paths['/api/v1/jobs'].get.parameters as Json[]).find((p) => p.name === 'limit')!;
      assert.deepEqual([limit.in, limit.schema.type, limit.schema.minimum, limit.schema.maximum], ['query', 'integer', 1, 500]);
      // The spec inside a submit is described by the spec's own schema (the one `dsg spec check` and editors use).
      assert.equal(submit.properties.spec.$ref, '#/components/schemas/JobSpecV1');
      const wfSubmit = doc.paths['/api/v1/workflows'].post.requestBody.content['application/json'].schema;
      assert.equal(wfSubmit.properties.spec.$ref, '#/components/schemas/WorkflowSpecV1');
      const { $schema: _s, $id: _i, ...published } = jobSpecJsonSchema();
      assert.deepEqual(doc.components.schemas.JobSpecV1, published);
      const ajv = new Ajv2020({ strict: false });
      const specOk = ajv.compile(doc.components.schemas.JobSpecV1);
      assert.equal(specOk({ name: 'sweep', script: 'python3 sim.py', array: 10, resources: { cpu: 1, memory: '1Gi' } }), true, ajv.errorsText(specOk.errors));
      assert.equal(specOk({ name: 'sweep', script: 'x', colour: 'red' }), false, 'an unknown spec field is refused');
      assert.equal(doc.paths['/api/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Job');
      assert.ok(doc.paths['/api/v1/blobs/{sha256}'].get.responses['200'].content['application/octet-stream']);
      assert.ok(doc.paths['/api/v1/jobs/{id}/tasks/{index}/outputs/{path}'].get);
    } finally {
      await t.close();
    }
  });

  it('names a route that has no description, and picks up a route with a plain JSON Schema', async () => {
    const t = await startTestApi();
    let closed = false;
    try {
      t.app.get(`${API_PREFIX}/test-undescribed`, async () => ({ ok: true }));
      // A route written the usual fastify way keeps fastify's behaviour: ajv coerces and checks the query string.
      t.app.get(`${API_PREFIX}/test-plain/:thing`, {
        schema: {
          summary: 'plain', querystring: { type: 'object', properties: { n: { type: 'integer' } } },
          response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } },
        },
      }, async (req) => ({ ok: typeof (req.query as { n?: unknown }).n === 'number' }));
      const doc = (await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as Json;
      const { missing } = compare(registeredRoutes(t.app), doc);
      assert.deepEqual(missing, [`GET ${API_PREFIX}/test-undescribed`]);
      const plain = doc.paths['/api/v1/test-plain/{thing}'].get;
      assert.equal(plain.responses['200'].content['application/json'].schema.type, 'object');
      assert.deepEqual(plain.parameters, [{ name: 'thing', in: 'path', required: true, schema: { type: 'string' } }, { name: 'n', in: 'query', required: false, schema: { type: 'integer' } }]);
      assert.equal((await new Validator().validate(doc)).valid, true);
      assert.deepEqual((await t.app.inject({ method: 'GET', url: `${API_PREFIX}/test-plain/x?n=7` })).json(), { ok: true });
      const bad = await t.app.inject({ method: 'GET', url: `${API_PREFIX}/test-plain/x?n=seven` });
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json().error.message, /querystring\/n must be integer/);
      // The checker refuses the undescribed route's answer.
      await assert.rejects(t.app.inject({ method: 'GET', url: `${API_PREFIX}/test-undescribed` }), /GET \/api\/v1\/test-undescribed is not in the OpenAPI description/);
      // The checker kept the refused answers: closing reports them (after removing everything).
      closed = true;
      await assert.rejects(t.close(), /not as the OpenAPI description says/);
    } finally {
      if (!closed) await t.close().catch(() => undefined);
    }
  });

  it('fails an answer with an undescribed status or a body that does not match its schema', async () => {
    const t = await startTestApi();
    let closed = false;
    try {
      const schema = routeSchema({ summary: 'test', tags: ['test'], response: { 200: z.strictObject({ n: z.number().int() }) } });
      let answer: { status: number; body: unknown } = { status: 200, body: { n: 1 } };
      t.app.get(`${API_PREFIX}/test-answer`, { schema }, async (_req, reply) => reply.status(answer.status).send(answer.body));
      const call = () => t.app.inject({ method: 'GET', url: `${API_PREFIX}/test-answer` });
      assert.equal((await call()).statusCode, 200);
      answer = { status: 418, body: { error: { code: 'validation', message: 'teapot' } } };
      await assert.rejects(call(), /GET \/api\/v1\/test-answer answered 418, which its description does not list/);
      answer = { status: 200, body: { n: 1.5 } };
      await assert.rejects(call(), /does not match its described schema: \/n must be integer/);
      answer = { status: 200, body: { n: 1, extra: true } };
      await assert.rejects(call(), /must NOT have additional properties/);
      answer = { status: 404, body: { error: { code: 'not_found' } } };
      await assert.rejects(call(), /answered 404/);
      answer = { status: 400, body: { error: { code: 'nope', message: 'x' } } };
      await assert.rejects(call(), /\/error\/code must be equal to one of the allowed values/);
      // The checker kept the refused answers: closing reports them (after removing everything).
      closed = true;
      await assert.rejects(t.close(), /not as the OpenAPI description says/);
    } finally {
      if (!closed) await t.close().catch(() => undefined);
    }
  });
});
