// The chaos workload as a test: every fault of `npm run chaos` (agent killed, cut off, frozen; coordinator killed
// and restarted; node drained) on a smaller workload with 16 s faults (longer than the 15 s bound, so a slow requeue
// is measured rather than missed). Each must end with 0 tasks lost, 0 tasks
// with two successful attempts and 0 outputs missing; a dead, cut-off or frozen agent's tasks run elsewhere within
// 15 s. Needs root, iproute2 and nftables: skipped loudly without them, except under CI=true.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chaosMissing, runChaos } from './chaos-lib.js';

const CI = process.env['CI'] === 'true';

describe('fault tolerance under load on network-namespace hosts', { timeout: 600_000 }, () => {
  const missing = chaosMissing();
  if (missing.length > 0) {
    if (CI) it('has what the chaos test needs', () => assert.fail(`missing: ${missing.join(', ')}`));
    else it.skip(`SKIPPED LOUDLY: the chaos test needs ${missing.join(', ')}`);
    return;
  }
  it('every fault: 0 lost, 0 duplicated, 0 outputs missing; requeue within 15 s', () => {
    const results = runChaos({ tasks: 300, faultSeconds: 16 });
    for (const r of results) {
      console.log(`${r.fault}: requeue ${r.requeueSeconds?.toFixed(1)} s, lost ${r.lost}, duplicated ${r.duplicated}, missing ${r.missingOutputs}, ${r.attemptsRetried} retried, ${r.totalSeconds.toFixed(1)} s`);
      assert.deepEqual([r.lost, r.duplicated, r.missingOutputs], [0, 0, 0], r.fault);
      if (r.fault === 'agent-kill' || r.fault === 'agent-cut' || r.fault === 'agent-stop') assert.ok(r.requeueSeconds !== null && r.requeueSeconds <= 15, r.requeueSeconds === null ? `${r.fault}: its tasks were not requeued during the 16 s fault` : `${r.fault}: requeued after ${r.requeueSeconds} s`);
    }
    assert.equal(results.length, 5);
  });
});
