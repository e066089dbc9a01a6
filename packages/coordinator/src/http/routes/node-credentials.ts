/**
 * `POST /api/v1/nodes/:id/revoke` (admin): revoke a node's credential at once. Its socket is closed, its work
 * requeued, and it cannot reconnect — nor fetch inputs or upload outputs — until it joins anew with the join token
 * (as a new node, with a new id).
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX, isNodeId, NotFoundError } from '@dsg/core';
import type { Store } from '@dsg/store';
import type { Authenticator } from '../../auth.js';
import type { Clock } from '../../clock.js';
import type { Engine } from '../../engine/engine.js';
import type { Logger } from '../../logger.js';
import type { Audit, Authed } from './authed.js';
import { routeSchema as S } from '../openapi.js';
import { z } from 'zod';

const RevokeNodeResponse = z.strictObject({ nodeId: z.string(), name: z.string(), credentialsRevoked: z.number().int() });

export interface NodeCredentialRouteDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly auth: Authenticator;
  readonly clock: Clock;
  readonly log: Logger;
  readonly authed: Authed;
  readonly audit: Audit;
}

export function nodeCredentialRoutes(app: FastifyInstance, deps: NodeCredentialRouteDeps): void {
  app.post(`${API_PREFIX}/nodes/:id/revoke`, {
    schema: S({ summary: 'Revoke a node\'s credential: it is cut off at once and its work requeued', tags: ['nodes'], params: z.strictObject({ id: z.string().meta({ description: 'A node id.' }) }), response: { 200: RevokeNodeResponse }, errors: [404] }),
  }, async (req) => {
    const who = await deps.authed(req, 'nodes:admin');
    const { id } = req.params as { id: string };
    const node = isNodeId(id) ? await deps.store.getNode(id) : null;
    if (!node) throw new NotFoundError('node', id);
    const revoked = await deps.auth.revokeNode(node.id, deps.clock.now());
    const why = `the credential of node ${node.name} was revoked by ${who.name}`;
    await deps.engine.onNodeRevoked(node.id, why);
    await deps.audit(req, 'node.revoked', node.id, { name: node.name, credentialsRevoked: revoked });
    deps.log.warn({ nodeId: node.id, name: node.name, credentials: revoked }, 'node credential revoked; its work is requeued');
    return { nodeId: node.id, name: node.name, credentialsRevoked: revoked };
  });
}
