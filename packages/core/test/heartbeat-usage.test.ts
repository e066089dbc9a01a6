import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseAgentFrame } from '@dsg/core';

it('a heartbeat may carry the machine\'s load and memory in use, validated and bounded; older agents send none', () => {
  const [hb] = parseAgentFrame(JSON.stringify({ type: 'heartbeat', running: [], usage: { load1: 1.25, memoryUsedBytes: 2 ** 30 } }));
  assert.deepEqual(hb, { type: 'heartbeat', running: [], usage: { load1: 1.25, memoryUsedBytes: 2 ** 30 } });
  assert.deepEqual(parseAgentFrame('{"type":"heartbeat","running":[]}'), [{ type: 'heartbeat', running: [] }]);
  for (const usage of [{ load1: -1, memoryUsedBytes: 0 }, { load1: 1e9, memoryUsedBytes: 0 }, { load1: 0, memoryUsedBytes: 1.5 }, { load1: 0 }, { load1: 'high', memoryUsedBytes: 0 }])
    assert.throws(() => parseAgentFrame(JSON.stringify({ type: 'heartbeat', running: [], usage })), Error, JSON.stringify(usage));
});
