/** Node ids → names for tables, looked up once per command. */
import type { DsgClient } from '@dsg/client';
import type { NodeV1 } from '@dsg/core';

/**
 * A function naming a node by its id: its name, with the id added when two nodes share the name (two agents on one
 * host), or the id alone for a node the coordinator no longer knows.
 */
export function nodeNamer(nodes: readonly Pick<NodeV1, 'id' | 'name'>[]): (id: string | null) => string {
  const count = new Map<string, number>();
  for (const n of nodes) count.set(n.name, (count.get(n.name) ?? 0) + 1);
  const names = new Map(nodes.map((n) => [n.id, count.get(n.name)! > 1 ? `${n.name} (${n.id})` : n.name]));
  return (id) => (id === null ? '' : (names.get(id) ?? id));
}

/** One `GET /nodes` for the whole command. */
export async function loadNodeNamer(client: DsgClient): Promise<(id: string | null) => string> {
  return nodeNamer((await client.listNodes()).items);
}
