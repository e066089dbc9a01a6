/**
 * Joining by approval: pending nodes.
 *
 *   agent (no token)                         coordinator                              admin
 *   POST /join-requests {key, name, facts} ─▶ pending (202, id = f(sha256(key)))
 *   … polls every few seconds (202) …                                      ◀── GET /nodes?state=pending
 *                                            approved, node id reserved    ◀── POST /nodes/:id/approve
 *   POST /join-requests (same key)        ─▶ 200 {credential}  (the key holder only)
 *   WebSocket with that credential        ─▶ an ordinary node from here on
 *                                            rejected (403 + reason)       ◀── POST /nodes/:id/reject {reason}
 *
 * Why polling over HTTP and not a held WebSocket: a pending machine must reach nothing but this one route (the
 * agent socket would have to be opened to unauthenticated peers and then kept from everything else), every poll
 * is a short stateless request that survives coordinator restarts with no reconnect logic, and the cost is one
 * indexed lookup every few seconds per waiting machine. Approval reaches the agent within one poll interval.
 *
 * Nothing but this exchange is open to a pending machine: no tasks, no tokens, no other node's data. What it says
 * about itself is shown as claimed. Limits (it is the one write open to anyone who can connect): the body is at
 * most 16 KiB and every field bounded by the schema; at most `NEW_PER_ADDRESS_PER_MINUTE` new requests per address
 * per minute and `POLLS_PER_KEY_PER_MINUTE` polls per key; at most `max` pending at once (a machine beyond that is
 * told to ask later); pending requests not polled for `ttlMs` are forgotten. Decided requests are kept (a rejected
 * machine must stay out when it asks again with the same key).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  API_PREFIX,
  ConflictError,
  DecideNodeRequestV1Schema,
  JoinRequestV1Schema,
  newNodeId,
  NotFoundError,
  OverLimitError,
  pendingNodeIdOf,
  ValidationError,
  type ClaimedFactsV1,
  type JoinRequestAnswerV1,
  type PendingNodeV1,
} from '@dsg/core';
import type { JoinRequestRecord, Store } from '@dsg/store';
import type { Authenticator } from '../../auth.js';
import type { Clock } from '../../clock.js';
import { parseOr400 } from '../parse.js';
import type { Audit, Authed } from './authed.js';

export interface JoinRequestRouteDeps {
  readonly store: Store;
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly authed: Authed;
  readonly audit: Audit;
  /** Most pending nodes kept at once. Default 64. */
  readonly max?: number;
  /** A pending node not polled for this long is forgotten (its agent stopped asking), in ms. Default 24 h. */
  readonly ttlMs?: number;
}

/** New join requests one address may make per minute (a classroom behind one NAT address: raise `max`, not this). */
export const NEW_PER_ADDRESS_PER_MINUTE = 10;
/** Polls one waiting agent may make per minute (it polls every `POLL_AFTER_SECONDS`). */
export const POLLS_PER_KEY_PER_MINUTE = 30;
/** What the coordinator tells a waiting agent: poll again after this many seconds. */
export const POLL_AFTER_SECONDS = 3;
export const DEFAULT_MAX_PENDING_NODES = 64;
export const DEFAULT_PENDING_NODE_TTL_MS = 24 * 3600_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export function toPendingNodeV1(r: JoinRequestRecord): PendingNodeV1 {
  let claimedFacts: ClaimedFactsV1;
  try {
    claimedFacts = JSON.parse(r.factsJson) as ClaimedFactsV1;
  } catch {
    claimedFacts = { hostname: '?', os: '?', arch: '?', cpuModel: '?', cores: 0, memoryBytes: 0, gpus: [] };
  }
  const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
  return {
    id: r.id, name: r.name, state: r.state, address: r.address, claimedFacts,
    createdAt: iso(r.createdAt)!, lastSeenAt: iso(r.lastSeenAt)!, decidedAt: iso(r.decidedAt), decidedBy: r.decidedBy, reason: r.reason, nodeId: r.nodeId,
  };
}

/** Sliding one-minute windows per key, bounded in memory. */
class PerMinute {
  private readonly hits = new Map<string, number[]>();
  constructor(private readonly max: number, private readonly what: string) {}
  take(key: string, now: number, shown: string): void {
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - 60_000);
    if (list.length >= this.max) {
      const wait = Math.max(1, Math.ceil((list[0]! + 60_000 - now) / 1000));
      throw new OverLimitError(`too many ${this.what} from ${shown}: at most ${this.max} a minute; try again in ${wait} s`, wait, { limit: this.what, max: this.max });
    }
    list.push(now);
    if (this.hits.size >= 10_000 && !this.hits.has(key)) this.hits.clear();
    this.hits.set(key, list);
  }
}

export interface PendingNodes {
  /** Pending nodes, oldest first (stale ones forgotten first). */
  list(): Promise<PendingNodeV1[]>;
}

export function joinRequestRoutes(app: FastifyInstance, deps: JoinRequestRouteDeps): PendingNodes {
  const { store, clock, authed } = deps;
  const max = deps.max ?? DEFAULT_MAX_PENDING_NODES;
  const ttlMs = deps.ttlMs ?? DEFAULT_PENDING_NODE_TTL_MS;
  const newPerAddress = new PerMinute(NEW_PER_ADDRESS_PER_MINUTE, 'new join requests');
  const pollsPerKey = new PerMinute(POLLS_PER_KEY_PER_MINUTE, 'join request polls');

  /** The request named by its id (as the agent shows it, any case) or, if only one pending machine has it, by name. */
  const find = async (idOrName: string, states: ReadonlyArray<JoinRequestRecord['state']>): Promise<JoinRequestRecord> => {
    const all = await store.listJoinRequests();
    const id = idOrName.trim().toUpperCase();
    const byId = all.find((r) => r.id === id);
    if (byId) return byId;
    const named = all.filter((r) => r.name === idOrName && states.includes(r.state));
    if (named.length === 1) return named[0]!;
    if (named.length > 1)
      throw new ValidationError([{ path: 'params.id', message: `${named.length} machines named ${idOrName} wait (${named.map((r) => `${r.id} from ${r.address}`).join(', ')}): approve one by its id, after checking it against the id its agent prints` }]);
    throw new NotFoundError('pending node', `${idOrName} (see \`dsg node list --pending\`; a pending node not heard from for ${Math.round(ttlMs / 3600_000)} h is forgotten)`);
  };

  // The asking agent (no token). Answers its request as it stands; once approved, its credential too.
  app.post(`${API_PREFIX}/join-requests`, { bodyLimit: 16 * 1024 }, async (req, reply) => {
    const body = parseOr400(JoinRequestV1Schema, req.body, 'body');
    const now = clock.now();
    const keyHash = sha256(body.key);
    let r = await store.findJoinRequestByKey(keyHash);
    if (!r) {
      newPerAddress.take(req.ip, now, req.ip);
      await store.deleteStaleJoinRequests(now - ttlMs);
      const pending = (await store.listJoinRequests('pending')).length;
      if (pending >= max)
        throw new OverLimitError(`${pending} machines already wait for approval, the most this grid keeps; ask the grid's admin to approve or reject some (dsg node list --pending), then start this agent again`, 60, { limit: 'maxPendingNodes', max });
      r = {
        id: pendingNodeIdOf(keyHash), keyHash, name: body.name, factsJson: JSON.stringify(body.facts), address: req.ip, createdAt: now, lastSeenAt: now,
        state: 'pending', decidedAt: null, decidedBy: null, reason: null, nodeId: null,
      };
      // Ids are unique: a clash (2^-40 by chance) is refused, and the agent makes a new key.
      if (!(await store.createJoinRequest(r)))
        throw new ConflictError(`another machine's request has the id ${r.id} already; make a new key (the agent does so by itself) and ask again`, { limit: 'pendingNodeId' });
      return reply.status(202).send({ request: toPendingNodeV1(r), pollAfterSeconds: POLL_AFTER_SECONDS } satisfies JoinRequestAnswerV1);
    }
    pollsPerKey.take(keyHash, now, `the machine ${r.id}`);
    if (r.state === 'pending') {
      // A poll: refresh what it claims while it waits.
      await store.touchJoinRequest(r.id, { name: body.name, factsJson: JSON.stringify(body.facts), address: req.ip, at: now });
      r = { ...r, name: body.name, factsJson: JSON.stringify(body.facts), address: req.ip, lastSeenAt: now };
      return reply.status(202).send({ request: toPendingNodeV1(r), pollAfterSeconds: POLL_AFTER_SECONDS } satisfies JoinRequestAnswerV1);
    }
    if (r.state === 'rejected') {
      const said = r.reason ? `: "${r.reason}"` : '';
      return reply.status(403).send({
        error: { code: 'join_rejected', message: `the grid's admin (${r.decidedBy ?? '?'}) rejected this machine (${r.id})${said}. Ask them; only they can undo it (dsg node approve ${r.id})`, details: { request: toPendingNodeV1(r) } },
      });
    }
    // Approved: a fresh credential for the reserved node id, to the key holder. Asked again (an answer lost on the
    // way), the earlier one is revoked first, so at most one credential of this node works.
    await store.revokeNodeTokens(r.nodeId!, now);
    const credential = await deps.auth.issueNodeCredential(r.nodeId!, r.name, now);
    return reply.status(200).send({ request: toPendingNodeV1(r), credential } satisfies JoinRequestAnswerV1);
  });

  for (const verb of ['approve', 'reject'] as const) {
    app.post(`${API_PREFIX}/nodes/:id/${verb}`, async (req) => {
      const p = await authed(req, 'nodes:admin');
      const body = parseOr400(DecideNodeRequestV1Schema, req.body ?? {}, 'body');
      // Approve also undoes a rejection; reject applies only to a machine still waiting (revoke a node that joined).
      const from: ReadonlyArray<JoinRequestRecord['state']> = verb === 'approve' ? ['pending', 'rejected'] : ['pending'];
      const r = await find((req.params as { id: string }).id, from);
      if (!from.includes(r.state))
        throw new ConflictError(
          r.state === 'approved'
            ? `${r.name} (${r.id}) was approved already${r.nodeId ? ` as node ${r.nodeId}` : ''}${verb === 'reject' ? `; to shut it out now, dsg node revoke ${r.nodeId ?? r.name}` : ''}`
            : `${r.name} (${r.id}) was ${r.state} already`,
          { request: toPendingNodeV1(r) },
        );
      const now = clock.now();
      const nodeId = verb === 'approve' ? newNodeId(now) : null;
      const ok = await store.decideJoinRequest(r.id, from, { state: verb === 'approve' ? 'approved' : 'rejected', at: now, by: p.name, reason: body.reason ?? null, nodeId });
      if (!ok) throw new ConflictError(`${r.name} (${r.id}) was decided meanwhile; see dsg node list --pending`);
      await deps.audit(req, verb === 'approve' ? 'node.approved' : 'node.rejected', nodeId ?? r.id, {
        name: r.name, request: r.id, address: r.address, ...(r.state === 'rejected' ? { previously: 'rejected' } : {}), ...(body.reason ? { reason: body.reason } : {}),
      });
      const after = (await store.listJoinRequests()).find((x) => x.id === r.id)!;
      return { request: toPendingNodeV1(after) };
    });
  }

  return {
    list: async () => {
      await store.deleteStaleJoinRequests(clock.now() - ttlMs);
      return (await store.listJoinRequests('pending')).map(toPendingNodeV1);
    },
  };
}
