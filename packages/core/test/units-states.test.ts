import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ATTEMPT_STATES,
  ATTEMPT_TRANSITIONS,
  assertTaskTransition,
  canTaskTransition,
  decideAfterAttempt,
  deriveJobState,
  emptyTaskCounts,
  parseAgentFrame,
  formatDuration,
  formatSize,
  IllegalTransitionError,
  isJobId,
  newJobId,
  parseDuration,
  parseSize,
  parseTaskId,
  TASK_STATES,
  taskIdOf,
} from '@dsg/core';

describe('units', () => {
  it('parses sizes', () => {
    assert.equal(parseSize('512Mi'), 536_870_912);
    assert.equal(parseSize('1.5Gi'), 1_610_612_736);
    assert.equal(parseSize('2G'), 2e9);
    assert.equal(parseSize('100B'), 100);
    assert.equal(parseSize('512'), null);
    assert.equal(parseSize('12 parsecs'), null);
    assert.equal(formatSize(536_870_912), '512Mi');
    assert.equal(formatSize(1_610_612_736), '1.5Gi');
  });
  it('parses durations', () => {
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('90'), null);
    assert.equal(parseDuration('5 m'), null);
    assert.equal(formatDuration(90_000), '1m30s');
  });
});

describe('ids', () => {
  it('are prefixed, sortable by time and round-trip task ids', () => {
    const a = newJobId(1_000);
    const b = newJobId(2_000);
    assert.ok(isJobId(a) && isJobId(b));
    assert.ok(a < b);
    assert.deepEqual(parseTaskId(taskIdOf(a, 42)), { jobId: a, index: 42 });
    assert.equal(parseTaskId('job_x.1'), null);
  });
});

describe('state transitions', () => {
  it('terminal task states have no way out', () => {
    for (const from of ['succeeded', 'failed', 'cancelled'] as const)
      for (const to of TASK_STATES) assert.equal(canTaskTransition(from, to), false, `${from} → ${to}`);
  });
  it('an illegal transition throws a typed error', () => {
    assert.throws(() => assertTaskTransition('succeeded', 'queued'), IllegalTransitionError);
    assert.throws(() => assertTaskTransition('queued', 'running'), IllegalTransitionError);
    assertTaskTransition('running', 'queued');
  });
  it('every attempt state is in the table', () => {
    for (const s of ATTEMPT_STATES) assert.ok(Array.isArray(ATTEMPT_TRANSITIONS[s]));
  });
  it('derives job state from task counts', () => {
    const c = emptyTaskCounts();
    c.queued = 3;
    assert.equal(deriveJobState(c), 'queued');
    c.running = 1;
    assert.equal(deriveJobState(c), 'running');
    const done = { ...emptyTaskCounts(), succeeded: 3, failed: 1 };
    assert.equal(deriveJobState(done), 'failed');
    assert.equal(deriveJobState({ ...emptyTaskCounts(), succeeded: 3 }), 'succeeded');
    assert.equal(deriveJobState({ ...emptyTaskCounts(), succeeded: 1, cancelled: 2 }, true), 'cancelled');
  });
});

describe('decideAfterAttempt', () => {
  const policy = { retries: 1, maxSystemRetries: 2 };
  it('succeeds on exit 0', () => {
    const d = decideAfterAttempt({ kind: 'exited', exitCode: 0, signal: null }, { userFailures: 0, systemFailures: 0 }, policy);
    assert.deepEqual(d, { attemptState: 'succeeded', taskState: 'succeeded', failure: null, retry: false, counted: false });
  });
  it('retries user failures only as often as the spec says', () => {
    const end = { kind: 'exited', exitCode: 3, signal: null } as const;
    assert.equal(decideAfterAttempt(end, { userFailures: 0, systemFailures: 0 }, policy).taskState, 'queued');
    const last = decideAfterAttempt(end, { userFailures: 1, systemFailures: 5 }, policy);
    assert.equal(last.taskState, 'failed');
    assert.equal(last.failure?.reason, 'exit_code');
    assert.equal(last.failure?.message, 'exited with code 3');
  });
  it('retries system failures regardless of the spec, up to the system limit', () => {
    const end = { kind: 'lost', message: 'node n1 stopped heartbeating' } as const;
    const d = decideAfterAttempt(end, { userFailures: 0, systemFailures: 1 }, { retries: 0, maxSystemRetries: 2 });
    assert.equal(d.attemptState, 'lost');
    assert.equal(d.taskState, 'queued');
    assert.equal(decideAfterAttempt(end, { userFailures: 0, systemFailures: 2 }, { retries: 0, maxSystemRetries: 2 }).taskState, 'failed');
  });
  it('classifies timeouts and signals as user failures', () => {
    assert.equal(decideAfterAttempt({ kind: 'timeout', timeoutMs: 5000 }, { userFailures: 0, systemFailures: 0 }, policy).failure?.reason, 'timeout');
    assert.equal(decideAfterAttempt({ kind: 'exited', exitCode: null, signal: 'SIGKILL' }, { userFailures: 0, systemFailures: 0 }, policy).failure?.message, 'killed by signal SIGKILL');
  });
  it('classifies missing required outputs as a user failure, retried only per the spec', () => {
    const end = { kind: 'error', reason: 'outputs_missing', message: 'output pattern "out/*.json" matched no file in the working directory' } as const;
    const first = decideAfterAttempt(end, { userFailures: 0, systemFailures: 0 }, policy);
    assert.deepEqual(first.failure, { kind: 'user', reason: 'outputs_missing', message: end.message });
    assert.equal(first.attemptState, 'failed');
    assert.equal(first.taskState, 'queued');
    // retries: 1 is used up after one user failure, whatever the system-retry budget says.
    const last = decideAfterAttempt(end, { userFailures: 1, systemFailures: 0 }, policy);
    assert.equal(last.taskState, 'failed');
    assert.equal(last.retry, false);
    assert.equal(decideAfterAttempt(end, { userFailures: 0, systemFailures: 0 }, { retries: 0, maxSystemRetries: 3 }).taskState, 'failed');
    // The other agent-reported errors stay system failures.
    for (const reason of ['executor_error', 'inputs_unavailable', 'outputs_failed'] as const)
      assert.equal(decideAfterAttempt({ kind: 'error', reason, message: 'x' }, { userFailures: 0, systemFailures: 0 }, policy).failure?.kind, 'system');
  });
  it('accepts outputs_missing in a finished report on the wire', () => {
    const [m] = parseAgentFrame(JSON.stringify({
      type: 'finished', attemptId: 'att_1', startedAt: 1, finishedAt: 2, outputs: [],
      end: { kind: 'error', reason: 'outputs_missing', message: 'output pattern "a" matched no file in the working directory' },
    }));
    assert.equal(m?.type === 'finished' && m.end.kind === 'error' ? m.end.reason : null, 'outputs_missing');
  });
  it('never retries a cancel', () => {
    const d = decideAfterAttempt({ kind: 'cancelled' }, { userFailures: 0, systemFailures: 0 }, { retries: 5, maxSystemRetries: 5 });
    assert.equal(d.taskState, 'cancelled');
    assert.equal(d.retry, false);
  });
});

describe('preempted by the machine\'s owner', () => {
  it('is a system failure that is always requeued and never counted against any retry budget', async () => {
    const { decideAfterAttempt } = await import('@dsg/core');
    const end = { kind: 'error', reason: 'preempted', message: 'owner back' } as const;
    const d = decideAfterAttempt(end, { userFailures: 0, systemFailures: 99 }, { retries: 0, maxSystemRetries: 3 });
    assert.deepEqual([d.failure?.kind, d.retry, d.taskState, d.attemptState, d.counted], ['system', true, 'queued', 'failed', false]);
    const other = decideAfterAttempt({ kind: 'error', reason: 'agent_stopped', message: 'x' }, { userFailures: 0, systemFailures: 0 }, { retries: 0, maxSystemRetries: 3 });
    assert.equal(other.counted, true);
  });
});
