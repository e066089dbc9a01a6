/**
 * Dashboard sessions. `POST /api/v1/session` with `{ token }` signs in: the answer sets an httpOnly,
 * SameSite=Strict cookie (Secure when the request came over TLS) holding a random session id; the store keeps its
 * sha256, bound to the token. `GET` says who the request speaks for; `DELETE` signs out. Revoking the token ends its
 * sessions; a session also ends when it expires (12 h by default, never after its token's expiry).
 *
 * Cookie-authenticated requests that change state must carry `X-DSG-CSRF: 1` (auth.ts); signing in itself needs the
 * token in the body, which a cross-site page does not have.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_PREFIX, CreateSessionRequestV1Schema, UnauthorizedError, type SessionV1 } from '@dsg/core';
import { SessionV1Schema } from '@dsg/core/wire-schemas';
import { SESSION_COOKIE, type Authenticator, type Principal } from '../../auth.js';
import type { Clock } from '../../clock.js';
import { parseOr400 } from '../parse.js';
import { noBody, routeSchema as S } from '../openapi.js';
import type { Audit, Authed } from './authed.js';

export interface SessionRouteDeps {
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly authed: Authed;
  readonly audit: Audit;
  /** Count a failed sign-in against the client's IP (throws 429 when over the limit). */
  readonly onFailedAuth: (ip: string) => void;
}

const toSessionV1 = (p: Principal, expiresAt: number | null): SessionV1 => ({
  tokenId: p.tokenId, name: p.name, role: p.role, projects: p.projects ? [...p.projects] : null, via: p.via,
  expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
});

function setCookie(req: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  void reply.header('set-cookie', `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`);
}

export function sessionRoutes(app: FastifyInstance, deps: SessionRouteDeps): void {
  const { auth, clock } = deps;

  app.post(`${API_PREFIX}/session`, {
    schema: S({ summary: 'Sign in with a token: sets the dashboard\'s session cookie', tags: ['session'], auth: 'none', body: CreateSessionRequestV1Schema, response: { 201: SessionV1Schema }, errors: [401, 403] }),
  }, async (req, reply) => {
    const body = parseOr400(CreateSessionRequestV1Schema, req.body, 'body');
    let s: Awaited<ReturnType<Authenticator['startSession']>>;
    try {
      s = await auth.startSession(body.token);
    } catch (e) {
      if (e instanceof UnauthorizedError) deps.onFailedAuth(req.ip);
      throw e;
    }
    await deps.audit(req, 'session.signed-in', s.principal.tokenId, { role: s.principal.role }, s.principal);
    setCookie(req, reply, s.sessionId, Math.max(1, Math.floor((s.expiresAt - clock.now()) / 1000)));
    void reply.header('cache-control', 'no-store');
    return reply.status(201).send(toSessionV1(s.principal, s.expiresAt));
  });

  app.get(`${API_PREFIX}/session`, { schema: S({ summary: 'Who this request speaks for', tags: ['session'], response: { 200: SessionV1Schema } }) }, async (req, reply) => {
    const p = await deps.authed(req, 'session');
    void reply.header('cache-control', 'no-store');
    return toSessionV1(p, null);
  });

  app.delete(`${API_PREFIX}/session`, { schema: S({ summary: 'Sign out (ends the session the cookie holds)', tags: ['session'], response: { 204: noBody('Signed out; the cookie is cleared.') } }) }, async (req, reply) => {
    await deps.authed(req, 'session');
    await auth.endSession(req.headers.cookie);
    setCookie(req, reply, '', 0);
    return reply.status(204).send();
  });
}
