// Workflow specs (compileWorkflowSpec) and the pure release rules (planWorkflow, itemReleases, workflowState,
// artifacts): table tests for every rejection with its exact path and message, and seeded property tests over
// random graphs and random runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileJobSpec,
  compileWorkflowSpec,
  deriveJobState,
  emptyTaskCounts,
  fanOutEnv,
  filesFanOut,
  MAX_ARRAY,
  isTerminalStage,
  itemReleases,
  planWorkflow,
  resolveArtifacts,
  selectOutputs,
  stageStatus,
  substituteArtifactPath,
  ValidationError,
  workflowState,
  type CompiledWorkflow,
  type Issue,
  type StageOutput,
  type StageProgress,
  type StageStatus,
  type TaskState,
} from '@dsg/core';

// ─── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────
/** mulberry32: a small seeded generator, so a failing case can be replayed from its seed. */
function rngOf(seed: number): { next: () => number; int: (lo: number, hi: number) => number; pick: <T>(xs: readonly T[]) => T; chance: (p: number) => boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)]!, chance: (p) => next() < p };
}

const SEEDS = Number(process.env['DSG_PROPERTY_RUNS'] ?? 300);

function issuesOf(spec: unknown, params?: Record<string, string>): Issue[] {
  try {
    compileWorkflowSpec(spec, params ? { params } : {});
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
    return [...e.issues];
  }
  assert.fail('expected the workflow to be rejected');
}

const st = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ script: 'true', ...extra });
const wfOf = (stages: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ name: 'w', stages, ...extra });

// ─── valid workflows ─────────────────────────────────────────────────────────────────────────────────────────
describe('compileWorkflowSpec: valid workflows', () => {
  it('orders stages topologically whatever order they are written in, ties in the order written', () => {
    const wf = compileWorkflowSpec(wfOf({
      report: st({ needs: ['left', 'right'] }),
      right: st({ needs: ['source'] }),
      left: st({ needs: ['source'] }),
      source: st(),
    }));
    assert.deepEqual(wf.stages.map((s) => s.name), ['source', 'right', 'left', 'report']);
    assert.deepEqual(wf.stages.map((s) => s.needs), [[], ['source'], ['source'], ['left', 'right']]);
    assert.deepEqual(wf.stages.map((s) => s.job.name), ['w/source', 'w/right', 'w/left', 'w/report']);
    assert.deepEqual(wf.stages.map((s) => s.each), [null, null, null, null]);
  });

  it('per-item chaining inherits the upstream task count, array values and matrix variables, through a chain', () => {
    const wf = compileWorkflowSpec(wfOf({
      gen: st({ matrix: { temp: [280, 300], seed: [1, 2, 3] }, outputs: ['o/*'] }),
      fit: st({ needs: ['gen'], each: 'gen', outputs: ['f/*'] }),
      plot: st({ needs: ['fit'], each: 'fit' }),
      list: st({ array: ['x', 'y'] }),
      use: st({ needs: ['list'], each: 'list' }),
    }));
    const by = new Map(wf.stages.map((s) => [s.name, s]));
    for (const name of ['fit', 'plot']) {
      const j = by.get(name)!.job;
      assert.equal(j.taskCount, 6, name);
      assert.deepEqual(j.arrayValues, ['temp=280,seed=1', 'temp=280,seed=2', 'temp=280,seed=3', 'temp=300,seed=1', 'temp=300,seed=2', 'temp=300,seed=3']);
      assert.deepEqual(fanOutEnv(j.fanOut, 4), { DSG_MATRIX_TEMP: '300', DSG_MATRIX_SEED: '2' }, `${name} sees the matrix row of its item`);
    }
    assert.deepEqual(by.get('plot')!.job.fanOut, { kind: 'each', from: 'fit', inherits: { kind: 'each', from: 'gen', inherits: by.get('gen')!.job.fanOut } });
    assert.equal(by.get('plot')!.each, 'fit');
    assert.deepEqual([by.get('use')!.job.taskCount, by.get('use')!.job.arrayValues], [2, ['x', 'y']]);
  });

  it('params: defaults as strings, --set overrides, every stage sees them in its environment', () => {
    const spec = wfOf({ a: st({ env: { MODE: 'fast' } }), b: st({ needs: ['a'] }) }, { params: { SAMPLES: 1000, LABEL: 'run', DRY: false } });
    const d = compileWorkflowSpec(spec);
    assert.deepEqual(d.params, { SAMPLES: '1000', LABEL: 'run', DRY: 'false' });
    const o = compileWorkflowSpec(spec, { params: { SAMPLES: '5', DRY: 'true' } });
    assert.deepEqual(o.params, { SAMPLES: '5', LABEL: 'run', DRY: 'true' });
    assert.deepEqual(o.stages[0]!.job.env, { SAMPLES: '5', LABEL: 'run', DRY: 'true', MODE: 'fast' });
    assert.deepEqual(o.stages[1]!.job.env, { SAMPLES: '5', LABEL: 'run', DRY: 'true' });
    assert.deepEqual(o.stages[1]!.job.params, o.params);
  });

  it('publish, artifacts from an upstream stage (also through another stage), fan-out over files, optional outputs', () => {
    const wf = compileWorkflowSpec(wfOf({
      split: st({ outputs: [{ path: 'parts/*.txt', optional: true }] }),
      count: st({ needs: ['split'], array: { from: 'split', path: 'parts/*.txt' }, outputs: ['n.txt'] }),
      sum: st({ needs: ['count'], inputs: ['sum.py', { from: 'count' }, { from: 'split', path: 'parts/${DSG_TASK_INDEX}.txt' }] }),
    }, { publish: { sum: 'results/total', split: 'parts' }, description: 'd' }));
    assert.deepEqual(wf.publish, { sum: 'results/total', split: 'parts' });
    assert.equal(wf.description, 'd');
    const [split, count, sum] = wf.stages;
    assert.deepEqual([split!.job.outputs, split!.job.optionalOutputs], [[], ['parts/*.txt']]);
    assert.deepEqual(count!.job.fanOut, { kind: 'files', from: 'split', path: 'parts/*.txt' });
    assert.equal(count!.job.taskCount, 0, 'known only when split has run');
    assert.deepEqual(sum!.job.inputs, [{ source: 'sum.py', path: 'sum.py' }]);
    assert.deepEqual(sum!.job.artifacts, [{ from: 'count', path: null, at: 1 }, { from: 'split', path: 'parts/${DSG_TASK_INDEX}.txt', at: 2 }]);
  });
});

// ─── rejections ──────────────────────────────────────────────────────────────────────────────────────────────
describe('compileWorkflowSpec: every bad input is rejected with its path and reason', () => {
  const cases: Array<[string, unknown, Issue[], Record<string, string>?]> = [
    ['a cycle, spelled out from the first stage on it',
      wfOf({ a: st({ needs: ['c'] }), b: st({ needs: ['a'] }), c: st({ needs: ['b'] }), d: st() }),
      [{ path: 'stages.a.needs[0]', message: 'the stages form a cycle: a needs c, c needs b, b needs a (remove one of these needs)' }]],
    ['a cycle of two, not through the first stage',
      wfOf({ root: st(), x: st({ needs: ['root', 'y'] }), y: st({ needs: ['x'] }) }),
      [{ path: 'stages.x.needs[1]', message: 'the stages form a cycle: x needs y, y needs x (remove one of these needs)' }]],
    ['an unknown stage in inputs from, with a guess',
      wfOf({ split: st({ outputs: ['x'] }), align: st({ needs: ['split'], inputs: ['a.txt', { from: 'splitt' }] }) }),
      [{ path: 'stages.align.inputs[1].from', message: 'stage "splitt" does not exist (did you mean "split"?)' }]],
    ['an unknown stage in needs, with a guess',
      wfOf({ align: st(), report: st({ needs: ['aling'] }) }),
      [{ path: 'stages.report.needs[0]', message: 'stage "aling" does not exist (did you mean "align"?)' }]],
    ['an unknown stage in needs, nothing close: the stages are listed',
      wfOf({ align: st(), report: st({ needs: ['zzzzzzz'] }) }),
      [{ path: 'stages.report.needs[0]', message: 'stage "zzzzzzz" does not exist (stages: align, report)' }]],
    ['an unknown stage in array from',
      wfOf({ align: st({ outputs: ['x'] }), report: st({ needs: ['align'], array: { from: 'algn' } }) }),
      [{ path: 'stages.report.array.from', message: 'stage "algn" does not exist (did you mean "align"?)' }]],
    ['an unknown stage in each',
      wfOf({ align: st({ array: 2 }), report: st({ needs: ['align'], each: 'alin' }) }),
      [{ path: 'stages.report.each', message: 'stage "alin" does not exist (did you mean "align"?)' }]],
    ['an unknown stage in publish',
      wfOf({ align: st() }, { publish: { algn: 'out' } }),
      [{ path: 'publish.algn', message: 'stage "algn" does not exist (did you mean "align"?)' }]],
    ['a stage needing itself',
      wfOf({ a: st({ needs: ['a'] }) }),
      [{ path: 'stages.a.needs[0]', message: 'a stage cannot need itself' }]],
    ['a need listed twice',
      wfOf({ a: st(), b: st({ needs: ['a', 'a'] }) }),
      [{ path: 'stages.b.needs[1]', message: '"a" is listed twice' }]],
    ['from: a stage that is not upstream',
      wfOf({ a: st({ outputs: ['x'] }), b: st(), c: st({ needs: ['b'], inputs: [{ from: 'a' }] }) }),
      [{ path: 'stages.c.inputs[0].from', message: 'stage "a" is not in needs (directly or through other stages): add it to stages.c.needs' }]],
    ['from: a downstream stage',
      wfOf({ a: st({ inputs: [{ from: 'b' }] }), b: st({ needs: ['a'], outputs: ['x'] }) }),
      [{ path: 'stages.a.inputs[0].from', message: 'stage "b" is not in needs (directly or through other stages): add it to stages.a.needs' }]],
    ['from: itself',
      wfOf({ a: st({ outputs: ['x'], inputs: [{ from: 'a' }] }) }),
      [{ path: 'stages.a.inputs[0].from', message: 'a stage cannot take its own outputs' }]],
    ['array from: a stage not in needs',
      wfOf({ a: st({ outputs: ['x'] }), b: st({ array: { from: 'a' } }) }),
      [{ path: 'stages.b.array.from', message: 'stage "a" is not in needs (directly or through other stages): add it to stages.b.needs' }]],
    ['fan-out over a stage that declares no outputs',
      wfOf({ a: st(), b: st({ needs: ['a'], array: { from: 'a' } }) }),
      [{ path: 'stages.b.array.from', message: 'stage "a" declares no outputs; add outputs: [GLOB, …] to it' }]],
    ['inputs from a stage that declares no outputs',
      wfOf({ a: st(), b: st({ needs: ['a'], inputs: [{ from: 'a', path: 'x' }] }) }),
      [{ path: 'stages.b.inputs[0].from', message: 'stage "a" declares no outputs; add outputs: [GLOB, …] to it' }]],
    ['each: a stage not in needs',
      wfOf({ a: st({ array: 3 }), b: st({ each: 'a' }) }),
      [{ path: 'stages.b.each', message: '"a" must also be listed in stages.b.needs' }]],
    ['each: itself',
      wfOf({ a: st({ array: 3, each: 'a' }) }),
      [{ path: 'stages.a.each', message: 'a stage cannot chain on itself; each: names an earlier stage (also listed in needs)' }]],
    ['each: with its own array',
      wfOf({ a: st({ array: 3 }), b: st({ needs: ['a'], each: 'a', array: 3 }) }),
      [{ path: 'stages.b.each', message: 'a stage with each: takes its tasks (and their array values) from "a"; remove its own array/matrix' }]],
    ['each: with its own matrix',
      wfOf({ a: st({ array: 3 }), b: st({ needs: ['a'], each: 'a', matrix: { x: [1, 2] } }) }),
      [{ path: 'stages.b.each', message: 'a stage with each: takes its tasks (and their array values) from "a"; remove its own array/matrix' }]],
    ['each: over a fan-out over files',
      wfOf({ a: st({ outputs: ['x'] }), b: st({ needs: ['a'], array: { from: 'a' }, outputs: ['y'] }), c: st({ needs: ['b'], each: 'b' }) }),
      [{ path: 'stages.c.each', message: 'stage "b" makes one task per output file, so its task count is only known when it runs; per-item chaining needs a fixed count (array: N, a list, a matrix or lines)' }]],
    ['an empty matrix',
      wfOf({ a: st({ matrix: {} }) }),
      [{ path: 'stages.a.matrix', message: 'expected at least one parameter with a list of values' }]],
    ['an empty matrix list',
      wfOf({ a: st({ matrix: { t: [1], seed: [] } }) }),
      [{ path: 'stages.a.matrix.seed', message: 'expected a non-empty list of values' }]],
    ['both array and matrix',
      wfOf({ a: st({ matrix: { t: [1] }, array: 2 }) }),
      [{ path: 'stages.a.matrix', message: 'give either array or matrix, not both' }]],
    ['--set of an undeclared parameter, with a guess',
      wfOf({ a: st() }, { params: { SAMPLES: 10 } }),
      [{ path: '--set SAMPLS', message: 'no such parameter (did you mean "SAMPLES"?); the spec declares SAMPLES' }], { SAMPLS: '3' }],
    ['--set when the spec declares no parameters',
      wfOf({ a: st() }),
      [{ path: '--set N', message: 'no such parameter; the spec declares none (add them under params: with a default)' }], { N: '3' }],
    ['no stages',
      wfOf({}),
      [{ path: 'stages', message: 'expected at least one stage' }]],
    ['a bad stage name',
      wfOf({ 'a.b': st() }),
      [{ path: 'stages.a.b', message: 'expected a stage name of letters, digits, "_" or "-" (at most 63, starting with a letter or digit)' }]],
    ['a stage without script or command, and an unknown stage field',
      wfOf({ a: { needz: ['b'], script: 'x' }, b: {} }),
      [{ path: 'stages.a.needz', message: 'unknown field (did you mean "needs"?)' }, { path: 'stages.b.script', message: 'expected a script (shell) or a command (argv list) to run' }]],
    ['a publish directory that leaves the download directory',
      wfOf({ a: st(), b: st() }, { publish: { a: '../up', b: '/abs' } }),
      [{ path: 'publish.a', message: "expected a directory relative to the download directory, without '..'" }, { path: 'publish.b', message: "expected a directory relative to the download directory, without '..'" }]],
    ['every problem at once, each stage with its own path',
      wfOf({ a: st({ needs: ['a'] }), b: st({ needs: ['c', 'c'] }), c: st() }),
      [{ path: 'stages.a.needs[0]', message: 'a stage cannot need itself' }, { path: 'stages.b.needs[1]', message: '"c" is listed twice' }]],
  ];
  for (const [title, spec, expected, params] of cases) it(title, () => assert.deepEqual(issuesOf(spec, params), expected));

  it('a plain job may not take { from: } inputs or fan out over files', () => {
    const reject = (spec: Record<string, unknown>): Issue[] => {
      try {
        compileJobSpec(spec);
      } catch (e) {
        assert.ok(e instanceof ValidationError);
        return [...e.issues];
      }
      assert.fail('expected a rejection');
    };
    assert.deepEqual(reject({ name: 'j', script: 'x', inputs: ['a.py', { from: 'prep' }] }), [
      { path: 'inputs[1]', message: '{ from: prep } takes the outputs of a workflow stage; a plain job has no stages' },
    ]);
    assert.deepEqual(reject({ name: 'j', script: 'x', array: { from: 'prep' } }), [
      { path: 'array.from', message: 'one task per output file of an earlier stage works only in a workflow stage' },
    ]);
    assert.deepEqual(reject({ name: 'j', stages: { a: { script: 'x' } } }), [
      { path: 'stages', message: 'this is a workflow (it has stages:); submit it as a workflow (`dsg submit` does so by itself)' },
    ]);
  });

  it('the error message lists every issue with its path', () => {
    try {
      compileWorkflowSpec(wfOf({ a: st({ needs: ['b'] }), b: st({ needs: ['a'] }) }));
      assert.fail('expected a rejection');
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.message, 'invalid workflow spec: stages.a.needs[0]: the stages form a cycle: a needs b, b needs a (remove one of these needs)');
    }
  });
});

// ─── graph properties ────────────────────────────────────────────────────────────────────────────────────────
/** A random DAG over stages s0…s(n-1) (edges only to lower numbers), written in a shuffled order. */
function randomDag(rng: ReturnType<typeof rngOf>, n: number, density: number): Map<string, string[]> {
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  const needs = new Map<string, string[]>();
  for (let i = 0; i < n; i++) needs.set(names[i]!, names.slice(0, i).filter(() => rng.chance(density)));
  const order = [...names];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return new Map(order.map((s) => [s, needs.get(s)!]));
}

describe('graph properties (seeded random graphs)', () => {
  it(`random DAGs compile and their order respects every need (${SEEDS} graphs)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rng = rngOf(seed);
      const dag = randomDag(rng, rng.int(1, 14), rng.next());
      const spec = wfOf(Object.fromEntries([...dag].map(([s, needs]) => [s, st(needs.length ? { needs } : {})])));
      const wf = compileWorkflowSpec(spec);
      const pos = new Map(wf.stages.map((s, i) => [s.name, i]));
      assert.equal(wf.stages.length, dag.size, `seed ${seed}`);
      for (const s of wf.stages) {
        assert.deepEqual(s.needs, dag.get(s.name), `seed ${seed}: needs of ${s.name}`);
        for (const d of s.needs) assert.ok(pos.get(d)! < pos.get(s.name)!, `seed ${seed}: ${d} must come before ${s.name}`);
      }
    }
  });

  it(`a back edge makes a cycle, and the message spells a real cycle (${SEEDS} graphs)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rng = rngOf(seed);
      const n = rng.int(2, 12);
      const dag = randomDag(rng, n, rng.next() * 0.6);
      // A back edge: s_lo needs s_hi, where s_hi already reaches s_lo (add a path s_hi → … → s_lo if needed).
      const lo = rng.int(0, n - 2);
      const hi = rng.int(lo + 1, n - 1);
      dag.get(`s${hi}`)!.includes(`s${lo}`) || dag.get(`s${hi}`)!.push(`s${lo}`);
      dag.get(`s${lo}`)!.push(`s${hi}`);
      const spec = wfOf(Object.fromEntries([...dag].map(([s, needs]) => [s, st({ needs })])));
      const issues = issuesOf(spec);
      assert.equal(issues.length, 1, `seed ${seed}: ${JSON.stringify(issues)}`);
      const m = /^the stages form a cycle: (.*) \(remove one of these needs\)$/.exec(issues[0]!.message);
      assert.ok(m, `seed ${seed}: ${issues[0]!.message}`);
      const links = m[1]!.split(', ').map((l) => l.split(' needs '));
      for (const [i, [from, to]] of links.entries()) {
        assert.ok(dag.get(from!)!.includes(to!), `seed ${seed}: ${from} does not need ${to}`);
        assert.equal(links[(i + 1) % links.length]![0], to, `seed ${seed}: the cycle is closed`);
      }
      const first = links[0]!;
      assert.equal(issues[0]!.path, `stages.${first[0]}.needs[${dag.get(first[0]!)!.indexOf(first[1]!)}]`, `seed ${seed}`);
    }
  });
});

// ─── release rules ───────────────────────────────────────────────────────────────────────────────────────────
const progressOf = (over: Partial<StageProgress> = {}): StageProgress => ({
  released: false, skipReason: null, taskCount: 1, counts: emptyTaskCounts(), cancelRequested: false, ...over,
});
const counts = (c: Partial<Record<TaskState, number>>) => ({ ...emptyTaskCounts(), ...c });

describe('release rules', () => {
  const wf = compileWorkflowSpec(wfOf({
    a: st({ array: 3, outputs: ['a/*'] }),
    b: st({ needs: ['a'], each: 'a' }),
    c: st(),
    d: st({ needs: ['a', 'c'], each: 'a' }),
    e: st({ needs: ['b', 'c'] }),
  }));

  it('releases root stages and per-item stages with no other needs at once; the rest wait', () => {
    const p = new Map(wf.stages.map((s) => [s.name, progressOf({ taskCount: s.job.taskCount })]));
    assert.deepEqual(planWorkflow(wf, p, false), { release: ['a', 'b', 'c'], skip: [] });
  });

  it('per-item: task k of each stage is released when task k upstream succeeds, not before the gate opens', () => {
    const p = new Map(wf.stages.map((s) => [s.name, progressOf({ taskCount: s.job.taskCount, released: ['a', 'b', 'c'].includes(s.name) })]));
    assert.deepEqual(itemReleases(wf, p, 'a'), ['b'], 'd waits for c');
    p.set('c', progressOf({ released: true, counts: counts({ succeeded: 1 }) }));
    assert.deepEqual(planWorkflow(wf, p, false).release, ['d']);
    p.set('d', progressOf({ released: true, taskCount: 3 }));
    assert.deepEqual(itemReleases(wf, p, 'a'), ['b', 'd']);
    assert.deepEqual(itemReleases(wf, p, 'c'), []);
  });

  it('a failed need skips what waits on it, down the graph, in one call, naming the need', () => {
    const p = new Map(wf.stages.map((s) => [s.name, progressOf({ taskCount: s.job.taskCount })]));
    p.set('a', progressOf({ released: true, taskCount: 3, counts: counts({ succeeded: 3 }) }));
    p.set('b', progressOf({ released: true, taskCount: 3, counts: counts({ succeeded: 3 }) }));
    p.set('c', progressOf({ released: true, counts: counts({ failed: 1 }) }));
    assert.deepEqual(planWorkflow(wf, p, false), {
      release: [],
      skip: [{ stage: 'd', reason: 'it needs "c", which failed' }, { stage: 'e', reason: 'it needs "c", which failed' }],
    });
  });

  it('a released per-item stage whose upstream failed records why its missing items never come', () => {
    const p = new Map(wf.stages.map((s) => [s.name, progressOf({ taskCount: s.job.taskCount })]));
    p.set('a', progressOf({ released: true, taskCount: 3, counts: counts({ succeeded: 2, failed: 1 }) }));
    p.set('b', progressOf({ released: true, taskCount: 3, counts: counts({ succeeded: 2 }) }));
    p.set('c', progressOf({ released: true, counts: counts({ running: 1 }) }));
    const plan = planWorkflow(wf, p, false);
    assert.deepEqual(plan.skip, [
      { stage: 'b', reason: '"a" failed: the tasks whose "a" task did not succeed are skipped' },
      { stage: 'e', reason: 'it needs "b", which was skipped' },
    ], 'd still waits for c: its items whose "a" task succeeded will run once c has');
    assert.deepEqual(plan.release, []);
    assert.equal(stageStatus({ ...p.get('b')!, skipReason: plan.skip[0]!.reason }), 'skipped');
  });

  it('a cancelled workflow skips what never started; a stage whose own cancel was requested is never released', () => {
    const p = new Map(wf.stages.map((s) => [s.name, progressOf({ taskCount: s.job.taskCount })]));
    const plan = planWorkflow(wf, p, true);
    assert.deepEqual(plan.release, []);
    assert.deepEqual(plan.skip.map((s) => [s.stage, s.reason]), wf.stages.map((s) => [s.name, 'the workflow was cancelled']));
    // `dsg cancel job_…` on a stage that still waits: it reads cancelled, is not released, and what needs it is skipped.
    p.set('c', progressOf({ cancelRequested: true }));
    assert.equal(stageStatus(p.get('c')!), 'cancelled');
    const after = planWorkflow(wf, p, false);
    assert.deepEqual(after.release, ['a', 'b']);
    assert.deepEqual(after.skip, [{ stage: 'd', reason: 'it needs "c", which was cancelled' }, { stage: 'e', reason: 'it needs "c", which was cancelled' }]);
    // A per-item stage whose cancel was requested gets no new items.
    p.set('b', progressOf({ released: true, taskCount: 3, cancelRequested: true, counts: counts({ succeeded: 1 }) }));
    assert.deepEqual(itemReleases(wf, p, 'a'), []);
  });

  it('workflowState: queued until something runs, then running; failed if any stage failed or was skipped', () => {
    const cases: Array<[StageStatus[], boolean, StageStatus]> = [
      [['queued', 'waiting'], false, 'queued'],
      [['running', 'waiting'], false, 'running'],
      [['succeeded', 'waiting'], false, 'running'],
      [['skipped', 'waiting'], false, 'queued'],
      [['succeeded', 'succeeded'], false, 'succeeded'],
      [['succeeded', 'failed', 'skipped'], false, 'failed'],
      [['succeeded', 'skipped'], false, 'failed'],
      [['succeeded', 'cancelled'], false, 'cancelled'],
      [['running', 'cancelled'], true, 'running'],
      [['succeeded', 'cancelled', 'skipped'], true, 'cancelled'],
    ];
    for (const [stages, cancel, want] of cases) assert.equal(workflowState(stages, cancel), want, JSON.stringify([stages, cancel]));
  });

  it('deriveJobState for stages: waiting, held items, skipped, partial skip', () => {
    const g = (o: Partial<StageProgress>) => stageStatus(progressOf(o));
    assert.equal(g({}), 'waiting');
    assert.equal(g({ skipReason: 'x' }), 'skipped');
    assert.equal(g({ cancelRequested: true }), 'cancelled');
    assert.equal(g({ released: true, taskCount: 3 }), 'waiting', 'released per-item stage, nothing upstream succeeded yet');
    assert.equal(g({ released: true, taskCount: 3, counts: counts({ succeeded: 1 }) }), 'running', 'some items done, others held');
    assert.equal(g({ released: true, taskCount: 3, counts: counts({ succeeded: 2 }), skipReason: 'x' }), 'skipped');
    assert.equal(g({ released: true, taskCount: 3, counts: counts({ succeeded: 1, failed: 1 }), skipReason: 'x' }), 'failed');
    assert.equal(g({ released: true, taskCount: 0, skipReason: 'nothing to fan out over' }), 'skipped');
    assert.equal(g({ released: true, taskCount: 3, counts: counts({ succeeded: 1 }), cancelRequested: true }), 'cancelled');
    assert.equal(deriveJobState(counts({ succeeded: 2 })), 'succeeded', 'a plain job');
  });
});

// ─── release order: random workflows, random outcomes ────────────────────────────────────────────────────────
interface SimTask { state: TaskState }
/**
 * Runs a random workflow the way a Store does: planWorkflow until it returns nothing after every change,
 * itemReleases after every task success; tasks start and end in a random order, each stage's failing tasks
 * chosen up front; optionally the workflow is cancelled at a random moment.
 */
function simulate(seed: number, withCancel: boolean): void {
  const rng = rngOf(seed);
  const n = rng.int(1, 8);
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  const stages: Record<string, Record<string, unknown>> = {};
  const failing = new Map<string, Set<number>>();
  const count = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const needs = names.slice(0, i).filter(() => rng.chance(0.4));
    const each = needs.length > 0 && rng.chance(0.35) ? rng.pick(needs) : null;
    const k = each ? count.get(each)! : rng.int(1, 3);
    count.set(names[i]!, k);
    stages[names[i]!] = st({ ...(needs.length ? { needs } : {}), ...(each ? { each } : k > 1 ? { array: k } : {}) });
    const f = new Set<number>();
    if (rng.chance(0.25)) for (let t = 0; t < k; t++) if (rng.chance(0.5) || (t === k - 1 && f.size === 0)) f.add(t);
    failing.set(names[i]!, f);
  }
  const wf: CompiledWorkflow = compileWorkflowSpec(wfOf(stages));
  const by = new Map(wf.stages.map((s) => [s.name, s]));
  const tasks = new Map(wf.stages.map((s) => [s.name, new Map<number, SimTask>()]));
  const gate = new Map(wf.stages.map((s) => [s.name, { released: false, skipReason: null as string | null, cancelRequested: false }]));
  let cancelled = false;
  const cancelAt = withCancel ? rng.int(0, 12) : -1;
  const ctx = (what: string): string => `seed ${seed}${withCancel ? ' (cancel)' : ''}: ${what}\n${JSON.stringify(stages)} failing ${JSON.stringify([...failing].map(([k, v]) => [k, [...v]]))}`;

  const progress = (): Map<string, StageProgress> =>
    new Map(wf.stages.map((s) => {
      const c = emptyTaskCounts();
      for (const t of tasks.get(s.name)!.values()) c[t.state]++;
      return [s.name, { ...gate.get(s.name)!, taskCount: s.job.taskCount, counts: c }];
    }));
  const status = (name: string): StageStatus => stageStatus(progress().get(name)!);
  const create = (stage: string, index: number): void => {
    assert.ok(!tasks.get(stage)!.has(index), ctx(`task ${stage}[${index}] created twice`));
    assert.ok(!gate.get(stage)!.cancelRequested && !cancelled, ctx(`task ${stage}[${index}] created after the cancel`));
    const each = by.get(stage)!.each;
    if (each) assert.equal(tasks.get(each)!.get(index)?.state, 'succeeded', ctx(`${stage}[${index}] created before ${each}[${index}] succeeded`));
    tasks.get(stage)!.set(index, { state: 'queued' });
  };
  const advance = (): void => {
    for (let round = 0; ; round++) {
      assert.ok(round < 50, ctx('planWorkflow does not settle'));
      const plan = planWorkflow(wf, progress(), cancelled);
      if (plan.release.length === 0 && plan.skip.length === 0) return;
      for (const s of plan.skip) {
        assert.equal(gate.get(s.stage)!.skipReason, null, ctx(`${s.stage} skipped twice`));
        gate.get(s.stage)!.skipReason = s.reason;
        if (cancelled) gate.get(s.stage)!.cancelRequested = true;
      }
      for (const name of plan.release) {
        const s = by.get(name)!;
        assert.ok(!gate.get(name)!.released, ctx(`${name} released twice`));
        for (const d of s.needs) if (d !== s.each) assert.equal(status(d), 'succeeded', ctx(`${name} released before its need ${d} succeeded`));
        gate.get(name)!.released = true;
        if (s.each) {
          for (const [k, t] of tasks.get(s.each)!) if (t.state === 'succeeded') create(name, k);
        } else for (let k = 0; k < s.job.taskCount; k++) create(name, k);
      }
    }
  };

  advance();
  for (let step = 0; ; step++) {
    if (step === cancelAt) {
      // As requestWorkflowCancel does: every unfinished stage's cancel requested, its queued tasks cancelled.
      cancelled = true;
      for (const s of wf.stages) {
        const state = status(s.name);
        if (state === 'succeeded' || state === 'failed' || state === 'skipped') continue;
        gate.get(s.name)!.cancelRequested = true;
        for (const t of tasks.get(s.name)!.values()) if (t.state === 'queued') t.state = 'cancelled';
      }
      advance();
    }
    const live = [...tasks].flatMap(([stage, m]) => [...m].filter(([, t]) => t.state === 'queued' || t.state === 'running').map(([k, t]) => ({ stage, k, t })));
    if (live.length === 0) break;
    const { stage, k, t } = rng.pick(live);
    if (t.state === 'queued') {
      t.state = 'running';
      continue;
    }
    const ok = !failing.get(stage)!.has(k);
    t.state = ok ? 'succeeded' : gate.get(stage)!.cancelRequested ? 'cancelled' : 'failed';
    if (ok) for (const next of itemReleases(wf, progress(), stage)) if (!tasks.get(next)!.has(k)) create(next, k);
    advance();
  }

  // Every stage ends terminal; the workflow's state follows from them.
  const final = new Map(wf.stages.map((s) => [s.name, status(s.name)]));
  for (const [name, s] of final) assert.ok(isTerminalStage(s), ctx(`${name} ended ${s}`));
  const ws = workflowState([...final.values()], cancelled);
  if (cancelled) {
    assert.equal(ws, 'cancelled', ctx('workflow state'));
    return;
  }
  // Without a cancel the outcome is fully determined by the graph and the failing tasks, whatever the order.
  const expected = new Map<string, StageStatus>();
  for (const s of wf.stages) {
    const g = gate.get(s.name)!;
    const mine = tasks.get(s.name)!;
    const broken = s.needs.filter((d) => d !== s.each && expected.get(d) !== 'succeeded');
    const upOk = s.each === null || expected.get(s.each) === 'succeeded';
    if (broken.length > 0) {
      assert.equal(final.get(s.name), 'skipped', ctx(`${s.name} should be skipped (needs ${broken.join(', ')})`));
      assert.equal(mine.size, 0, ctx(`${s.name} ran tasks although ${broken.join(', ')} did not succeed`));
      assert.ok(g.skipReason && s.needs.some((d) => expected.get(d) !== 'succeeded' && g.skipReason!.includes(`"${d}"`)), ctx(`${s.name}: reason "${g.skipReason}" names no failed need`));
      expected.set(s.name, 'skipped');
      continue;
    }
    if (!upOk) {
      // Per-item: exactly the items whose upstream task succeeded ran; the stage says why the rest did not.
      const upDone = [...tasks.get(s.each!)!].filter(([, t]) => t.state === 'succeeded').map(([k]) => k).sort();
      assert.deepEqual([...mine.keys()].sort(), upDone, ctx(`${s.name} ran the items whose ${s.each} task succeeded`));
      assert.ok(g.skipReason?.includes(`"${s.each}"`), ctx(`${s.name}: reason "${g.skipReason}" does not name ${s.each}`));
      const want: StageStatus = upDone.some((k) => failing.get(s.name)!.has(k)) ? 'failed' : 'skipped';
      assert.equal(final.get(s.name), want, ctx(`${s.name} state`));
      expected.set(s.name, want);
      continue;
    }
    assert.equal(mine.size, s.job.taskCount, ctx(`${s.name} ran all its tasks`));
    assert.equal(g.skipReason, null, ctx(`${s.name} has no skip reason`));
    const want: StageStatus = failing.get(s.name)!.size > 0 ? 'failed' : 'succeeded';
    assert.equal(final.get(s.name), want, ctx(`${s.name} state`));
    expected.set(s.name, want);
  }
  assert.equal(ws, [...expected.values()].every((s) => s === 'succeeded') ? 'succeeded' : 'failed', ctx('workflow state'));
}

describe('release order (seeded random workflows and outcomes)', () => {
  it(`a stage starts only after its needs succeeded, everything ends, failures skip what is downstream (${SEEDS} runs)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) simulate(seed, false);
  });
  it(`a workflow cancelled at a random moment creates nothing more and ends cancelled (${SEEDS} runs)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) simulate(seed, true);
  });
});

// ─── artifacts ───────────────────────────────────────────────────────────────────────────────────────────────
describe('artifacts: resolving { from, path } inputs and fan-outs over files', () => {
  const sha = (c: string) => c.repeat(64);
  const out = (taskIndex: number, path: string, c = 'a'): StageOutput => ({ taskIndex, path, size: 1, sha256: sha(c) });
  const wf = compileWorkflowSpec(wfOf({
    split: st({ array: ['x', 'y*'], outputs: ['parts/*'] }),
    one: st({ needs: ['split'], each: 'split', inputs: ['local.txt', { from: 'split', path: 'parts/${DSG_TASK_INDEX}.txt' }] }),
    byval: st({ needs: ['split'], each: 'split', inputs: [{ from: 'split', path: 'parts/${DSG_ARRAY_VALUE}.txt' }] }),
    all: st({ needs: ['split'], inputs: [{ from: 'split' }] }),
    files: st({ needs: ['split'], array: { from: 'split', path: 'parts/*.txt' } }),
  }));
  const job = (n: string) => wf.stages.find((s) => s.name === n)!.job;

  it('substitutes the task index and an escaped array value, so a value cannot widen the glob', () => {
    assert.equal(substituteArtifactPath('p/${DSG_TASK_INDEX}-${DSG_TASK_INDEX}.txt', 7, null), 'p/7-7.txt');
    assert.equal(substituteArtifactPath('p/${DSG_ARRAY_VALUE}.txt', 1, 'y*'), 'p/y\\*.txt');
    assert.equal(substituteArtifactPath('p/${DSG_ARRAY_VALUE}.txt', 3, null), 'p/3.txt');
  });

  it('resolves each task\'s own piece, by index or by value', () => {
    const outs = [out(0, 'parts/0.txt', 'a'), out(1, 'parts/1.txt', 'b'), out(0, 'parts/x.txt', 'c'), out(1, 'parts/y*.txt', 'd'), out(1, 'parts/yy.txt', 'e')];
    const r = resolveArtifacts(job('one'), { index: 1, arrayValue: 'y*' }, () => outs, new Set(['local.txt']));
    assert.deepEqual(r, { ok: true, value: [{ path: 'parts/1.txt', sha256: sha('b'), size: 1, mode: 0o644 }] });
    const v = resolveArtifacts(job('byval'), { index: 1, arrayValue: 'y*' }, () => outs, new Set());
    assert.deepEqual(v, { ok: true, value: [{ path: 'parts/y*.txt', sha256: sha('d'), size: 1, mode: 0o644 }] }, 'the * in the value is literal');
    const all = resolveArtifacts(job('all'), { index: 0, arrayValue: null }, () => outs, new Set());
    assert.ok(all.ok);
    assert.deepEqual(all.value.map((f) => f.path), ['parts/0.txt', 'parts/1.txt', 'parts/x.txt', 'parts/y*.txt', 'parts/yy.txt']);
  });

  it('fails with a message naming the input when nothing matches, two tasks made the same path, or a local input is shadowed', () => {
    assert.deepEqual(resolveArtifacts(job('one'), { index: 5, arrayValue: null }, () => [out(0, 'parts/0.txt')], new Set()), {
      ok: false, message: 'inputs[1] (from split, path parts/${DSG_TASK_INDEX}.txt): no output of stage "split" matched "parts/5.txt"',
    });
    assert.deepEqual(resolveArtifacts(job('all'), { index: 0, arrayValue: null }, () => [out(0, 'r.txt', 'a'), out(1, 'r.txt', 'b')], new Set()), {
      ok: false,
      message: 'inputs[0] (from split): tasks 0 and 1 of stage "split" both produced "r.txt"; give each task its own file name (e.g. with $DSG_TASK_INDEX) or pick one with path:',
    });
    assert.deepEqual(resolveArtifacts(job('one'), { index: 0, arrayValue: null }, () => [out(0, 'parts/0.txt')], new Set(['parts/0.txt'])), {
      ok: false, message: 'inputs[1] (from split, path parts/${DSG_TASK_INDEX}.txt) brings "parts/0.txt", which is also one of the stage\'s own inputs',
    });
  });

  it('fans out over output files, sorted, each task getting its own file', () => {
    const outs = [out(1, 'parts/b.txt', 'b'), out(0, 'parts/a.txt', 'a'), out(0, 'parts/skip.csv', 'c')];
    assert.deepEqual(filesFanOut(job('files'), outs), { ok: true, value: ['parts/a.txt', 'parts/b.txt'] });
    assert.deepEqual(resolveArtifacts(job('files'), { index: 1, arrayValue: 'parts/b.txt' }, () => outs, new Set()), {
      ok: true, value: [{ path: 'parts/b.txt', sha256: sha('b'), size: 1, mode: 0o644 }],
    });
    assert.deepEqual(filesFanOut(job('files'), [out(0, 'parts/x.csv')]), { ok: false, message: 'nothing to fan out over: no output of stage "split" matched "parts/*.txt"' });
    assert.equal(selectOutputs('split', [out(0, 'a'), out(0, 'a')], null).ok, true, 'the same task listing a path twice is not a clash');
  });

  it('refuses a fan-out over more files than a stage may have tasks (MAX_ARRAY)', () => {
    const many = Array.from({ length: MAX_ARRAY + 1 }, (_, i) => out(i % 1000, `parts/${i}.txt`));
    const r = filesFanOut(job('files'), many);
    assert.equal(r.ok, false);
    assert.match((r as { message: string }).message, /too many files to fan out over: stage "split" has 1000001 matching outputs, and one stage makes at most 1,000,000 tasks/);
  });
});
