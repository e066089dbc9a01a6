// Fuzzing the spec parser and the workflow compiler with generated inputs (fast-check): random JSON-ish values and
// random mutations of valid specs. Whatever comes in, the answer is a compiled spec or a ValidationError whose every
// issue says where (a path) and what — never another exception (a TypeError from a shape the code did not expect).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileJobSpec, compileWorkflowSpec, ValidationError } from '@dsg/core';

const VALID_JOBS: Array<Record<string, unknown>> = [
  { name: 'pi', script: 'echo $DSG_TASK_INDEX', array: 10, resources: { cpu: 1, memory: '256Mi' }, inputs: ['pi.py'], outputs: ['out/*.json'], timeout: '5m', retries: 2, env: { SAMPLES: '1000' } },
  { name: 'sim', command: ['python3', 'sim.py'], array: [0.1, 'b', true], resources: { cpu: 0.5, memory: '1G' } },
  { name: 'm', script: 'run', matrix: { a: [1, 2], b: ['x', 'y'] }, project: 'climate' },
];
const VALID_WORKFLOWS: Array<Record<string, unknown>> = [
  { name: 'w', stages: { a: { script: 'echo a > a.txt', outputs: ['a.txt'] }, b: { needs: ['a'], script: 'cat a.txt', inputs: [{ from: 'a' }] } } },
  { name: 'w2', stages: { only: { command: ['true'], array: 3 } } },
];

/** A value like what YAML or JSON gives: objects, arrays, strings, numbers (also odd ones), booleans, null. */
const yamlish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string(), fc.constantFrom('', '5m', '256Mi', '-1', '1e309', '../x', '/etc/passwd', 'a\u0000b', '__proto__', 'constructor', '*', '**/*'),
    fc.integer(), fc.double(), fc.constantFrom(0, -1, 2 ** 53, 1e308, Number.NaN, Number.POSITIVE_INFINITY),
    fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('name', 'script', 'command', 'array', 'matrix', 'resources', 'env', 'inputs', 'outputs', 'needs', 'stages', 'from', '__proto__')), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** A valid spec with one place changed: a member replaced, removed, or added, at any depth. */
function mutate(base: Record<string, unknown>): fc.Arbitrary<unknown> {
  return fc.tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.constantFrom('set', 'delete', 'add'), yamlish, fc.string({ maxLength: 12 })).map(([picks, op, value, key]) => {
    const root = structuredClone(base) as Record<string, unknown>;
    let node: Record<string, unknown> | unknown[] = root;
    for (const [i, pick] of picks.entries()) {
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const k = keys[pick % keys.length]!;
      const child = (node as Record<string, unknown>)[k];
      const last = i === picks.length - 1 || child === null || typeof child !== 'object';
      if (last) {
        if (op === 'set') (node as Record<string, unknown>)[k] = value;
        else if (op === 'delete') delete (node as Record<string, unknown>)[k];
        // (Adding "length" to an array would set its length, a RangeError in the generator, not in the code under test.)
        else if (!(Array.isArray(node) && key === 'length')) (node as Record<string, unknown>)[key || 'x'] = value;
        break;
      }
      node = child as Record<string, unknown>;
    }
    return root;
  });
}

function compilesOrExplains(compile: (v: unknown) => unknown, v: unknown): void {
  try {
    compile(v);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw new Error(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} for ${safe(v)}`);
    assert.ok(e.issues.length > 0, 'a ValidationError lists its issues');
    for (const i of e.issues) {
      assert.equal(typeof i.path, 'string', `issue without a path: ${JSON.stringify(i)}`);
      assert.ok(i.message.length > 0, `issue without a message: ${JSON.stringify(i)}`);
    }
  }
}
const safe = (v: unknown) => {
  try {
    return JSON.stringify(v)?.slice(0, 300);
  } catch {
    return String(v);
  }
};

// Counts: 2,500 + 2,500 + 1,500 + 1,500 = 8,000 cases here (the API and protocol fuzzers add the rest).
describe('fuzz: spec parser and workflow compiler', () => {
  it('the valid seeds compile', () => {
    for (const j of VALID_JOBS) compileJobSpec(j);
    for (const w of VALID_WORKFLOWS) compileWorkflowSpec(w);
  });
  it('random values to compileJobSpec: compiled or a ValidationError with paths', () => {
    fc.assert(fc.property(yamlish, (v) => compilesOrExplains(compileJobSpec, v)), { numRuns: 2500 });
  });
  it('mutations of valid job specs: compiled or a ValidationError with paths', () => {
    fc.assert(fc.property(fc.constantFrom(...VALID_JOBS).chain(mutate), (v) => compilesOrExplains(compileJobSpec, v)), { numRuns: 2500 });
  });
  it('random values to compileWorkflowSpec', () => {
    fc.assert(fc.property(fc.oneof(yamlish, yamlish.map((s) => ({ name: 'w', stages: s }))), (v) => compilesOrExplains(compileWorkflowSpec, v)), { numRuns: 1500 });
  });
  it('mutations of valid workflows', () => {
    fc.assert(fc.property(fc.constantFrom(...VALID_WORKFLOWS).chain(mutate), (v) => compilesOrExplains(compileWorkflowSpec, v)), { numRuns: 1500 });
  });
});
