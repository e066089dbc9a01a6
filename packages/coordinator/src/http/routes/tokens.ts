/**
 * Tokens (admin only): `POST /api/v1/tokens` mints one (its secret is in this answer only; the store keeps its
 * sha256), `GET /api/v1/tokens` lists them (never a secret), `DELETE /api/v1/tokens/:id` revokes one by id or by
 * name — at once, with every dashboard session it opened.
 *
 * Names are unique among tokens not revoked, so a name is enough to revoke one.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, ConflictError, CreateJoinCodeRequestV1Schema, CreateTokenRequestV1Schema, joinCodeFromIndexes, JOIN_CODE_LENGTH, JOIN_CODE_WORDS, newTokenId, type CreateJoinCodeResponseV1, NotFoundError, ValidationError, type CreateTokenResponseV1, type TokenV1 } from '@dsg/core';
import { CreateTokenResponseV1Schema, CreateJoinCodeResponseV1Schema, itemsV1Schema, TokenV1Schema } from '@dsg/core/wire-schemas';
import type { Store, TokenRecord } from '@dsg/store';
import { randomInt } from 'node:crypto';
import { createToken, hashToken, type Authenticator } from '../../auth.js';
import type { Clock } from '../../clock.js';
import { toTokenV1 } from '../mappers.js';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import { z } from 'zod';

const TokenParams = z.strictObject({ id: z.string().meta({ description: 'A token\'s id or name.' }) });
import type { Audit, Authed } from './authed.js';

/** Machines a join code admits unless `--uses` says otherwise (a large classroom; a code is short-lived anyway). */
export const DEFAULT_JOIN_CODE_USES = 100;

export interface TokenRouteDeps {
  readonly store: Store;
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly authed: Authed;
  readonly audit: Audit;
}

/** The token named by id or by name (names are unique among live tokens; a revoked one is found by id). */
export async function findToken(store: Store, idOrName: string): Promise<TokenRecord> {
  const all = await store.listTokens();
  const byId = all.find((t) => t.id === idOrName);
  if (byId) return byId;
  const named = all.filter((t) => t.name === idOrName && t.revokedAt === null);
  if (named.length === 1) return named[0]!;
  if (named.length > 1)
    throw new ValidationError([{ path: 'params.id', message: `${named.length} tokens are named ${idOrName} (${named.map((t) => t.id).join(', ')}): name one by its id` }]);
  throw new NotFoundError('token', `${idOrName} (see \`dsg token list\` for names and ids)`);
}

export function tokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): void {
  const { store, clock, authed } = deps;

  app.post(`${API_PREFIX}/tokens`, { schema: S({ summary: 'Create a token (its secret is in this answer only)', tags: ['tokens'], body: CreateTokenRequestV1Schema, response: { 201: CreateTokenResponseV1Schema }, errors: [409] }) }, async (req, reply) => {
    await authed(req, 'tokens:admin');
    const body = parseOr400(CreateTokenRequestV1Schema, req.body, 'body');
    const now = clock.now();
    const name = body.name ?? `${body.role}${body.projects ? ` of ${body.projects.join(', ')}` : ''} ${new Date(now).toISOString().slice(0, 10)}`;
    if ((await store.listTokens()).some((t) => t.name === name && t.revokedAt === null))
      throw new ConflictError(`a token named "${name}" exists already; pick another --name, or revoke it first (dsg token revoke "${name}")`, { name });
    const { secret, record } = await createToken(store, body.role, name, now, {
      projects: body.projects ? [...new Set(body.projects)] : null,
      expiresAt: body.expiresInSeconds !== undefined ? now + body.expiresInSeconds * 1000 : null,
    });
    await deps.audit(req, 'token.created', record.id, { name: record.name, role: record.role, projects: record.projects ?? null, expiresAt: record.expiresAt ?? null });
    const res: CreateTokenResponseV1 = { token: toTokenV1(record, now), secret };
    return reply.status(201).send(res);
  });

  // A join code: a node token (it may only register new nodes, like the join token) whose secret is four words.
  app.post(`${API_PREFIX}/join-codes`, { schema: S({ summary: 'Create a join code: four words a machine joins with', tags: ['tokens'], body: CreateJoinCodeRequestV1Schema, response: { 201: CreateJoinCodeResponseV1Schema }, errors: [409] }) }, async (req, reply) => {
    await authed(req, 'tokens:admin');
    const body = parseOr400(CreateJoinCodeRequestV1Schema, req.body ?? {}, 'body');
    const now = clock.now();
    const live = await store.listTokens();
    const id = newTokenId(now);
    const name = body.name ?? `join code ${id}`;
    if (live.some((t) => t.name === name && t.revokedAt === null))
      throw new ConflictError(`a token named "${name}" exists already; pick another --name`, { name });
    // 2,048^4 codes: a clash with a live one is all but impossible, but a clash must never make two records of one secret.
    let code = '';
    for (let i = 0; i < 5 && (code === '' || live.some((t) => t.hash === hashToken(code))); i++)
      code = joinCodeFromIndexes(Array.from({ length: JOIN_CODE_LENGTH }, () => randomInt(JOIN_CODE_WORDS.length)));
    const record: TokenRecord = {
      id, hash: hashToken(code), role: 'node', name, createdAt: now, revokedAt: null,
      projects: null, expiresAt: now + (body.expiresInSeconds ?? 3600) * 1000, lastUsedAt: null, maxUses: body.maxUses ?? DEFAULT_JOIN_CODE_USES,
    };
    await store.createToken(record);
    await deps.audit(req, 'joincode.created', record.id, { name: record.name, expiresAt: record.expiresAt ?? null, maxUses: record.maxUses ?? null });
    const res: CreateJoinCodeResponseV1 = { token: toTokenV1(record, now), code };
    return reply.status(201).send(res);
  });

  app.get(`${API_PREFIX}/tokens`, { schema: S({ summary: 'Every token (never a secret)', tags: ['tokens'], response: { 200: itemsV1Schema(TokenV1Schema) } }) }, async (req) => {
    await authed(req, 'tokens:admin');
    const now = clock.now();
    const items: TokenV1[] = (await store.listTokens()).map((t) => toTokenV1(t, now));
    return { items };
  });

  app.delete(`${API_PREFIX}/tokens/:id`, { schema: S({ summary: 'Revoke a token by id or name, with its sessions', tags: ['tokens'], params: TokenParams, response: { 200: z.strictObject({ token: TokenV1Schema }) }, errors: [404, 409] }) }, async (req) => {
    await authed(req, 'tokens:admin');
    const t = await findToken(store, (req.params as { id: string }).id);
    if (t.nodeId) throw new ConflictError(`token ${t.id} is the credential of a node; revoke it with \`dsg node revoke\` (its work is requeued then)`, { nodeId: t.nodeId });
    if (t.revokedAt !== null) throw new ConflictError(`token "${t.name}" (${t.id}) was already revoked`, { token: toTokenV1(t, clock.now()) });
    await deps.auth.revokeToken(t.id);
    await deps.audit(req, t.maxUses != null ? 'joincode.revoked' : 'token.revoked', t.id, { name: t.name, role: t.role });
    return { token: toTokenV1((await store.getToken(t.id))!, clock.now()) };
  });
}
