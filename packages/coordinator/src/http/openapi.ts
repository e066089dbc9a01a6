/**
 * The OpenAPI 3.1 description of REST API v1, generated from the routes fastify registered, each with its `schema`.
 *
 * How schemas flow: request parts and answers are zod schemas (core's wire.ts for requests, wire-schemas.ts for
 * answers). A route names them in its fastify `schema` (built with `routeSchema()` below); the handler validates
 * its request parts with those same objects (`parseOr400`, after authentication: an anonymous caller learns nothing
 * about a route's inputs, and a failed token counts against its address before any parsing). `buildOpenApi()`
 * turns every route under /api/v1 that has a schema into an operation: zod becomes JSON Schema (2020-12, which
 * OpenAPI 3.1 uses as is), schemas with an `id` become `components/schemas`. A route with a plain JSON Schema
 * instead of zod is taken as it is, so any route with a schema joins the description without further work.
 *
 * fastify does not validate or serialise with these schemas itself (see `schemaCompilers`): zod validates in the
 * handlers, answers are plain JSON.stringify. The API tests check every answer against this description instead.
 */
import AjvCompiler from '@fastify/ajv-compiler';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import { z } from 'zod';
import { API_PREFIX, DSG_VERSION, jobSpecJsonSchema, workflowSpecJsonSchema } from '@dsg/core';
import { ErrorBodyV1Schema } from '@dsg/core/wire-schemas';
import { SESSION_COOKIE } from '../auth.js';

/** A body that is not JSON (a file): its media type. */
export class MediaBody {
  constructor(readonly mediaType: string, readonly description: string) {}
}
/** An answer without a body (204, or a HEAD). */
export class NoBody {
  constructor(readonly description: string) {}
}
export const binary = (description: string): MediaBody => new MediaBody('application/octet-stream', description);
export const noBody = (description = 'No body.'): NoBody => new NoBody(description);

type BodySchema = z.ZodType | MediaBody | NoBody | Record<string, unknown>;

/**
 * Errors every route can answer, added to each operation by buildOpenApi: a malformed request (400), a rate limit
 * (429), an internal error (500) and a coordinator that is stopping (503); routes with a token add 401 and 403;
 * methods with a body add 413 and 415 (fastify parses any body sent with them). A route lists its own (404, 409…).
 */
const BASE_ERRORS = [400, 429, 500, 503] as const;
const AUTH_ERRORS = [401, 403] as const;
const BODY_ERRORS = [413, 415] as const;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const ERROR_TEXT: Record<number, string> = {
  400: 'The request is malformed or a field is invalid (`validation`; `details.issues` names each field: the first 50, with `details.issueCount` counting them all when there are more).',
  401: 'No token, or a token that is unknown, revoked or expired (`unauthorized`).',
  403: 'The token may not do this (`forbidden`).',
  404: 'Not found, or not visible to this token (`not_found`).',
  409: 'Conflicts with the current state (`conflict`).',
  413: 'Too large (`too_large`).',
  415: 'Unsupported content type (`validation`).',
  429: 'Over a rate or admission limit (`over_limit`); `Retry-After` says when to try again.',
  500: 'Internal error (`internal`); the coordinator log has the cause.',
  503: 'The coordinator is starting or stopping (`unavailable`).',
};

export interface RouteSchemaOptions {
  readonly summary: string;
  readonly description?: string;
  /** Groups in the description (`jobs`, `nodes`…). */
  readonly tags: readonly string[];
  /** `none`: no token needed (the description says `security: []`). Default `token`. */
  readonly auth?: 'token' | 'none';
  readonly params?: z.ZodType;
  readonly querystring?: z.ZodType;
  readonly headers?: z.ZodType;
  readonly body?: z.ZodType | MediaBody;
  /** Successful answers by status. */
  readonly response: Readonly<Record<number, BodySchema>>;
  /** Error statuses beyond the ones every route may answer (BASE_ERRORS, AUTH_ERRORS with a token, BODY_ERRORS). */
  readonly errors?: readonly number[];
}

/** A fastify route `schema` that documents the route (and, for its request parts, is what the handler validates with). */
export function routeSchema(o: RouteSchemaOptions): Record<string, unknown> {
  const auth = o.auth ?? 'token';
  const response: Record<string, unknown> = { ...o.response };
  for (const s of o.errors ?? []) response[s] ??= ErrorBodyV1Schema;
  return {
    summary: o.summary, tags: [...o.tags], ...(o.description ? { description: o.description } : {}),
    ...(auth === 'none' ? { security: [] } : {}),
    ...(o.params ? { params: o.params } : {}), ...(o.querystring ? { querystring: o.querystring } : {}),
    ...(o.headers ? { headers: o.headers } : {}), ...(o.body ? { body: o.body } : {}),
    response,
  };
}

/**
 * fastify's validator and serialiser compilers. zod schemas validate in the handlers (after authentication), so
 * for them (and for the MediaBody / NoBody markers) fastify's validation step passes everything through and
 * answers are JSON.stringify'd (fast-json-stringify would drop a field the schema does not name instead of failing
 * a test). A route with a plain JSON Schema keeps fastify's own behaviour (ajv with type coercion and defaults,
 * fast-json-stringify), so one written the usual fastify way works as it would anywhere.
 */
const isPlainSchema = (s: unknown): boolean => !!s && typeof s === 'object' && Object.getPrototypeOf(s) === Object.prototype;
type RouteCompileInput = { schema: unknown; method: string; url: string; httpPart?: string; httpStatus?: string };
const fastifyDefaults = {
  validator: (AjvCompiler as unknown as () => (external: object, opts: object) => (r: RouteCompileInput) => unknown)()({}, { customOptions: {}, plugins: [] }),
  serializer: (SerializerSelector as unknown as () => (external: object, opts?: object) => (r: RouteCompileInput) => unknown)()({}),
};
type Validate = (value: unknown) => { value?: unknown; error?: Error } | boolean;
export const schemaCompilers = {
  validator: (r: RouteCompileInput): Validate => (isPlainSchema(r.schema) ? (fastifyDefaults.validator(r) as Validate) : (value: unknown) => ({ value })),
  serializer: (r: RouteCompileInput): ((data: unknown) => string) =>
    (isPlainSchema(r.schema) ? (fastifyDefaults.serializer(r) as (data: unknown) => string) : (data: unknown) => JSON.stringify(data)),
};

export interface DescribedRoute {
  readonly method: string;
  readonly url: string;
  readonly schema?: Record<string, unknown> | undefined;
}

type Json = Record<string, unknown>;
type JsonSchema = Record<string, unknown>;

const isZod = (s: unknown): s is z.ZodType => s instanceof z.ZodType;

/** `/api/v1/jobs/:id/outputs/*` → `/api/v1/jobs/{id}/outputs/{path}` (OpenAPI has no multi-segment parameter: `path` may hold slashes). */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}');
}
const paramName = (n: string): string => (n === '*' ? 'path' : n);

/**
 * Named schemas whose description is fuller than the zod schema that names them: the submit bodies take `spec` as
 * any object (the envelope is checked first), and the spec is then checked in full by JobSpecSchema /
 * WorkflowSpecSchema when it is compiled. The description shows those full schemas (the ones published in
 * schema/*.json for editors).
 */
function fullerSchemas(): Record<string, JsonSchema> {
  const strip = (s: JsonSchema): JsonSchema => {
    const { $schema: _s, $id: _i, ...rest } = s;
    return rest;
  };
  return { JobSpecV1: strip(jobSpecJsonSchema()), WorkflowSpecV1: strip(workflowSpecJsonSchema()) };
}

/** Converts schemas, moving named ones (zod `meta({ id })`) to components; the same id twice must be the same schema. */
class SchemaCollector {
  readonly components: Record<string, JsonSchema> = {};
  private readonly fuller = fullerSchemas();

  /** One conversion per schema and direction: the error schema alone appears in ~400 answers. */
  private readonly done = { input: new WeakMap<z.ZodType, JsonSchema>(), output: new WeakMap<z.ZodType, JsonSchema>() };

  convert(s: z.ZodType | JsonSchema, io: 'input' | 'output'): JsonSchema {
    if (!isZod(s)) return s;
    const known = this.done[io].get(s);
    if (known) return known;
    const converted = this.convertOnce(s, io);
    this.done[io].set(s, converted);
    return converted;
  }

  private convertOnce(s: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const js = z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
    delete js['$schema'];
    const defs = (js['$defs'] ?? {}) as Record<string, JsonSchema>;
    delete js['$defs'];
    for (const [id, def] of Object.entries(defs)) {
      const fixed = this.fuller[id] ?? (fixRefs(def) as JsonSchema);
      const known = this.components[id];
      if (known && JSON.stringify(known) !== JSON.stringify(fixed)) throw new Error(`two different schemas are named ${id} in the API description`);
      this.components[id] = fixed;
    }
    return fixRefs(js) as JsonSchema;
  }
}

function fixRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fixRefs);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = k === '$ref' && typeof x === 'string' ? x.replace(/^#\/\$defs\//, '#/components/schemas/') : fixRefs(x);
    return out;
  }
  return v;
}

function parameters(c: SchemaCollector, where: 'path' | 'query' | 'header', s: unknown, pathNames: readonly string[]): Json[] {
  const out: Json[] = [];
  const seen = new Set<string>();
  if (s) {
    const js = c.convert(s as z.ZodType, 'input');
    const props = (js['properties'] ?? {}) as Record<string, JsonSchema>;
    const required = new Set((js['required'] ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      const { description, ...rest } = schema;
      const n = paramName(name);
      seen.add(n);
      out.push({ name: n, in: where, required: where === 'path' || required.has(name), schema: rest, ...(description ? { description } : {}) });
    }
  }
  // Path parameters the route's schema does not describe are still parameters: strings.
  if (where === 'path') for (const n of pathNames) if (!seen.has(n)) out.push({ name: n, in: 'path', required: true, schema: { type: 'string' } });
  return out;
}

function content(c: SchemaCollector, s: BodySchema, io: 'input' | 'output'): Json | undefined {
  if (s instanceof NoBody) return undefined;
  if (s instanceof MediaBody) return { [s.mediaType]: { schema: { type: 'string', contentMediaType: s.mediaType } } };
  return { 'application/json': { schema: c.convert(s as z.ZodType | JsonSchema, io) } };
}

const describeOf = (s: BodySchema, status: number): string =>
  s instanceof NoBody || s instanceof MediaBody ? s.description : (ERROR_TEXT[status] ?? (isZod(s) ? (z.globalRegistry.get(s)?.description ?? 'OK') : 'OK'));

/** camelCase operation id from method and path: `GET /jobs/{id}/tasks` → `getJobsIdTasks`. */
function operationId(method: string, path: string): string {
  const words = path.slice(API_PREFIX.length).split(/[/{}\-_.*]+/).filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

export interface OpenApiOptions {
  /** Default DSG_VERSION. */
  readonly version?: string;
}

/** The OpenAPI 3.1 document for every route under /api/v1 that has a schema. */
export function buildOpenApi(routes: readonly DescribedRoute[], opts: OpenApiOptions = {}): Json {
  const c = new SchemaCollector();
  const paths: Record<string, Json> = {};
  const tags = new Set<string>();
  for (const r of routes) {
    if (!r.url.startsWith(`${API_PREFIX}/`) || !r.schema) continue;
    const s = r.schema;
    const path = openApiPath(r.url);
    const pathNames = [...r.url.matchAll(/:([A-Za-z0-9_]+)|\*$/g)].map((m) => m[1] ?? 'path');
    const op: Json = { operationId: operationId(r.method, path) };
    for (const k of ['summary', 'description', 'tags', 'security'] as const) if (s[k] !== undefined) op[k] = s[k];
    for (const t of (s['tags'] ?? []) as string[]) tags.add(t);
    const params = [
      ...parameters(c, 'path', s['params'], pathNames),
      ...parameters(c, 'query', s['querystring'] ?? s['query'], []),
      ...parameters(c, 'header', s['headers'], []),
    ];
    if (params.length) op['parameters'] = params;
    if (s['body']) {
      const body = s['body'] as BodySchema;
      const optional = isZod(body) && body.safeParse(undefined).success;
      op['requestBody'] = { required: !optional, content: content(c, body, 'input') };
    }
    const responses: Json = {};
    const answers: Record<string, BodySchema> = { ...(s['response'] ?? {}) as Record<string, BodySchema> };
    const open = Array.isArray(s['security']) && s['security'].length === 0;
    for (const st of [...BASE_ERRORS, ...(open ? [] : AUTH_ERRORS), ...(BODY_METHODS.has(r.method) ? BODY_ERRORS : [])]) answers[st] ??= ErrorBodyV1Schema;
    for (const [status, schema] of Object.entries(answers).sort(([a], [b]) => a.localeCompare(b))) {
      // A HEAD answer never has a body (its headers are the GET's), whatever its status.
      const body = r.method === 'HEAD' ? undefined : content(c, schema, 'output');
      const headers = status === '429' ? { headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } } } : {};
      responses[status] = { description: describeOf(schema, Number(status)), ...headers, ...(body ? { content: body } : {}) };
    }
    op['responses'] = responses;
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Distributed Science Grid API',
      version: opts.version ?? DSG_VERSION,
      description:
        'REST API v1 of the DSG coordinator. Authenticate with a bearer token (`Authorization: Bearer TOKEN`, from `dsg token create` or the ' +
        'admin token `dsg up` prints) or the dashboard\'s session cookie (state-changing requests with a cookie also need `X-DSG-CSRF: 1`). ' +
        'Errors share one format: `{ "error": { "code", "message", "details"? } }`. The agents\' WebSocket channel (`/api/v1/agent/connect`) is not described here.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/', description: 'This coordinator' }],
    security: [{ bearer: [] }, { session: [] }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: {
      schemas: Object.fromEntries(Object.entries(c.components).sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token: `Authorization: Bearer TOKEN`.' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The dashboard\'s session (`POST /api/v1/session`); changes also need `X-DSG-CSRF: 1`.' },
      },
    },
  };
}
