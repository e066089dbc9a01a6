/**
 * Tokens, sessions and principals: who a request speaks for, and what it may do. The one place where roles become
 * capabilities (`requireCapability`) and where a submitter's projects are checked (`requireProject`, `seesProject`);
 * routes ask, they never look at roles themselves.
 *
 * A token is `dsg_<role>_<random>`; only its sha256 is stored. Roles:
 *  - `admin`: everything, including tokens and node operations. Work it submits is the **operator's** (see
 *    `isOperatorOwned`).
 *  - `submitter`: scoped to one or more projects. Submits, reads, cancels and retries the jobs and workflows of its
 *    projects only; lists show only them; another project's job reads as **404 not found** (never 403: whether a
 *    job id exists in another project is not revealed). Submitting into another project is a 403 naming the project.
 *    It may also read nodes and health (to see what the grid can run) and upload inputs.
 *  - `reader`: reads everything an admin can read; changes nothing.
 *  - `node`: the **join token** (no node id) can only open the agent WebSocket and register a new node; a **node
 *    credential** (`dsg_cred_…`, bound to one node id) can reconnect as that node, fetch its inputs and upload its
 *    outputs — for that node's attempts only.
 *
 * No cache of tokens or sessions: every request reads the token (and the session) by its hash from the store — one
 * indexed lookup — so a revocation or an expiry takes effect on the very next request.
 *
 * Dashboard sessions: `POST /api/v1/session` with a token gives an httpOnly, SameSite=Strict cookie holding a
 * random session id (stored hashed, bound to the token, expiring). A cookie-authenticated request that changes
 * state must also carry `X-DSG-CSRF: 1`: a cross-site form cannot set a custom header, and a cross-site `fetch`
 * with one needs a CORS preflight this server never grants. Bearer requests need no such header (a browser never
 * adds an Authorization header on its own).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ForbiddenError, newTokenId, UnauthorizedError, type NodeId, type TokenId } from '@dsg/core';
import type { Owner, SessionRecord, Store, TokenRecord, TokenRole } from '@dsg/store';

export interface Principal {
  readonly tokenId: TokenId;
  readonly role: TokenRole;
  readonly name: string;
  /** The node a node credential speaks for; null for every other token. */
  readonly nodeId: NodeId | null;
  /** A submitter's projects; null for roles not scoped to projects. */
  readonly projects: readonly string[] | null;
  /** How the request proved it: a bearer token, or a dashboard session cookie. */
  readonly via: 'bearer' | 'session';
}

/** The name of the dashboard's session cookie. */
export const SESSION_COOKIE = 'dsg_session';
/** The header a cookie-authenticated request that changes state must carry (with the value `1`). */
export const CSRF_HEADER = 'x-dsg-csrf';
/** Default session lifetime: 12 hours (a working day), never longer than the token's own expiry. */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000;
/** `last used` is written at most this often per token, so reads stay reads. */
const TOUCH_EVERY_MS = 60_000;

export const hashToken = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function mintToken(role: TokenRole): string {
  return `dsg_${role}_${randomBytes(24).toString('base64url')}`;
}

export interface NewTokenOptions {
  readonly projects?: readonly string[] | null;
  readonly expiresAt?: number | null;
}

export async function createToken(store: Store, role: TokenRole, name: string, now: number, opts: NewTokenOptions = {}): Promise<{ secret: string; record: TokenRecord }> {
  const secret = mintToken(role);
  const record: TokenRecord = {
    id: newTokenId(now), hash: hashToken(secret), role, name, createdAt: now, revokedAt: null,
    projects: opts.projects ?? null, expiresAt: opts.expiresAt ?? null, lastUsedAt: null,
  };
  await store.createToken(record);
  return { secret, record };
}

/** What a request carries that can prove who it is. */
export interface Credentials {
  readonly authorization?: string | undefined;
  readonly cookie?: string | undefined;
  readonly method: string;
  /** The `X-DSG-CSRF` header. */
  readonly csrf?: string | undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class Authenticator {
  private readonly touched = new Map<TokenId, number>();
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
    /** Session lifetime in ms (default 12 h). */
    readonly sessionTtlMs: number = DEFAULT_SESSION_TTL_MS,
  ) {}

  /** A bearer token (`Authorization: Bearer …`): the agent channel and API clients. */
  async authenticate(header: string | undefined): Promise<Principal> {
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new UnauthorizedError('missing token: send "Authorization: Bearer <token>" (see credentials.json in the data dir, or ask the grid\'s admin for a token: dsg token create)');
    return this.principalOf(await this.liveToken(hashToken(m[1]!)), 'bearer');
  }

  /** A bearer token if there is one, else the session cookie (which must come with X-DSG-CSRF on changes). */
  async authenticateRequest(c: Credentials): Promise<Principal> {
    if (c.authorization !== undefined) return this.authenticate(c.authorization);
    const sid = readCookie(c.cookie, SESSION_COOKIE);
    if (sid === null) return this.authenticate(undefined);
    const session = await this.store.findSession(hashToken(sid));
    if (!session || session.expiresAt <= this.now()) throw new UnauthorizedError('your session has ended (signed out, expired, or its token was revoked): sign in again');
    const rec = await this.store.getToken(session.tokenId);
    if (!rec) throw new UnauthorizedError('your session has ended: sign in again');
    this.check(rec);
    if (!SAFE_METHODS.has(c.method.toUpperCase()) && c.csrf !== '1')
      throw new ForbiddenError(`a request signed in with the session cookie that changes something must carry the header "X-DSG-CSRF: 1" (protection against cross-site requests)`);
    return this.principalOf(rec, 'session');
  }

  /** Start a dashboard session for a token; returns the session id (the cookie's value, shown once) and its expiry. */
  async startSession(token: string): Promise<{ sessionId: string; expiresAt: number; principal: Principal }> {
    const p = await this.authenticate(`Bearer ${token}`);
    if (p.role === 'node') throw new ForbiddenError('a node token cannot sign in to the dashboard; use an admin, submitter or reader token');
    const rec = await this.store.getToken(p.tokenId);
    const now = this.now();
    const expiresAt = Math.min(now + this.sessionTtlMs, rec?.expiresAt ?? Infinity);
    const sessionId = randomBytes(32).toString('base64url');
    const s: SessionRecord = { hash: hashToken(sessionId), tokenId: p.tokenId, createdAt: now, expiresAt };
    await this.store.createSession(s);
    // Expired sessions are swept as new ones start: the table stays the size of the live ones.
    await this.store.deleteExpiredSessions(now);
    return { sessionId, expiresAt, principal: { ...p, via: 'session' } };
  }

  async endSession(cookieHeader: string | undefined): Promise<void> {
    const sid = readCookie(cookieHeader, SESSION_COOKIE);
    if (sid !== null) await this.store.deleteSession(hashToken(sid));
  }

  /** Revoke a token and end its sessions, effective for the next request. */
  async revokeToken(id: TokenId): Promise<boolean> {
    return this.store.revokeToken(id, this.now());
  }

  /** Mint a node's own credential (stored hashed) and return its secret, shown to the agent once. */
  async issueNodeCredential(nodeId: NodeId, nodeName: string, now: number): Promise<string> {
    const secret = `dsg_cred_${randomBytes(32).toString('base64url')}`;
    await this.store.createToken({ id: newTokenId(now), hash: hashToken(secret), role: 'node', name: `credential of node ${nodeName}`, createdAt: now, revokedAt: null, nodeId });
    return secret;
  }

  /** Revoke every credential of a node, effective for the next request (nothing cached outlives it). */
  async revokeNode(nodeId: NodeId, now: number): Promise<number> {
    return this.store.revokeNodeTokens(nodeId, now);
  }

  private async liveToken(hash: string): Promise<TokenRecord> {
    const rec = await this.store.findTokenByHash(hash, { includeRevoked: true });
    if (!rec) throw new UnauthorizedError('invalid token');
    this.check(rec);
    return rec;
  }

  private check(rec: TokenRecord): void {
    if (rec.revokedAt !== null)
      throw new UnauthorizedError(rec.nodeId
        ? `this node's credential was revoked (dsg node revoke); to join again as a new node, delete node.json in the agent's state dir and restart it with the join token`
        : rec.maxUses != null ? 'this join code was revoked; ask the grid\'s admin for a new one (dsg join-code create)' : 'this token was revoked; ask the grid\'s admin for a new one');
    if (rec.expiresAt != null && rec.expiresAt <= this.now())
      throw new UnauthorizedError(`this ${rec.maxUses != null ? 'join code' : 'token'} expired at ${new Date(rec.expiresAt).toISOString()}; ask the grid's admin for a new one`);
    if (rec.maxUses != null && (rec.uses ?? 0) >= rec.maxUses)
      throw new UnauthorizedError(`this join code is used up: it has admitted ${rec.maxUses} machine${rec.maxUses === 1 ? '' : 's'}, all it may; ask the grid's admin for a new one (dsg join-code create --uses N)`);
  }

  private principalOf(rec: TokenRecord, via: Principal['via']): Principal {
    const now = this.now();
    if (now - (this.touched.get(rec.id) ?? 0) >= TOUCH_EVERY_MS) {
      this.touched.set(rec.id, now);
      if (this.touched.size > 10_000) this.touched.clear();
      void this.store.touchToken(rec.id, now).catch(() => undefined);
    }
    return { tokenId: rec.id, role: rec.role, name: rec.name, nodeId: rec.nodeId ?? null, projects: rec.role === 'submitter' ? (rec.projects ?? []) : null, via };
  }
}

/** One cookie's value from a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return v.length > 0 && /^[A-Za-z0-9_-]+$/.test(v) ? v : null;
    }
  }
  return null;
}

export type Capability =
  | 'jobs:read' | 'jobs:write'
  | 'nodes:read' | 'nodes:write' | 'nodes:admin'
  | 'grid:read' | 'tokens:admin' | 'session' | 'audit:read'
  | 'agent' | 'blobs:check' | 'blobs:read' | 'blobs:write' | 'outputs:write';

/** Capabilities per role; a node credential (a `node` token bound to a node) has more than the join token. */
const CAN: Record<TokenRole, ReadonlySet<Capability>> = {
  admin: new Set<Capability>(['jobs:read', 'jobs:write', 'nodes:read', 'nodes:write', 'nodes:admin', 'grid:read', 'tokens:admin', 'session', 'audit:read', 'agent', 'blobs:check', 'blobs:read', 'blobs:write', 'outputs:write']),
  submitter: new Set<Capability>(['jobs:read', 'jobs:write', 'nodes:read', 'session', 'blobs:check', 'blobs:write']),
  reader: new Set<Capability>(['jobs:read', 'nodes:read', 'grid:read', 'session', 'audit:read', 'blobs:check', 'blobs:read']),
  node: new Set<Capability>(['agent']),
};
const NODE_CREDENTIAL: ReadonlySet<Capability> = new Set<Capability>(['agent', 'blobs:check', 'blobs:read', 'outputs:write']);

export function requireCapability(p: Principal, cap: Capability): void {
  const can = p.role === 'node' && p.nodeId ? NODE_CREDENTIAL : CAN[p.role];
  if (can.has(cap)) return;
  if (p.role === 'node' && !p.nodeId && NODE_CREDENTIAL.has(cap))
    throw new ForbiddenError(`the join token can only register a new node; ${cap} needs the node's own credential (the agent receives it when it joins)`);
  if (p.role === 'reader') throw new ForbiddenError(`a reader token can read but not change anything (this needs ${cap})`);
  throw new ForbiddenError(`a ${p.role} token cannot do this (needs ${cap})`);
}

/** Whether the principal may see work of this project (submitters: only their projects). */
export const seesProject = (p: Principal, project: string): boolean => p.projects === null || p.projects.includes(project);

/** Projects to filter lists by: undefined (all) unless the principal is scoped. */
export const projectFilter = (p: Principal): readonly string[] | undefined => p.projects ?? undefined;

/** Refuse submitting work into a project the principal is not scoped to (403 naming the project). */
export function requireProject(p: Principal, project: string): void {
  if (seesProject(p, project)) return;
  throw new ForbiddenError(`token "${p.name}" may submit only to project${p.projects!.length === 1 ? '' : 's'} ${p.projects!.map((x) => `"${x}"`).join(', ')}, not to "${project}" (set project: in the spec)`);
}

/** Who submitted something, as recorded on the job or workflow. */
export const ownerOf = (p: Principal): Owner => ({ tokenId: p.tokenId, name: p.name, role: p.role });

/**
 * An **operator's job**: submitted with an admin token (or before owners were recorded, when only the admin token
 * could submit). Nodes without isolation run only these unless their operator opts in.
 */
export const isOperatorOwned = (owner: Owner | null): boolean => owner === null || owner.role === 'admin';
