/**
 * Tokens and principals. A token is `dsg_<role>_<random>`; only its sha256 is stored. Roles today: `admin`
 * (everything) and `node` (join as an agent, fetch input blobs, upload outputs). The role model will grow
 * (submitters, viewers, per-project tokens); routes ask for a capability through `requireRole`, so adding roles
 * changes this file, not the routes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ForbiddenError, newTokenId, UnauthorizedError, type TokenId } from '@dsg/core';
import type { Store, TokenRecord, TokenRole } from '@dsg/store';

export interface Principal {
  readonly tokenId: TokenId;
  readonly role: TokenRole;
  readonly name: string;
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
    const rec = await this.store.findTokenByHash(hash);
    if (!rec) throw new UnauthorizedError('invalid token');
    const p: Principal = { tokenId: rec.id, role: rec.role, name: rec.name };
    this.cache.set(hash, p);
    return p;
  }
}

/** Capabilities per role. */
const CAN: Record<TokenRole, ReadonlySet<string>> = {
  admin: new Set(['jobs:read', 'jobs:write', 'nodes:read', 'nodes:write', 'agent', 'blobs:read', 'blobs:write', 'outputs:write']),
  node: new Set(['agent', 'blobs:read', 'outputs:write']),
};
export type Capability = 'jobs:read' | 'jobs:write' | 'nodes:read' | 'nodes:write' | 'agent' | 'blobs:read' | 'blobs:write' | 'outputs:write';

export function requireCapability(p: Principal, cap: Capability): void {
  if (!CAN[p.role].has(cap)) throw new ForbiddenError(`a ${p.role} token cannot do this (needs ${cap})`);
}
