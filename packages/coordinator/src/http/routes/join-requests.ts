/**
 * Joining by approval: a machine with no join token or code asks (`POST /api/v1/join-requests`, no token) and waits;
 * an admin sees it (`GET /api/v1/join-requests`, `dsg node pending`) and approves or rejects it
 * (`POST /api/v1/join-requests/:id/approve|reject`). The asking agent polls with the same secret key; once approved,
 * the key holder — and only it — collects a node credential bound to the node id reserved at approval, then
 * connects like any node. Nothing but this exchange is open to a pending machine: no tasks, no tokens, no data.
 *
 * Limits (it is the one write open to anyone who can connect): the body is at most 16 KiB and every field bounded by
 * the schema; 10 *new* requests per minute per address and 30 polls per minute per request (counted apart, so a
 * classroom of machines behind one NAT address can all wait and poll); at most `maxPending` pending requests (64 by
 * default; an unknown machine beyond that is told to ask later); pending requests not polled for `staleMs` (24 h)
 * forgotten.
 */
import { createHash, randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  ConflictError,
  DecideJoinRequestV1Schema,
  JoinRequestV1Schema,
  newNodeId,
  NotFoundError,
  OverLimitError,
  ValidationError,
  type JoinRequestAnswerV1,
  type JoinRequestV1,
} from '@dsg/core';
import { JoinRequestAnswerV1Schema, JoinRequestV1ResponseSchema, itemsV1Schema } from '@dsg/core/wire-schemas';
import type { JoinRequestRecord, Store } from '@dsg/store';
import type { Authenticator } from '../../auth.js';
import type { Clock } from '../../clock.js';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import { z } from 'zod';
import type { Audit, Authed } from './authed.js';

export interface JoinRequestRouteDeps {
  readonly store: Store;
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly authed: Authed;
  readonly audit: Audit;
  /** Most pending requests kept at once. Default 64. */
  readonly maxPending?: number;
  /** A pending request not polled for this long is forgotten (its agent stopped asking), in ms. Default 24 h. */
  readonly staleMs?: number;
}

/** New requests per minute one address may make (machines behind one NAT address share it). */
export const NEW_REQUESTS_PER_ADDRESS_PER_MINUTE = 10;
/** Polls per minute of one request (an agent polls every 10 s: 6). */
export const POLLS_PER_REQUEST_PER_MINUTE = 30;
/** A pending request not polled for this long is forgotten (its agent stopped asking). Default of `staleMs`. */
export const JOIN_REQUEST_STALE_MS = 24 * 3600_000;
/** Readable ids: no 0/O, 1/I/L. */
const ID_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

function newRequestId(): string {
  const pick = (): string => Array.from({ length: 4 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join('');
  return `${pick()}-${pick()}`;
}

export function toJoinRequestV1(r: JoinRequestRecord): JoinRequestV1 {
  let facts: JoinRequestV1['facts'];
  try {
    facts = JSON.parse(r.factsJson) as JoinRequestV1['facts'];
  } catch {
    facts = { os: '?', arch: '?', cpuModel: '?', cores: 0, memoryBytes: 0, gpus: [] };
  }
  return {
    id: r.id, name: r.name, state: r.state, address: r.address, facts,
    createdAt: new Date(r.createdAt).toISOString(), lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    decidedAt: r.decidedAt === null ? null : new Date(r.decidedAt).toISOString(), decidedBy: r.decidedBy, reason: r.reason, nodeId: r.nodeId,
  };
}

export function joinRequestRoutes(app: FastifyInstance, deps: JoinRequestRouteDeps): void {
  const { store, clock, authed } = deps;
  const maxPending = deps.maxPending ?? 64;
  const staleMs = deps.staleMs ?? JOIN_REQUEST_STALE_MS;
  /** Sliding one-minute windows, bounded in memory. */
  const windows = { addresses: new Map<string, number[]>(), requests: new Map<string, number[]>() };
  const take = (which: keyof typeof windows, key: string, max: number, what: string): void => {
    const now = clock.now();
    const map = windows[which];
    const list = (map.get(key) ?? []).filter((t) => t > now - 60_000);
    if (list.length >= max) {
      const wait = Math.max(1, Math.ceil((list[0]! + 60_000 - now) / 1000));
      throw new OverLimitError(`too many ${what}: at most ${max} per minute; try again in ${wait} s`, wait, { limit: which === 'addresses' ? 'newJoinRequestsPerMinute' : 'joinRequestPollsPerMinute', max });
    }
    list.push(now);
    if (map.size >= 10_000 && !map.has(key)) map.clear();
    map.set(key, list);
  };

  const find = async (idOrName: string): Promise<JoinRequestRecord> => {
    const all = await store.listJoinRequests();
    const byId = all.find((r) => r.id === idOrName.toUpperCase());
    if (byId) return byId;
    const named = all.filter((r) => r.name === idOrName && r.state === 'pending');
    if (named.length === 1) return named[0]!;
    if (named.length > 1)
      throw new ValidationError([{ path: 'params.id', message: `${named.length} machines named ${idOrName} wait (${named.map((r) => `${r.id} from ${r.address}`).join(', ')}): name one by its id, after checking it against the id the agent shows` }]);
    throw new NotFoundError('join request', `${idOrName} (see \`dsg node pending\`)`);
  };

  // The asking agent (no token). Answers its request as it stands; approved, the credential too.
  app.post(`${API_PREFIX}/join-requests`, {
    bodyLimit: 16 * 1024,
    schema: S({
      summary: 'Ask to join the grid, or poll such a request (no token; the key proves it is the same machine)', tags: ['nodes'], auth: 'none',
      body: JoinRequestV1Schema,
      response: { 200: JoinRequestAnswerV1Schema.meta({ description: 'Approved: the node credential, to the key holder.' }), 202: JoinRequestAnswerV1Schema.meta({ description: 'Waiting for an admin.' }), 403: JoinRequestAnswerV1Schema.meta({ description: 'Rejected.' }) },
      errors: [413],
    }),
  }, async (req, reply) => {
    const body = parseOr400(JoinRequestV1Schema, req.body, 'body');
    const now = clock.now();
    const keyHash = sha256(body.key);
    await store.deleteStaleJoinRequests(now - staleMs);
    let r = await store.findJoinRequestByKey(keyHash);
    // New requests count per address; polls per request (a key is worth nothing to anyone but its holder).
    if (r) take('requests', keyHash, POLLS_PER_REQUEST_PER_MINUTE, `polls of join request ${r.id}`);
    else take('addresses', req.ip, NEW_REQUESTS_PER_ADDRESS_PER_MINUTE, `new join requests from ${req.ip}`);
    if (!r) {
      const pending = (await store.listJoinRequests()).filter((x) => x.state === 'pending').length;
      if (pending >= maxPending)
        throw new OverLimitError(`${pending} machines already wait for approval, the most this grid keeps; ask the grid's admin to approve or reject some (dsg node pending), then try again`, 60, { limit: 'maxPendingJoinRequests', max: maxPending });
      r = {
        id: newRequestId(), keyHash, name: body.name, factsJson: JSON.stringify(body.facts), address: req.ip, createdAt: now, lastSeenAt: now,
        state: 'pending', decidedAt: null, decidedBy: null, reason: null, nodeId: null,
      };
      await store.upsertJoinRequest(r);
      return reply.status(202).send({ request: toJoinRequestV1(r) } satisfies JoinRequestAnswerV1);
    }
    // A poll: refresh what it claims while it waits (not after a decision: the admin decided on what was shown).
    if (r.state === 'pending') {
      r = { ...r, name: body.name, factsJson: JSON.stringify(body.facts), address: req.ip, lastSeenAt: now };
      await store.upsertJoinRequest(r);
      return reply.status(202).send({ request: toJoinRequestV1(r) } satisfies JoinRequestAnswerV1);
    }
    if (r.state === 'rejected') return reply.status(403).send({ request: toJoinRequestV1(r) } satisfies JoinRequestAnswerV1);
    // Approved: a fresh credential for the reserved node id, to the key holder. Asked again (an answer lost on the
    // way), the earlier one is revoked first, so at most one credential of this node works.
    await store.revokeNodeTokens(r.nodeId!, now);
    const credential = await deps.auth.issueNodeCredential(r.nodeId!, r.name, now);
    return reply.status(200).send({ request: toJoinRequestV1(r), credential } satisfies JoinRequestAnswerV1);
  });

  app.get(`${API_PREFIX}/join-requests`, { schema: S({ summary: 'Machines asking to join, and decided requests', tags: ['nodes'], response: { 200: itemsV1Schema(JoinRequestV1ResponseSchema) } }) }, async (req) => {
    await authed(req, 'nodes:read');
    await store.deleteStaleJoinRequests(clock.now() - staleMs);
    return { items: (await store.listJoinRequests()).map(toJoinRequestV1) };
  });

  for (const verb of ['approve', 'reject'] as const) {
    app.post(`${API_PREFIX}/join-requests/:id/${verb}`, {
      schema: S({
        summary: verb === 'approve' ? 'Approve a machine\'s join request (also one rejected before)' : 'Reject a waiting machine\'s join request', tags: ['nodes'],
        params: z.strictObject({ id: z.string().meta({ description: 'The request\'s id (as the agent shows it) or the machine\'s name.' }) }),
        body: DecideJoinRequestV1Schema.optional(), response: { 200: z.strictObject({ request: JoinRequestV1ResponseSchema }) }, errors: [404, 409],
      }),
    }, async (req) => {
      const p = await authed(req, 'nodes:admin');
      const body = parseOr400(DecideJoinRequestV1Schema, req.body ?? {}, 'body');
      const r = await find((req.params as { id: string }).id);
      // Approving also undoes a rejection (the agent, started again, then collects its credential); rejecting
      // applies only to a machine still waiting (a node that joined is shut out with dsg node revoke).
      const from: ReadonlyArray<JoinRequestRecord['state']> = verb === 'approve' ? ['pending', 'rejected'] : ['pending'];
      if (!from.includes(r.state))
        throw new ConflictError(`the request of ${r.name} (${r.id}) was ${r.state} already${r.state === 'approved' && verb === 'reject' ? `; to shut that node out now: dsg node revoke ${r.nodeId ?? r.name}` : ''}`, { request: toJoinRequestV1(r) });
      const now = clock.now();
      const nodeId = verb === 'approve' ? newNodeId(now) : null;
      const ok = await store.decideJoinRequest(r.id, { state: verb === 'approve' ? 'approved' : 'rejected', at: now, by: p.name, reason: body.reason ?? null, nodeId }, from);
      if (!ok) throw new ConflictError(`the request of ${r.name} (${r.id}) was decided meanwhile`);
      await deps.audit(req, verb === 'approve' ? 'node.approved' : 'node.rejected', nodeId ?? r.id, {
        name: r.name, request: r.id, address: r.address, ...(r.state === 'rejected' ? { previously: 'rejected' } : {}), ...(body.reason ? { reason: body.reason } : {}),
      });
      const after = (await store.listJoinRequests()).find((x) => x.id === r.id)!;
      return { request: toJoinRequestV1(after) };
    });
  }
}

