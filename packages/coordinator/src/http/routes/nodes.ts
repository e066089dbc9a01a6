/**
 * Node operations (admin only): cordon, uncordon, drain, remove. `:id` is a node id or a node's name (names are
 * what operators see; a name shared by several nodes is refused with their ids).
 *
 *   eligible ──cordon──▶ cordoned ──uncordon──▶ eligible
 *   eligible ──drain──▶ draining (its work finishes) ──▶ drained ──uncordon──▶ eligible
 *   eligible ──system failures──▶ quarantined ──cool-down or uncordon──▶ eligible
 *   any ──remove──▶ forgotten (refused while it holds work, unless force: the work is requeued)
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { API_PREFIX, ConflictError, NotFoundError, RemoveNodeRequestV1Schema, ValidationError, type NodeV1, type RemoveNodeResponseV1 } from '@dsg/core';
import { NodeV1Schema, RemoveNodeResponseV1Schema } from '@dsg/core/wire-schemas';
import type { NodeUsage, Store } from '@dsg/store';
import type { Clock } from '../../clock.js';
import type { Engine } from '../../engine/engine.js';
import { toNodeV1 } from '../mappers.js';
import { parseOr400 } from '../parse.js';
import { routeSchema as S } from '../openapi.js';
import type { Audit, Authed } from './authed.js';

export interface NodeRouteDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly clock: Clock;
  readonly authed: Authed;
  readonly audit: Audit;
}

const NodeParams = z.strictObject({ id: z.string().meta({ description: 'A node id or a node\'s name.' }) });
const SUMMARY = { cordon: 'Cordon a node: no new work', drain: 'Drain a node: no new work, its work finishes', uncordon: 'Make a node eligible again (ends a cordon, drain or quarantine)' } as const;

/** The node named by id or name. */
export async function findNode(store: Store, idOrName: string): Promise<NodeUsage> {
  const all = await store.listNodeUsage();
  const byId = all.find((u) => u.node.id === idOrName);
  if (byId) return byId;
  const named = all.filter((u) => u.node.name === idOrName);
  if (named.length === 1) return named[0]!;
  if (named.length > 1)
    throw new ValidationError([{ path: 'params.id', message: `${named.length} nodes are named ${idOrName} (${named.map((u) => u.node.id).join(', ')}): name one by its id` }]);
  throw new NotFoundError('node', `${idOrName} (see \`dsg nodes\` for names and ids)`);
}

const AUDITED = { cordon: 'node.cordoned', drain: 'node.drained', uncordon: 'node.uncordoned' } as const;

export function nodeRoutes(app: FastifyInstance, deps: NodeRouteDeps): void {
  const { store, engine, clock, authed } = deps;
  const fresh = async (id: string): Promise<NodeV1> => {
    const u = await findNode(store, id);
    return toNodeV1(u, clock.now(), engine.nodePolicy(u.node.id), engine.nodeHostUsage(u.node.id));
  };

  const flagRoute = (action: 'cordon' | 'drain' | 'uncordon', change: Parameters<Store['setNodeFlags']>[1]) =>
    app.post(`${API_PREFIX}/nodes/:id/${action}`, { schema: S({ summary: SUMMARY[action], tags: ['nodes'], params: NodeParams, response: { 200: NodeV1Schema }, errors: [404] }) }, async (req) => {
      await authed(req, 'nodes:write');
      const u = await findNode(store, (req.params as { id: string }).id);
      await store.setNodeFlags(u.node.id, change, clock.now());
      await deps.audit(req, AUDITED[action], u.node.id, { name: u.node.name });
      // Uncordon may bring capacity back; cordon and drain change nothing running.
      engine.requestTick();
      return fresh(u.node.id);
    });
  flagRoute('cordon', { cordoned: true });
  flagRoute('drain', { draining: true });
  flagRoute('uncordon', { cordoned: false, draining: false, releaseQuarantine: true });

  app.post(`${API_PREFIX}/nodes/:id/remove`, {
    schema: S({ summary: 'Forget a node (refused while it holds work, unless force)', tags: ['nodes'], params: NodeParams, body: RemoveNodeRequestV1Schema, response: { 200: RemoveNodeResponseV1Schema }, errors: [404, 409] }),
  }, async (req) => {
    await authed(req, 'nodes:write');
    const body = parseOr400(RemoveNodeRequestV1Schema, req.body ?? undefined, 'body');
    const u = await findNode(store, (req.params as { id: string }).id);
    const r = await engine.removeNode(u.node.id, body?.force ?? false);
    if (!r) throw new NotFoundError('node', u.node.id);
    if (!r.removed)
      throw new ConflictError(
        `node ${u.node.name} still holds ${r.held.length} task(s); drain it first (\`dsg node drain ${u.node.name}\`, then remove it once \`dsg nodes\` shows it drained), or remove it now with --force to requeue them`,
        { held: r.held.length },
      );
    await deps.audit(req, 'node.removed', u.node.id, { name: u.node.name, requeuedTasks: r.requeuedTasks, force: body?.force ?? false });
    const res: RemoveNodeResponseV1 = { removed: true, node: { id: u.node.id, name: u.node.name }, requeuedTasks: r.requeuedTasks };
    return res;
  });
}
