/**
 * The contribution ledger (admin and reader): sums of finished attempts per node, project or user.
 *   GET /api/v1/ledger?by=node|project|user&since&until&node&project&user
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, LedgerQueryV1Schema, toLedgerV1, type LedgerV1 } from '@dsg/core';
import { LedgerV1Schema } from '@dsg/core/wire-schemas';
import type { Store } from '@dsg/store';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import type { Authed } from './authed.js';

export interface LedgerRouteDeps {
  readonly store: Store;
  readonly authed: Authed;
}

const epochOf = (v: string | number | undefined): number | undefined => (v === undefined ? undefined : typeof v === 'number' ? v : Date.parse(v));

export function ledgerRoutes(app: FastifyInstance, deps: LedgerRouteDeps): void {
  app.get(`${API_PREFIX}/ledger`, { schema: S({ summary: 'What finished attempts used, per node, project or user', tags: ['grid'], querystring: LedgerQueryV1Schema, response: { 200: LedgerV1Schema } }) }, async (req) => {
    await deps.authed(req, 'grid:read');
    const q = parseOr400(LedgerQueryV1Schema, req.query, 'query');
    const by = q.by ?? 'node';
    const since = epochOf(q.since);
    const until = epochOf(q.until);
    const rows = await deps.store.ledger({
      by, ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
      ...(q.node ? { nodeName: q.node } : {}), ...(q.project ? { project: q.project } : {}), ...(q.user ? { user: q.user } : {}),
    });
    const body: LedgerV1 = toLedgerV1(by, since ?? null, until ?? null, rows);
    return body;
  });
}
