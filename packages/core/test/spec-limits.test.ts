// Size limits in a spec (issue 7, "Limits and quotas"): each refused with a ValidationError at its path, and the
// largest accepted value still compiles. Other limits are tested where they are enforced: request body size (413,
// coordinator api.test.ts), upload size and per-attempt output quota and log bytes (e2e/rogue-node.test.ts,
// coordinator log-store.test.ts), inputs count and tasks per job (below), nodes per join token and
// coordinator-enforced timeouts (e2e/rogue-node.test.ts); see docs/SECURITY.md.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentMessage, compileJobSpec, MAX_ARRAY, SPEC_LIMITS, ValidationError, PROTOCOL_VERSION } from '@dsg/core';

function refusedAt(spec: Record<string, unknown>, path: RegExp): string {
  try {
    compileJobSpec({ name: 'l', ...spec });
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    const hit = e.issues.find((i) => path.test(i.path));
    assert.ok(hit, `expected an issue at ${path}, got ${JSON.stringify(e.issues)}`);
    return hit.message;
  }
  assert.fail('expected a ValidationError');
}

describe('spec size limits', () => {
  // Script, command and environment sizes: spawn-limits.test.ts (one argument 127 KiB, 4096 variables, 1 MiB in all).
  it('script, command and environment: bounded by the spawn limits', () => {
    assert.match(refusedAt({ script: 'x'.repeat(200 * 1024) }, /script/), /at most 127 KiB/);
    assert.match(refusedAt({ command: ['a', 'x'.repeat(200 * 1024)] }, /command/), /KiB/);
    assert.match(refusedAt({ script: 'true', env: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`V${i}`, '1'])) }, /env/), /4096|variables/);
  });
  it('constraints and prefer: at most 100 conditions', () => {
    const many = Object.fromEntries(Array.from({ length: SPEC_LIMITS.conditions + 1 }, (_, i) => [`l${i}`, 'x']));
    assert.match(refusedAt({ script: 'true', constraints: many }, /constraints/), /at most 100 conditions/);
    assert.match(refusedAt({ script: 'true', prefer: many }, /prefer/), /at most 100 preferences/);
  });
  it('inputs: at most 10,000 entries; tasks per job: at most 1,000,000', () => {
    refusedAt({ script: 'true', inputs: Array.from({ length: 10_001 }, (_, i) => `f${i}`) }, /inputs/);
    refusedAt({ script: 'true', array: MAX_ARRAY + 1 }, /array/);
    refusedAt({ script: 'true', matrix: { a: Array.from({ length: 1000 }, (_, i) => i), b: Array.from({ length: 1001 }, (_, i) => i) } }, /matrix/);
  });
  it('node labels in a hello: at most 100, keys 100 and values 1000 characters', () => {
    const GiB = 1024 ** 3;
    const hello = (labels: Record<string, string>) => AgentMessage.safeParse({
      type: 'hello', protocol: PROTOCOL_VERSION, nodeId: null, name: 'n', agentVersion: 't',
      capacity: { cpuMillis: 1000, memoryBytes: GiB, gpus: 0, diskBytes: GiB },
      facts: { hostname: 'n', os: 'linux', arch: 'x64', cpuModel: 'x', cores: 1, memoryBytes: GiB, diskBytes: GiB, gpus: [] },
      labels, running: [],
    }).success;
    assert.equal(hello({ room: 'lab2' }), true);
    assert.equal(hello(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`l${i}`, 'x']))), false);
    assert.equal(hello({ ['k'.repeat(101)]: 'x' }), false);
    assert.equal(hello({ k: 'v'.repeat(1001) }), false);
  });
});
