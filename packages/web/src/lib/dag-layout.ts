/**
 * Layered layout of a workflow's stages (a DAG): each stage's layer is the length of the longest path to it from a
 * stage with no needs, so every edge points right; stages within a layer are ordered by the mean position of
 * their parents (barycenter), which removes most crossings in the graphs workflows have. Pure; no DOM.
 */
export interface DagInput {
  readonly nodes: readonly string[];
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string }>;
}

export interface PlacedNode {
  readonly id: string;
  readonly layer: number;
  /** Position within its layer, 0-based. */
  readonly order: number;
  readonly x: number;
  readonly y: number;
}

export interface DagLayout {
  readonly nodes: readonly PlacedNode[];
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string; readonly points: readonly [number, number][] }>;
  readonly width: number;
  readonly height: number;
}

export interface DagSizes {
  readonly nodeWidth: number;
  readonly nodeHeight: number;
  readonly gapX: number;
  readonly gapY: number;
}

export const DEFAULT_SIZES: DagSizes = { nodeWidth: 180, nodeHeight: 64, gapX: 60, gapY: 24 };

/** Lay out the DAG; edges naming unknown stages are ignored, and a cycle (never valid) is broken where found. */
export function layoutDag(input: DagInput, sizes: DagSizes = DEFAULT_SIZES): DagLayout {
  const ids = [...new Set(input.nodes)];
  const known = new Set(ids);
  const edges = input.edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to);
  const parents = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) parents.get(e.to)!.push(e.from);

  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const layerOf = (id: string): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle: break it here
    visiting.add(id);
    let l = 0;
    for (const p of parents.get(id)!) l = Math.max(l, layerOf(p) + 1);
    visiting.delete(id);
    layer.set(id, l);
    return l;
  };
  for (const id of ids) layerOf(id);

  const layers: string[][] = [];
  for (const id of ids) (layers[layer.get(id)!] ??= []).push(id);
  const order = new Map<string, number>();
  for (const [i, ids0] of layers.entries()) {
    const ids1 = ids0 ?? [];
    if (i > 0) {
      const bary = (id: string): number => {
        const ps = parents.get(id)!.filter((p) => order.has(p));
        return ps.length ? ps.reduce((s, p) => s + order.get(p)!, 0) / ps.length : Number.MAX_SAFE_INTEGER;
      };
      // Stable: ties keep the stages' declared order.
      ids1.sort((a, b) => bary(a) - bary(b));
    }
    ids1.forEach((id, k) => order.set(id, k));
    layers[i] = ids1;
  }

  const tallest = Math.max(1, ...layers.map((l) => l.length));
  const colHeight = tallest * sizes.nodeHeight + (tallest - 1) * sizes.gapY;
  const nodes: PlacedNode[] = [];
  const pos = new Map<string, PlacedNode>();
  for (const [i, ids1] of layers.entries()) {
    const h = ids1.length * sizes.nodeHeight + (ids1.length - 1) * sizes.gapY;
    const top = (colHeight - h) / 2;
    ids1.forEach((id, k) => {
      const n: PlacedNode = { id, layer: i, order: k, x: i * (sizes.nodeWidth + sizes.gapX), y: top + k * (sizes.nodeHeight + sizes.gapY) };
      nodes.push(n);
      pos.set(id, n);
    });
  }
  const placedEdges = edges.map((e) => {
    const a = pos.get(e.from)!;
    const b = pos.get(e.to)!;
    const points: [number, number][] = [[a.x + sizes.nodeWidth, a.y + sizes.nodeHeight / 2], [b.x, b.y + sizes.nodeHeight / 2]];
    return { from: e.from, to: e.to, points };
  });
  return {
    nodes, edges: placedEdges,
    width: Math.max(sizes.nodeWidth, layers.length * sizes.nodeWidth + (layers.length - 1) * sizes.gapX),
    height: Math.max(sizes.nodeHeight, colHeight),
  };
}
