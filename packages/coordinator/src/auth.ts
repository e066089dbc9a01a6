/**
 * Tokens and principals. A token is `dsg_<role>_<random>`; only its sha256 is stored. Roles today: `admin`
 * (everything) and `node`. A `node` token is one of two kinds:
 *  - the **join token** (no node id): it can only open the agent WebSocket and register a *new* node;
 *  - a **node credential** (`dsg_cred_…`, bound to one node id, issued in the `welcome` of that node's first
 *    contact): it can reconnect as that node, fetch input blobs and upload outputs — for that node's attempts only.
 * The role model will grow (submitters, viewers, per-project tokens); routes ask for a capability through
 * `requireCapability`, so adding roles changes this file, not the routes.
 *
 * Revocation takes effect at once: `revokeNode` revokes in the store and drops the cached principals.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ForbiddenError, newTokenId, UnauthorizedError, type NodeId, type TokenId } from '@dsg/core';
import type { Store, TokenRecord, TokenRole } from '@dsg/store';

export interface Principal {
  readonly tokenId: TokenId;
  readonly role: TokenRole;
  readonly name: string;
  /** The node a node credential speaks for; null for admin and join tokens. */
  readonly nodeId: NodeId | null;
}

export const hashToken = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function mintToken(role: TokenRole): string {
  return `dsg_${role}_${randomBytes(24).toString('base64url')}`;
}

export async function createToken(store: Store, role: TokenRole, name: string, now: number): Promise<{ secret: string; record: TokenRecord }> {
  const secret = mintToken(role);
  const record: TokenRecord = { id: newTokenId(now), hash: hashToken(secret), role, name, createdAt: now, revokedAt: null };
  await store.createToken(record);
  return { secret, record };
}

export class Authenticator {
  /** hash → principal; tokens are looked up once per process (revocation will invalidate this cache). */
  private readonly cache = new Map<string, Principal>();
  constructor(private readonly store: Store) {}

  async authenticate(header: string | undefined): Promise<Principal> {
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new UnauthorizedError('missing token: send "Authorization: Bearer <token>" (see credentials.json in the data dir)');
    const hash = hashToken(m[1]!);
    const hit = this.cache.get(hash);
    if (hit) return hit;
    const rec = await this.store.findTokenByHash(hash, { includeRevoked: true });
    if (!rec) throw new UnauthorizedError('invalid token');
    if (rec.revokedAt !== null)
      throw new UnauthorizedError(rec.nodeId
        ? `this node's credential was revoked (dsg node revoke); to join again as a new node, delete node.json in the agent's state dir and restart it with the join token`
        : 'this token was revoked');
    const p: Principal = { tokenId: rec.id, role: rec.role, name: rec.name, nodeId: rec.nodeId ?? null };
    this.cache.set(hash, p);
    return p;
  }

  /** Mint a node's own credential (stored hashed) and return its secret, shown to the agent once. */
  async issueNodeCredential(nodeId: NodeId, nodeName: string, now: number): Promise<string> {
    const secret = `dsg_cred_${randomBytes(32).toString('base64url')}`;
    await this.store.createToken({ id: newTokenId(now), hash: hashToken(secret), role: 'node', name: `credential of node ${nodeName}`, createdAt: now, revokedAt: null, nodeId });
    return secret;
  }

  /** Revoke every credential of a node, effective for the next request (nothing cached outlives it). */
  async revokeNode(nodeId: NodeId, now: number): Promise<number> {
    const n = await this.store.revokeNodeTokens(nodeId, now);
    for (const [hash, p] of this.cache) if (p.nodeId === nodeId) this.cache.delete(hash);
    return n;
  }
}

/** Capabilities per role; a node credential (a `node` token bound to a node) has more than the join token. */
const CAN: Record<TokenRole, ReadonlySet<string>> = {
  admin: new Set(['jobs:read', 'jobs:write', 'nodes:read', 'nodes:write', 'nodes:admin', 'agent', 'blobs:read', 'blobs:write', 'outputs:write']),
  node: new Set(['agent']),
};
const NODE_CREDENTIAL: ReadonlySet<string> = new Set(['agent', 'blobs:read', 'outputs:write']);
export type Capability = 'jobs:read' | 'jobs:write' | 'nodes:read' | 'nodes:write' | 'nodes:admin' | 'agent' | 'blobs:read' | 'blobs:write' | 'outputs:write';

export function requireCapability(p: Principal, cap: Capability): void {
  const can = p.role === 'node' && p.nodeId ? NODE_CREDENTIAL : CAN[p.role];
  if (can.has(cap)) return;
  if (p.role === 'node' && !p.nodeId && NODE_CREDENTIAL.has(cap))
    throw new ForbiddenError(`the join token can only register a new node; ${cap} needs the node's own credential (the agent receives it when it joins)`);
  throw new ForbiddenError(`a ${p.role} token cannot do this (needs ${cap})`);
}
