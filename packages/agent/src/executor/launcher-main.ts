/**
 * The process launcher: a small helper process that starts tasks for the agent (see launcher-executor.ts).
 * It imports nothing but the native executor, so it stays small, and forking from it is cheaper than forking
 * from the agent; it also moves process start-up off the agent's event loop onto another core.
 *
 * Processes are created by the native starter `dsg-spawn` when it was built and runs here, else by Node's spawn
 * (process-starter.ts); the first line out says which: {"ev":"hello","starter":"native"|"node","why"?}.
 *
 * Protocol, NDJSON over stdin/stdout:
 *   in:  {"op":"start","id","argv","cwd","env","timeoutMs","resources"?,"network"?} | {"op":"kill","id","reason"}
 *        | {"op":"suspend","id"} | {"op":"resume","id"}   (volunteer policy: pause and continue a task)
 *   out: {"id","ev":"start","pid","at"} | {"id","ev":"out","stream","data"} | {"id","ev":"done","result"}
 * When stdin closes (the agent exited or died), every running task's process group is killed and the launcher exits;
 * SIGINT and SIGTERM are ignored (they reach it with its agent's process group; the agent decides).
 * A task that cannot be started (spawn throws: E2BIG, a NUL byte, …) ends with a spawn error; the launcher goes on.
 */
import { createInterface } from 'node:readline';
import { admitting } from './admission-executor.js';
import type { ExecHandle, ExecResources, Executor } from './executor.js';
import { failedToStart, NativeExecutor } from './native-executor.js';
import type { IsolationSettings } from '../probe/isolation.js';
import { NativeStarter, nodeStarter, type ProcessStarter } from './process-starter.js';

// argv: killGraceMs, then optionally the capacity to admit tasks against (JSON, or "-"), so that a task waiting
// for a core starts here the moment another ends, without a round trip to the agent; then optionally the
// isolation settings (JSON, or "-") every task gets; then optionally how to start processes: "auto" (default: the
// native starter dsg-spawn when it was built and runs here, else Node's spawn) or "node".
const grace = Number(process.argv[2] ?? '5000');
const capacity = process.argv[3] && process.argv[3] !== '-' ? (JSON.parse(process.argv[3]) as ExecResources) : null;
const isolation = process.argv[4] && process.argv[4] !== '-' ? (JSON.parse(process.argv[4]) as IsolationSettings) : undefined;
let starter: ProcessStarter = nodeStarter;
let starterWhy: string | undefined = process.argv[5] === 'node' ? 'the agent asked for Node\'s spawn' : undefined;
if (process.argv[5] !== 'node') {
  const found = NativeStarter.find();
  if (found.starter) starter = found.starter;
  else starterWhy = found.why;
}
let native: Executor;
try {
  native = new NativeExecutor({ killGraceMs: Number.isFinite(grace) ? grace : 5000, ...(isolation ? { isolation } : {}), starter, ...(capacity ? { capacity } : {}) });
} catch (e) {
  // Isolation the agent promised but this process cannot give: fail every task with the reason (never run
  // them without their limits).
  const why = (e as Error).message;
  native = { start: (spec) => failedToStart(spec.argv[0] ?? '', new Error(why), Date.now()) };
}
// With the native starter, tasks wait for room in it (it starts the next the moment a core frees); else here.
const executor: Executor = capacity ? admitting(native, capacity) : native;
const running = new Map<string, ExecHandle>();
let pending: string[] = [];
let flushQueued = false;

function emit(msg: unknown): void {
  pending.push(JSON.stringify(msg));
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(() => {
      flushQueued = false;
      const out = `${pending.join('\n')}\n`;
      pending = [];
      process.stdout.write(out);
    });
  }
}

emit({ ev: 'hello', starter: starter.name, ...(starterWhy ? { why: starterWhy } : {}) });

interface StartOp { op: 'start'; id: string; argv: string[]; cwd: string; env: Record<string, string>; timeoutMs: number; resources?: ExecResources; network?: boolean }
interface KillOp { op: 'kill'; id: string; reason: 'cancel' | 'timeout' }
interface PauseOp { op: 'suspend' | 'resume'; id: string }

// The helper lives exactly as long as its agent: it ends when its stdin closes. A SIGINT or SIGTERM sent to the
// agent's whole process group (Ctrl-C in a terminal, a service manager stopping the agent) must not kill it first,
// or the tasks would end as "the launcher exited" instead of being handed back by the agent's orderly stop.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);

createInterface({ input: process.stdin })
  .on('line', (line) => {
    let m: StartOp | KillOp | PauseOp;
    try {
      m = JSON.parse(line) as StartOp | KillOp | PauseOp;
    } catch {
      return;
    }
    if (m.op === 'start') {
      const id = m.id;
      let h: ExecHandle;
      try {
        h = executor.start(
          { argv: m.argv, cwd: m.cwd, env: m.env, timeoutMs: m.timeoutMs, ...(m.resources ? { resources: m.resources } : {}), ...(m.network ? { network: true } : {}) },
          {
            onStdout: (data) => emit({ id, ev: 'out', stream: 'stdout', data }),
            onStderr: (data) => emit({ id, ev: 'out', stream: 'stderr', data }),
            onStart: (at, pid) => emit({ id, ev: 'start', pid, at }),
          },
        );
      } catch (e) {
        // Whatever one task's start throws, it ends that task only (a spawn error, a system failure): this helper
        // serves every task of the node and must keep running.
        h = failedToStart(m.argv?.[0] ?? '', e, Date.now());
      }
      running.set(id, h);
      void h.done.then((result) => {
        running.delete(id);
        emit({ id, ev: 'done', result });
      });
    } else if (m.op === 'kill') running.get(m.id)?.kill(m.reason);
    else if (m.op === 'suspend') running.get(m.id)?.suspend?.();
    else if (m.op === 'resume') running.get(m.id)?.resume?.();
  })
  .on('close', () => {
    for (const h of running.values()) h.kill('cancel');
    void Promise.allSettled([...running.values()].map((h) => h.done)).then(() => {
      if (starter instanceof NativeStarter) starter.close();
      process.exit(0);
    });
  });
