import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttemptUsageWire, chargeAttempt, FinishedMessage, ledgerCsv, MAX_REPORTED_CPU_MS, sumLedger, toLedgerV1, type LedgerSums } from '../src/index.js';

const GiB = 1024 ** 3;

describe('ledger rules', () => {
  it('charges declared cores × wall when nothing was measured, the measurement when there is one', () => {
    const base = { startedAt: 1000, finishedAt: 4000, attemptState: 'succeeded', cpuMillis: 1500, memoryBytes: 2 * GiB, gpus: 2 };
    assert.deepEqual(chargeAttempt(base), { wallMs: 3000, cpuMs: 4500, cpuSource: 'declared', gpuMs: 6000, memoryByteMs: 2 * GiB * 3000, memorySource: 'declared', outcome: 'succeeded' });
    const m = chargeAttempt({ ...base, usage: { cpuMs: 123, peakMemoryBytes: 1000 } });
    assert.deepEqual([m.cpuMs, m.cpuSource, m.memoryByteMs, m.memorySource], [123, 'measured', 3_000_000, 'measured']);
  });

  it('an attempt that never started costs no time; every end but success is wasted', () => {
    const c = chargeAttempt({ startedAt: null, finishedAt: 9000, attemptState: 'lost', cpuMillis: 1000, memoryBytes: GiB, gpus: 1 });
    assert.deepEqual([c.wallMs, c.cpuMs, c.gpuMs, c.memoryByteMs, c.outcome], [0, 0, 0, 0, 'wasted']);
    for (const st of ['failed', 'lost', 'cancelled', 'preempted', 'timed_out'])
      assert.equal(chargeAttempt({ startedAt: 0, finishedAt: 1, attemptState: st, cpuMillis: 0, memoryBytes: 0, gpus: 0 }).outcome, 'wasted', st);
    // A clock that went backwards between start and finish charges nothing rather than a negative amount.
    assert.equal(chargeAttempt({ startedAt: 5000, finishedAt: 4000, attemptState: 'succeeded', cpuMillis: 1000, memoryBytes: 0, gpus: 0 }).wallMs, 0);
  });

  it('measured usage from an agent is validated and bounded; old agents send none', () => {
    assert.ok(AttemptUsageWire.safeParse({}).success);
    assert.ok(!AttemptUsageWire.safeParse({ cpuMs: -1 }).success);
    assert.ok(!AttemptUsageWire.safeParse({ cpuMs: 1.5 }).success);
    assert.ok(!AttemptUsageWire.safeParse({ cpuMs: MAX_REPORTED_CPU_MS + 1 }).success);
    assert.ok(!AttemptUsageWire.safeParse({ cpuMs: 1, extra: 1 }).success);
    const msg = { type: 'finished', attemptId: 'a', end: { kind: 'exited', exitCode: 0, signal: null }, startedAt: 1, finishedAt: 2, outputs: [] };
    assert.ok(FinishedMessage.safeParse(msg).success, 'a finished message without usage (an old agent) is accepted');
    assert.ok(FinishedMessage.safeParse({ ...msg, usage: { cpuMs: 10 } }).success);
    assert.ok(!FinishedMessage.safeParse({ ...msg, usage: { cpuMs: 'lots' } }).success);
  });

  it('aggregates groups into an exact total, in seconds and GB-seconds, and exports CSV safely', () => {
    const rows: LedgerSums[] = [
      { key: 'alpha', attempts: 3, succeededAttempts: 2, wallMs: 7001, succeededWallMs: 5000, cpuMs: 9000, cpuMeasuredAttempts: 1, gpuMs: 0, memoryByteMs: GiB * 2000 },
      { key: '=cmd,"x"', attempts: 1, succeededAttempts: 0, wallMs: 999, succeededWallMs: 0, cpuMs: 999, cpuMeasuredAttempts: 0, gpuMs: 999, memoryByteMs: 0 },
    ];
    assert.deepEqual(sumLedger(rows), { attempts: 4, succeededAttempts: 2, wallMs: 8000, succeededWallMs: 5000, cpuMs: 9999, cpuMeasuredAttempts: 1, gpuMs: 999, memoryByteMs: GiB * 2000 });
    const l = toLedgerV1('node', 0, null, rows);
    assert.equal(l.since, '1970-01-01T00:00:00.000Z');
    assert.deepEqual(l.total, {
      attempts: 4, succeededAttempts: 2, wastedAttempts: 2, wallSeconds: 8, succeededWallSeconds: 5, wastedWallSeconds: 3,
      cpuSeconds: 9.999, cpuMeasuredAttempts: 1, gpuSeconds: 0.999, memoryGbSeconds: 2,
    });
    assert.equal(ledgerCsv(l), [
      'by,key,attempts,succeeded_attempts,wasted_attempts,wall_s,succeeded_wall_s,wasted_wall_s,cpu_s,cpu_measured_attempts,gpu_s,memory_gb_s',
      'node,alpha,3,2,1,7.001,5,2.001,9,1,0,2',
      `node,"'=cmd,""x""",1,0,1,0.999,0,0.999,0.999,0,0.999,0`,
      'total,,4,2,2,8,5,3,9.999,1,0.999,2',
      '',
    ].join('\n'));
  });
});
