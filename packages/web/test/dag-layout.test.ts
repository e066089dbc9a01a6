import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SIZES, layoutDag } from '../src/lib/dag-layout.js';

describe('workflow DAG layout', () => {
  it('puts every stage right of what it needs (longest path), centred in its column', () => {
    const l = layoutDag({
      nodes: ['fetch', 'clean', 'model', 'report'],
      edges: [{ from: 'fetch', to: 'clean' }, { from: 'fetch', to: 'model' }, { from: 'clean', to: 'report' }, { from: 'model', to: 'report' }, { from: 'fetch', to: 'report' }],
    });
    const at = Object.fromEntries(l.nodes.map((n) => [n.id, n]));
    assert.deepEqual([at['fetch']!.layer, at['clean']!.layer, at['model']!.layer, at['report']!.layer], [0, 1, 1, 2]);
    for (const e of l.edges) assert.ok(e.points[0]![0] < e.points[1]![0], `${e.from} → ${e.to} points right`);
    assert.equal(l.width, 3 * DEFAULT_SIZES.nodeWidth + 2 * DEFAULT_SIZES.gapX);
    assert.equal(l.height, 2 * DEFAULT_SIZES.nodeHeight + DEFAULT_SIZES.gapY);
    assert.equal(at['fetch']!.y, (l.height - DEFAULT_SIZES.nodeHeight) / 2, 'a lone stage is centred');
  });
  it('orders a layer by its parents\' positions, which uncrosses parallel chains', () => {
    // Declared crosswise: a1→b2 and a2→b1. Barycenter ordering puts b2 first, under a1.
    const l = layoutDag({ nodes: ['a1', 'a2', 'b1', 'b2'], edges: [{ from: 'a2', to: 'b1' }, { from: 'a1', to: 'b2' }] });
    const order = Object.fromEntries(l.nodes.map((n) => [n.id, n.order]));
    assert.equal(order['b2'], 0);
    assert.equal(order['b1'], 1);
  });
  it('survives what a valid workflow never has: unknown stages, self-loops, cycles, duplicates', () => {
    const l = layoutDag({ nodes: ['a', 'b', 'a'], edges: [{ from: 'a', to: 'zzz' }, { from: 'a', to: 'a' }, { from: 'a', to: 'b' }, { from: 'b', to: 'a' }] });
    assert.equal(l.nodes.length, 2);
    assert.equal(new Set(l.nodes.map((n) => `${n.layer}:${n.order}`)).size, 2, 'no two stages on one spot');
  });
  it('lays out an empty graph and a wide one', () => {
    assert.equal(layoutDag({ nodes: [], edges: [] }).nodes.length, 0);
    const wide = layoutDag({ nodes: Array.from({ length: 200 }, (_, i) => `s${i}`), edges: [] });
    assert.equal(new Set(wide.nodes.map((n) => n.layer)).size, 1);
    assert.equal(wide.height, 200 * DEFAULT_SIZES.nodeHeight + 199 * DEFAULT_SIZES.gapY);
  });
});
