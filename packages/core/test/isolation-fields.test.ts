// The fields the task sandbox added to core: `network` in the spec (carried to the agent), `memory_limit` as a
// user failure, and the node's isolation level in its facts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyEnd, compileJobSpec, decideAfterAttempt, HelloMessage, ValidationError } from '@dsg/core';

describe('spec: network', () => {
  it('is absent (no network) by default and true when asked', () => {
    assert.equal(compileJobSpec({ name: 'a', script: 'true' }).network, undefined);
    assert.equal(compileJobSpec({ name: 'a', script: 'true', network: true }).network, true);
    assert.equal(compileJobSpec({ name: 'a', script: 'true', network: false }).network, undefined);
  });
  it('anything but true or false is refused with its path', () => {
    assert.throws(() => compileJobSpec({ name: 'a', script: 'true', network: 'yes' }), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.issues.map((i) => [i.path, i.message]), [['network', 'expected true or false']]);
      return true;
    });
  });
});

describe('outcome: memory_limit', () => {
  it('is a user failure, retried only as the spec says', () => {
    const end = { kind: 'error', reason: 'memory_limit', message: 'exceeded its memory limit of 256Mi' } as const;
    assert.deepEqual(classifyEnd(end), { kind: 'user', reason: 'memory_limit', message: 'exceeded its memory limit of 256Mi' });
    assert.equal(decideAfterAttempt(end, { userFailures: 0, systemFailures: 0 }, { retries: 0, maxSystemRetries: 3 }).retry, false);
    assert.equal(decideAfterAttempt(end, { userFailures: 0, systemFailures: 0 }, { retries: 1, maxSystemRetries: 3 }).retry, true);
  });
});

describe('protocol: facts.isolation', () => {
  const hello = (facts: Record<string, unknown>) => ({
    type: 'hello', protocol: 1, nodeId: null, name: 'n', agentVersion: 'x', capacity: { cpuMillis: 1, memoryBytes: 1, gpus: 0, diskBytes: 0 },
    facts: { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 1, memoryBytes: 1, diskBytes: 0, gpus: [], ...facts }, labels: {}, running: [],
  });
  it('is optional (older agents) and one of the known levels', () => {
    assert.equal(HelloMessage.parse(hello({})).facts.isolation, undefined);
    assert.equal(HelloMessage.parse(hello({ isolation: 'sandbox+cgroups' })).facts.isolation, 'sandbox+cgroups');
    assert.throws(() => HelloMessage.parse(hello({ isolation: 'total' })));
  });
});
