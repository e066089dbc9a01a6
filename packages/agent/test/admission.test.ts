import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionExecutor, FakeExecutor, type ExecSpec } from '@dsg/agent';

const spec = (cpu: number, durationMs: number, tag: string): ExecSpec => ({
  argv: [tag, String(durationMs)], cwd: '/tmp', env: {}, timeoutMs: 10_000, resources: { cpuMillis: cpu * 1000, memoryBytes: 1, gpus: 0 },
});

describe('AdmissionExecutor', () => {
  it('runs tasks only while their declared cores fit, in arrival order, starting each as another ends', async () => {
    const inner = new FakeExecutor((s) => ({ durationMs: Number(s.argv[1]) }));
    const ex = new AdmissionExecutor(inner, { cpuMillis: 2000, memoryBytes: 10, gpus: 0 });
    const starts: string[] = [];
    const ev = (tag: string) => ({ onStdout: () => undefined, onStderr: () => undefined, onStart: () => starts.push(tag) });
    const a = ex.start(spec(1, 60, 'a'), ev('a'));
    const b = ex.start(spec(1, 120, 'b'), ev('b'));
    const c = ex.start(spec(1, 10, 'c'), ev('c'));
    const d = ex.start(spec(2, 10, 'd'), ev('d'));
    assert.deepEqual(inner.started.map((s) => s.argv[0]), ['a', 'b'], 'two 1-core tasks on 2 cores; c waits');
    await a.done;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(inner.started.map((s) => s.argv[0]), ['a', 'b', 'c'], 'c starts when a ends');
    await c.done;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(inner.started.map((s) => s.argv[0]), ['a', 'b', 'c'], 'd (2 cores) waits for b; nothing jumps the queue');
    await b.done;
    await d.done;
    assert.deepEqual(inner.started.map((s) => s.argv[0]), ['a', 'b', 'c', 'd']);
    assert.deepEqual(starts, ['a', 'b', 'c', 'd'], 'onStart fires when each really starts');
  });

  it('a task cancelled while waiting ends at once, without starting', async () => {
    const inner = new FakeExecutor(() => ({ durationMs: 50 }));
    const ex = new AdmissionExecutor(inner, { cpuMillis: 1000, memoryBytes: 10, gpus: 0 });
    const noop = { onStdout: () => undefined, onStderr: () => undefined };
    const first = ex.start(spec(1, 50, 'x'), noop);
    const waiting = ex.start(spec(1, 50, 'y'), noop);
    waiting.kill('cancel');
    const r = await waiting.done;
    assert.equal(r.cancelled, true);
    await first.done;
    await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(inner.started.map((s) => s.argv[0]), ['x']);
  });
});
