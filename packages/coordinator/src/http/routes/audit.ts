/**
 * Audit routes (admin and reader): the log, newest first, and a verification of its hash chain.
 *   GET /api/v1/audit?limit&before&action&actor&since
 *   GET /api/v1/audit/verify[?head=SEQ:HASH]
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, ListAuditQueryV1Schema, VerifyAuditQueryV1Schema, type AuditEntry, type AuditEntryV1, type AuditPageV1, type AuditVerifyV1 } from '@dsg/core';
import { AuditPageV1Schema, AuditVerifyV1Schema } from '@dsg/core/wire-schemas';
import type { AuditLog } from '../../service/audit-log.js';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import type { Authed } from './authed.js';

export interface AuditRouteDeps {
  readonly auditLog: AuditLog;
  readonly authed: Authed;
}

export const toAuditEntryV1 = (e: AuditEntry): AuditEntryV1 => ({
  seq: e.seq, at: new Date(e.at).toISOString(), actor: { ...e.actor }, action: e.action, target: e.target, detail: { ...e.detail }, origin: e.origin, prevHash: e.prevHash, hash: e.hash,
});

export function auditRoutes(app: FastifyInstance, deps: AuditRouteDeps): void {
  app.get(`${API_PREFIX}/audit`, { schema: S({ summary: 'The audit log, newest first', tags: ['audit'], querystring: ListAuditQueryV1Schema, response: { 200: AuditPageV1Schema } }) }, async (req) => {
    await deps.authed(req, 'audit:read');
    const q = parseOr400(ListAuditQueryV1Schema, req.query, 'query');
    const limit = q.limit ?? 100;
    const since = q.since === undefined ? undefined : typeof q.since === 'number' ? q.since : Date.parse(q.since);
    const items = await deps.auditLog.list({
      limit, ...(q.before !== undefined ? { beforeSeq: q.before } : {}), ...(q.action ? { action: q.action } : {}),
      ...(q.actor ? { actorName: q.actor } : {}), ...(since !== undefined ? { since } : {}),
    });
    const page: AuditPageV1 = { items: items.map(toAuditEntryV1), nextBefore: items.length === limit ? items[items.length - 1]!.seq : null };
    return page;
  });

  app.get(`${API_PREFIX}/audit/verify`, { schema: S({ summary: 'Verify the audit log\'s hash chain (and a head kept elsewhere)', tags: ['audit'], querystring: VerifyAuditQueryV1Schema, response: { 200: AuditVerifyV1Schema } }) }, async (req) => {
    await deps.authed(req, 'audit:read');
    const q = parseOr400(VerifyAuditQueryV1Schema, req.query, 'query');
    const expected = q.head ? { seq: Number(q.head.split(':')[0]), hash: q.head.split(':')[1]! } : undefined;
    const v = await deps.auditLog.verify(expected);
    const body: AuditVerifyV1 = {
      ok: v.ok, entries: v.entries, head: v.head, problems: [...v.problems], anchor: v.anchor,
      ...(v.expectedHead ? { expectedHeadFound: v.expectedHead.found } : {}),
    };
    return body;
  });
}
