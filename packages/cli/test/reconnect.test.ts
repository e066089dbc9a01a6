// The Reconnector's schedule and messages, on a fake clock: backoff 0.2 s doubling to 5 s, one "unreachable"
// line per outage, one "back" line, and giving up (with the time in the message) only after the give-up time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DsgError } from '@dsg/core';
import { Interrupted, Reconnector, type ReconnectOptions } from '@dsg/cli';

function fakeWorld(giveUpAfterMs: number, more: Partial<ReconnectOptions> = {}) {
  let now = 1_000_000;
  const sleeps: number[] = [];
  const lines: string[] = [];
  const r = new Reconnector({
    giveUpAfterMs,
    giveUpSource: 'default',
    url: 'http://127.0.0.1:7070',
    resumeHint: '`dsg wait job_x` waits again.',
    say: (l) => lines.push(l),
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    ...more,
  });
  return { r, sleeps, lines, advance: (ms: number) => (now += ms) };
}

const refused = () => new DsgError('unavailable', 'cannot reach the coordinator at http://127.0.0.1:7070: ECONNREFUSED. Is it running? Start a grid with `npm start` or `dsg up`.');

/** Fails with "unreachable" `n` times, then answers `value`. */
function flaky<T>(n: number, value: T): () => Promise<T> {
  let calls = 0;
  return async () => {
    if (calls++ < n) throw refused();
    return value;
  };
}

describe('Reconnector', () => {
  it('retries with backoff from 0.2 s doubling to 5 s, says once that it keeps trying, and once that it is back', async () => {
    const w = fakeWorld(300_000);
    assert.equal(await w.r.call(flaky(9, 'ok')), 'ok');
    assert.deepEqual(w.sleeps, [200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
    assert.equal(w.lines.length, 2, w.lines.join('\n'));
    assert.equal(w.lines[0], 'the coordinator at http://127.0.0.1:7070 is unreachable (ECONNREFUSED); still trying, for up to 5m (change it with --give-up-after or DSG_GIVE_UP_AFTER)');
    assert.match(w.lines[1]!, /^the coordinator is back \(unreachable for 26s\); carrying on$/);
    assert.equal(w.r.down, false);
  });

  it('starts each outage with a fresh backoff and a fresh line', async () => {
    const w = fakeWorld(300_000);
    await w.r.call(flaky(3, 1));
    await w.r.call(flaky(2, 2));
    assert.deepEqual(w.sleeps, [200, 400, 800, 200, 400]);
    assert.equal(w.lines.filter((l) => l.includes('unreachable (')).length, 2);
  });

  it('gives up after the give-up time, not before, stating the time and how to resume', async () => {
    const w = fakeWorld(30_000, { giveUpSource: '--give-up-after' });
    await assert.rejects(w.r.call(flaky(Infinity, 0)), (e: unknown) => {
      assert.ok(e instanceof DsgError && e.code === 'unavailable');
      assert.match(e.message, /^gave up: the coordinator at http:\/\/127\.0\.0\.1:7070 has been unreachable for 30s, longer than the give-up time of 30s \(from --give-up-after\)\. Last error: ECONNREFUSED\. `dsg wait job_x` waits again\.$/);
      return true;
    });
    assert.equal(w.sleeps.reduce((a, b) => a + b, 0), 30_000, 'the last sleep is cut to end exactly at the give-up time');
    assert.equal(w.lines.length, 1);
  });

  it('with a give-up time of 0 fails at once, as before', async () => {
    const w = fakeWorld(0);
    await assert.rejects(w.r.call(flaky(1, 0)), /gave up/);
    assert.deepEqual([w.sleeps, w.lines], [[], []]);
  });

  it('passes on at once any answer from the coordinator (a retry must not hide a real failure)', async () => {
    const w = fakeWorld(300_000);
    await assert.rejects(w.r.call(async () => {
      throw new DsgError('not_found', 'job job_x not found');
    }), /not found/);
    assert.deepEqual(w.sleeps, []);
  });

  it('stops waiting when its signal is aborted (Ctrl-C)', async () => {
    const stop = new AbortController();
    const w = fakeWorld(300_000, {
      sleep: async () => {
        stop.abort();
      },
    });
    await assert.rejects(w.r.call(flaky(Infinity, 0), stop.signal), (e: unknown) => e instanceof Interrupted);
  });

  it('really sleeps with the default timer', async () => {
    const r = new Reconnector({ giveUpAfterMs: 60_000, giveUpSource: 'default', url: 'u', say: () => {}, initialDelayMs: 20 });
    const t0 = Date.now();
    assert.equal(await r.call(flaky(2, 'x')), 'x');
    assert.ok(Date.now() - t0 >= 55, 'slept 20 + 40 ms');
  });
});
