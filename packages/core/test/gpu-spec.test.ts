// GPUs in the spec (resources.gpus / resources.gpu with shared), the request they make, the version facts `cuda` and
// `gpu.driver`, and the ledger's GPU units. Table-driven; every refusal names its path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileConstraints, compileJobSpec, gpuDeviceUse, gpuRequestOf, gpuUnits, matches, NodeFactsSchema, nodeAttributes, ValidationError, type Issue, type NodeFacts } from '@dsg/core';

const GiB = 1024 ** 3;
const refused = (resources: unknown): Issue[] => {
  try {
    compileJobSpec({ name: 'g', script: 'true', resources });
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return [...e.issues];
  }
  return [];
};

describe('resources.gpu in the spec', () => {
  const bad: Array<[string, unknown, RegExp, RegExp]> = [
    ['shared without memory', { gpu: { shared: true } }, /resources\.gpu\.memory/, /a shared GPU needs memory/],
    ['count 0', { gpu: { count: 0 } }, /resources\.gpu\.count/, /at least 1 GPU/],
    ['count 65', { gpu: { count: 65 } }, /resources\.gpu\.count/, /at most 64/],
    ['a regex for a model', { gpu: { model: 'A100.*' } }, /resources\.gpu\.model/, /plain model names/],
    ['an empty alternative', { gpu: { model: 'A100||H100' } }, /resources\.gpu\.model/, /none empty/],
    ['both gpus and gpu', { gpus: 1, gpu: { count: 1 } }, /resources\.gpu/, /not both/],
    ['shared not a boolean', { gpu: { memory: '8Gi', shared: 'yes' } }, /resources\.gpu\.shared/, /shared: true or false/],
    ['an unknown field', { gpu: { vram: '8Gi' } }, /resources\.gpu/, /vram|unrecognized|unknown/i],
  ];
  for (const [name, r, path, msg] of bad) it(`refuses ${name}`, () => {
    const issues = refused(r);
    const hit = issues.find((i) => path.test(i.path) && msg.test(i.message));
    assert.ok(hit, JSON.stringify(issues));
  });

  it('gpus: N is N whole GPUs; gpu without shared is exclusive with conditions', () => {
    const a = compileJobSpec({ name: 'a', script: 'true', resources: { gpus: 2 } });
    assert.deepEqual(gpuRequestOf(a.resources, a.gpu), { count: 2, shared: false, memoryBytes: null, models: null });
    const b = compileJobSpec({ name: 'b', script: 'true', resources: { gpu: { count: 1, memory: '16Gi', model: 'RTX 4090|A100' } } });
    assert.equal(b.resources.gpus, 1);
    assert.deepEqual(gpuRequestOf(b.resources, b.gpu), { count: 1, shared: false, memoryBytes: 16 * GiB, models: ['RTX 4090', 'A100'] });
  });

  it('a shared GPU is not counted as a whole one: packed by its declared memory', () => {
    const c = compileJobSpec({ name: 'c', script: 'true', resources: { gpu: { memory: '8Gi', shared: true } } });
    assert.equal(c.resources.gpus, 0, 'shares do not take whole GPUs from the count');
    assert.deepEqual(c.gpu, { memoryBytes: 8 * GiB, models: null, shared: true, count: 1 });
    assert.deepEqual(gpuRequestOf(c.resources, c.gpu), { count: 1, shared: true, memoryBytes: 8 * GiB, models: null });
    assert.equal(gpuRequestOf(compileJobSpec({ name: 'd', script: 'true' }).resources, undefined), null);
  });
});

describe('version facts: cuda and gpu.driver', () => {
  const facts = (cuda?: string): NodeFacts => ({
    hostname: 'h', os: 'linux 6.1', arch: 'x64', cpuModel: 'x', cores: 8, memoryBytes: 8 * GiB, diskBytes: 0, isolation: 'none',
    gpus: [{ index: 0, model: 'NVIDIA A100-SXM4-80GB', memoryBytes: 80 * GiB, uuid: null, vendor: 'nvidia', driverVersion: '535.154.05', ...(cuda ? { cudaVersion: cuda } : {}) }],
  });
  const holds = (cond: Record<string, unknown>, f: NodeFacts): boolean => {
    const issues: Issue[] = [];
    const cs = compileConstraints(cond, 'constraints', issues);
    assert.deepEqual(issues, []);
    return cs.every((c) => matches(c, nodeAttributes({}, f)));
  };
  const table: Array<[Record<string, unknown>, string | undefined, boolean]> = [
    [{ cuda: '>= 12.2' }, '12.4', true],
    [{ cuda: '>= 12.2' }, '12.10', true],
    [{ cuda: '>= 12.2' }, '11.8', false],
    [{ cuda: '< 12' }, '11.8', true],
    [{ cuda: '>= 12.2' }, undefined, false],
    [{ cuda: '*' }, undefined, false],
    [{ cuda: '12.4' }, '12.4', true],
    [{ 'gpu.driver': '>= 535.100' }, '12.2', true],
    [{ 'gpu.driver': '>= 550' }, '12.2', false],
    [{ 'gpu.vendor': 'nvidia' }, '12.2', true],
  ];
  for (const [cond, cuda, ok] of table) it(`${JSON.stringify(cond)} on CUDA ${cuda ?? 'none'}: ${ok}`, () => assert.equal(holds(cond, facts(cuda)), ok));
  it('a version comparison needs a version', () => {
    const issues: Issue[] = [];
    compileConstraints({ cuda: '>= 16Gi' }, 'constraints', issues);
    assert.match(issues[0]?.message ?? '', /not a version like 12.2/);
  });
});

describe('gpuUnits (ledger GPU-seconds per second)', () => {
  it('counts whole devices as 1, shares as their fraction of the device memory, and falls back to the count', () => {
    const mem = (i: number): number | undefined => (i === 0 ? 24 * GiB : undefined);
    assert.equal(gpuUnits([{ index: 0, memoryBytes: null }, { index: 1, memoryBytes: null }], 2, mem), 2);
    assert.equal(gpuUnits([{ index: 0, memoryBytes: 8 * GiB }], 0, mem), 1 / 3);
    assert.equal(gpuUnits([{ index: 5, memoryBytes: 8 * GiB }], 0, mem), 1, 'an unknown device counts whole');
    assert.equal(gpuUnits(null, 3, mem), 3);
  });
});

describe('GPU facts from an agent (untrusted)', () => {
  const facts = (gpus: unknown[]) => ({ hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 1, memoryBytes: 1, diskBytes: 0, gpus });
  const gpu = (index: number) => ({ index, model: 'X', memoryBytes: GiB, uuid: null });
  it('refuses repeated indexes (one device would be counted twice), more than 64 GPUs and over-long fields', () => {
    assert.equal(NodeFactsSchema.safeParse(facts([gpu(0), gpu(1)])).success, true);
    assert.match(JSON.stringify(NodeFactsSchema.safeParse(facts([gpu(0), gpu(0)])).error?.issues), /GPU indexes must be unique/);
    assert.equal(NodeFactsSchema.safeParse(facts(Array.from({ length: 65 }, (_, i) => gpu(i)))).success, false);
    assert.equal(NodeFactsSchema.safeParse(facts([{ ...gpu(0), cudaVersion: 'x'.repeat(41) }])).success, false);
  });
  it('device state keeps the first of a repeated index (rows stored before the check)', () => {
    assert.equal(gpuDeviceUse([gpu(0), gpu(0)], []).length, 1);
  });
});
