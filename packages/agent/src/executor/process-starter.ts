/**
 * ProcessStarter: how NativeExecutor creates a task's process. Two adapters behind one small interface:
 *  - `nodeStarter`: Node's `child_process.spawn` (always available; the fallback);
 *  - `NativeStarter`: the optional native helper `dsg-spawn` (packages/agent/native/dsg-spawn.c, compiled at build
 *    time when a C compiler is there), a long-lived process that forks and execs for us. A Node spawn costs the
 *    launcher ~1–3 ms of its main thread (libuv forks the whole Node process and waits for the exec); the helper
 *    forks a process of a few hundred kilobytes instead, so per-task start-up leaves Node altogether. It also joins
 *    the task's cgroups itself between fork and exec, where Node needs an `sh` wrapper.
 *
 * Both give the same contract: the task runs in a new session (its pid is its process group id), stdin is
 * /dev/null, stdout and stderr are streamed as text, `spawn` fires when the process exists, `error` when it could
 * not be started (with `code`, e.g. ENOENT), `exit` when the leader has exited, `close` when in addition both pipes
 * are at EOF.
 *
 *   NativeStarter helper: (none) ──first start──▶ up ──exit/crash──▶ (none)  tasks not yet started fail to start;
 *   started ones end with `close` (code null): the executor kills their groups and reports a failure.
 *
 * The native starter can also admit (`admission`): a task started with `resources` waits in the helper until they
 * fit in the capacity it was given, and starts the moment a running task's leader is reaped — no round trip
 * through the agent's event loop between one task's end and the next one's start (see dsg-spawn.c).
 *
 *   admitted task: waiting ──fits──▶ starting ──▶ started ('spawn', with the helper's start time) ──▶ exit, close
 *                  waiting or starting ──cancel──▶ 'error' with code ECANCELED (never started)
 *                  starting, still after ~500 ms ──▶ 'starting' (when it left the queue): its exec may hang
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { ExecResources } from './executor.js';
import { findNativeHelper } from './native-helpers.js';

export interface StartOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** `cgroup.procs` files the process must join before it execs (only when `joinsCgroups`). */
  readonly cgroupProcs?: readonly string[];
  /** With a starter that admits (`admission`, after `setCapacity`): the process waits until these fit. */
  readonly resources?: ExecResources;
}

/** A started (or starting) task process. Events: spawn, error(e), exit(code, signal), close(code, signal). */
export interface TaskProcess {
  readonly pid: number | undefined;
  /** When the process started (ms since the epoch), if the starter tells it; else the caller's clock at 'spawn'. */
  readonly startedAt?: number;
  /** True once 'close' came from a starter that has already sent SIGKILL to the process's group (dsg-spawn). */
  readonly groupKilled?: boolean;
  on(ev: 'spawn', cb: () => void): this;
  /**
   * A start under way for a while and not over yet (its exec may hang), with when it began: the native starter tells
   * it once, ~500 ms after the start began (for an admitted task: when it left the queue). Never after 'spawn'.
   */
  on(ev: 'starting', cb: (since: number) => void): this;
  on(ev: 'error', cb: (e: NodeJS.ErrnoException) => void): this;
  on(ev: 'exit' | 'close', cb: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  onOutput(stdout: (s: string) => void, stderr: (s: string) => void): void;
}

export interface ProcessStarter {
  readonly name: 'node' | 'native';
  /** Whether `cgroupProcs` is honoured (else the caller wraps the argv in a joining shell). */
  readonly joinsCgroups: boolean;
  /** Throws synchronously, as Node's spawn does, for what can never start (a NUL byte in an argument). */
  start(file: string, args: readonly string[], options: StartOptions): TaskProcess;
  /** Present when the starter can hold processes until their resources fit (the native starter). */
  readonly admission?: StarterAdmission;
}

/** Admission inside the starter: what AdmissionExecutor does, without the agent's event loop on the way. */
export interface StarterAdmission {
  /** The capacity processes started with `resources` are admitted against (given once, before such starts). */
  setCapacity(capacity: ExecResources): void;
  /** Processes started with `resources` that wait for room. */
  readonly waiting: number;
  /**
   * Drop a process that still waits, or kill one still on its way to exec (an exec that hangs); it then ends with
   * 'error', code ECANCELED. False once it is known to have started (the caller signals its group).
   */
  cancel(t: TaskProcess): boolean;
}

export const nodeStarter: ProcessStarter = {
  name: 'node',
  joinsCgroups: false,
  start(file, args, options) {
    const child: ChildProcess = nodeSpawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const t = child as unknown as TaskProcess;
    (t as { onOutput: TaskProcess['onOutput'] }).onOutput = (out, err) => {
      child.stdout!.setEncoding('utf8');
      child.stderr!.setEncoding('utf8');
      child.stdout!.on('data', out);
      child.stderr!.on('data', err);
    };
    return t;
  },
};

const KIND = { hello: 0x48, started: 0x50, failed: 0x46, stdout: 0x4f, stderr: 0x45, exited: 0x58, closed: 0x43, start: 0x53, queued: 0x51, capacity: 0x4c, cancel: 0x4b, slow: 0x57 } as const;
/** What the helper answers to --version: the protocol this file speaks. */
const HELPER_VERSION = 'dsg-spawn 4';
const signalNames = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));
const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

class NativeTask extends EventEmitter implements TaskProcess {
  pid: number | undefined = undefined;
  startedAt: number | undefined = undefined;
  groupKilled = false;
  /** Sent with 'Q' and not started yet: counted in `waiting`. */
  queued = false;
  constructor(readonly id: number) {
    super();
  }
  private readonly outDec = new StringDecoder('utf8');
  private readonly errDec = new StringDecoder('utf8');
  private out: ((s: string) => void) | null = null;
  private err: ((s: string) => void) | null = null;
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  onOutput(stdout: (s: string) => void, stderr: (s: string) => void): void {
    this.out = stdout;
    this.err = stderr;
  }
  data(kind: number, b: Buffer): void {
    const s = (kind === KIND.stdout ? this.outDec : this.errDec).write(b);
    if (s) (kind === KIND.stdout ? this.out : this.err)?.(s);
  }
  endStreams(): void {
    const a = this.outDec.end();
    if (a) this.out?.(a);
    const b = this.errDec.end();
    if (b) this.err?.(b);
  }
}

/**
 * The native helper, started on first use. `NativeStarter.find()` returns it only when its binary is there and
 * answers `--version`, so callers fall back to `nodeStarter` otherwise.
 */
export class NativeStarter implements ProcessStarter, StarterAdmission {
  readonly name = 'native' as const;
  readonly joinsCgroups = true;
  readonly admission: StarterAdmission = this;
  private helper: ChildProcess | null = null;
  private capacityFrame: Buffer | null = null;
  private queuedCount = 0;
  private readonly tasks = new Map<number, NativeTask>();
  private seq = 0;
  private pending: Buffer[] = [];
  private flushQueued = false;
  private inbuf: Buffer = Buffer.alloc(0);
  /** Reads of the helper's output so far: each is one wake-up of this process (see "Holding output back" in dsg-spawn.c). */
  reads = 0;

  constructor(private readonly binary: string) {}

  /** The helper if it is built and runs here (checked once, ~1 ms), else null with the reason. */
  static find(binary?: string): { starter: NativeStarter } | { starter: null; why: string } {
    const found = findNativeHelper('dsg-spawn', HELPER_VERSION, 'the native process starter', binary);
    return found.file !== null ? { starter: new NativeStarter(found.file) } : { starter: null, why: found.why };
  }

  private ensureHelper(): ChildProcess {
    if (this.helper) return this.helper;
    const h = nodeSpawn(this.binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.helper = h;
    h.stdout!.on('data', (b: Buffer) => this.onData(b));
    h.stdin!.on('error', () => undefined); // a dead helper is handled by 'exit'
    h.on('error', () => undefined);
    // A new helper knows no capacity yet: it is the first thing it hears.
    if (this.capacityFrame) h.stdin!.write(this.capacityFrame);
    h.on('exit', () => {
      if (this.helper === h) this.helper = null;
      // The helper reaps its tasks; without it nobody tells their end: report each as closed without a status
      // (the executor then kills the task's group and reports a failure), or as not started.
      for (const [id, t] of this.tasks) {
        this.tasks.delete(id);
        this.unqueue(t);
        if (t.pid === undefined) t.emit('error', Object.assign(new Error('the native process starter exited'), { code: 'ESRCH' }));
        else {
          t.endStreams();
          t.emit('exit', null, null);
          t.emit('close', null, null);
        }
      }
    });
    return h;
  }

  private onData(chunk: Buffer): void {
    this.reads++;
    let buf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      const kind = buf[off + 4]!;
      const id = buf.readUInt32LE(off + 5);
      const payload = buf.subarray(off + 9, off + 4 + len);
      off += 4 + len;
      const t = this.tasks.get(id);
      if (!t) continue;
      if (kind === KIND.stdout || kind === KIND.stderr) t.data(kind, payload);
      else if (kind === KIND.started) {
        t.pid = payload.readInt32LE(0);
        t.startedAt = payload.length >= 12 ? payload.readUInt32LE(4) + payload.readUInt32LE(8) * 2 ** 32 : Date.now();
        this.unqueue(t);
        t.emit('spawn');
      } else if (kind === KIND.slow) {
        if (t.pid === undefined && payload.length >= 8) t.emit('starting', payload.readUInt32LE(0) + payload.readUInt32LE(4) * 2 ** 32);
      } else if (kind === KIND.failed) {
        this.tasks.delete(id);
        this.unqueue(t);
        const errno = payload.readInt32LE(0);
        const stage = payload.subarray(4).toString('utf8');
        const code = errnoNames.get(errno) ?? `errno ${errno}`;
        const e = Object.assign(new Error(`${stage === 'exec' ? 'spawn' : stage} ${code}`), { code, errno: -errno, syscall: stage });
        t.emit('error', e);
      } else if (kind === KIND.exited) {
        const status = payload.readInt32LE(0);
        // POSIX wait status: low 7 bits the signal (0 = exited), bits 8–15 the exit code.
        const sig = status & 0x7f;
        t.exitCode = sig === 0 ? (status >> 8) & 0xff : null;
        t.signal = sig === 0 ? null : (signalNames.get(sig) ?? null);
        t.emit('exit', t.exitCode, t.signal);
      } else if (kind === KIND.closed) {
        this.tasks.delete(id);
        t.groupKilled = true;
        t.endStreams();
        t.emit('close', t.exitCode, t.signal);
      }
    }
    this.inbuf = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
    buf = this.inbuf;
  }

  private unqueue(t: NativeTask): void {
    if (t.queued) {
      t.queued = false;
      this.queuedCount--;
    }
  }

  get waiting(): number {
    return this.queuedCount;
  }

  setCapacity(c: ExecResources): void {
    const f = Buffer.alloc(9 + 24);
    f.writeUInt32LE(5 + 24, 0);
    f[4] = KIND.capacity;
    writeResources(f, 9, c);
    this.capacityFrame = f;
    this.send(f);
  }

  cancel(t: TaskProcess): boolean {
    // Waiting for room, or on its way to exec (which may hang): the helper drops or kills it. Once reported
    // started, the caller signals its group.
    if (!(t instanceof NativeTask) || t.pid !== undefined || !this.tasks.has(t.id)) return false;
    const f = Buffer.alloc(9);
    f.writeUInt32LE(5, 0);
    f[4] = KIND.cancel;
    f.writeUInt32LE(t.id, 5);
    this.send(f);
    return true;
  }

  /** Frames go out together once per turn of the event loop. */
  private send(frame: Buffer): void {
    this.ensureHelper();
    this.pending.push(frame);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
        this.pending = [];
        this.ensureHelper().stdin!.write(all);
      });
    }
  }

  start(file: string, args: readonly string[], options: StartOptions): TaskProcess {
    const envKeys = Object.keys(options.env);
    const cgs = options.cgroupProcs ?? [];
    // cwd, argv, env, cgroup files: the frame's strings, each NUL-terminated.
    const strings = [options.cwd, file, ...args];
    for (const k of envKeys) strings.push(`${k}=${options.env[k]}`);
    for (const c of cgs) strings.push(c);
    // The same refusals as Node's spawn, thrown the same way (the executor turns them into a failed start).
    for (const s of strings) {
      if (s.includes('\0')) throw Object.assign(new TypeError('The argument \'args\' must be a string without null bytes. Received a string with a null byte'), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const id = (this.seq = (this.seq + 1) >>> 0) || (this.seq = 1);
    // Admitted by the helper only once it has a capacity; without one the start is immediate, as before.
    const queued = options.resources !== undefined && this.capacityFrame !== null;
    const head = queued ? 24 : 0;
    // One string, measured and written once: half the CPU of a byteLength and a write per string (~3 µs per task).
    const body = `${strings.join('\0')}\0`;
    const size = head + 12 + Buffer.byteLength(body);
    const frame = Buffer.allocUnsafe(9 + size);
    frame.writeUInt32LE(5 + size, 0);
    frame[4] = queued ? KIND.queued : KIND.start;
    frame.writeUInt32LE(id, 5);
    if (queued) writeResources(frame, 9, options.resources!);
    frame.writeUInt32LE(1 + args.length, 9 + head);
    frame.writeUInt32LE(envKeys.length, 13 + head);
    frame.writeUInt32LE(cgs.length, 17 + head);
    frame.write(body, 21 + head, 'utf8');
    const t = new NativeTask(id);
    if (queued) {
      t.queued = true;
      this.queuedCount++;
    }
    this.tasks.set(id, t);
    this.send(frame);
    return t;
  }

  /** Stop the helper (running tasks are the caller's to kill; waiting ones are dropped by the helper). */
  close(): void {
    this.helper?.stdin?.end();
    this.helper = null;
  }
}

/**
 * cpu millis, memory bytes and GPUs as three u64, each a whole non-negative number (rounded up); GPUs in thousandths,
 * so that shares of one (a capacity and the requests against it are scaled alike) compare as AdmissionExecutor does.
 */
function writeResources(b: Buffer, at: number, r: ExecResources): void {
  const u = (n: number): bigint => BigInt(Math.max(0, Math.ceil(Number.isFinite(n) ? n : 0)));
  b.writeBigUInt64LE(u(r.cpuMillis), at);
  b.writeBigUInt64LE(u(r.memoryBytes), at + 8);
  b.writeBigUInt64LE(u(Math.round(r.gpus * 1000)), at + 16);
}
