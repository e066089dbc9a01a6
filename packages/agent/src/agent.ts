/**
 * The agent: one connection to the coordinator, and the attempts it runs. It never schedules.
 *
 * Connection states:
 *   connecting ──open──▶ hello sent ──welcome──▶ ready ──close/error──▶ waiting (backoff 0.5 s → 10 s, jittered) ──▶ connecting
 *   A 401/403 at the upgrade means the token is wrong (or this node's credential was revoked): it keeps retrying,
 *   but only every 30 s, and says why.
 *
 * Identity: the first contact uses the join token; the `welcome` then carries this node's own credential, saved
 * with the node id in `<stateDir>/node.json` (mode 0600, the state dir 0700) before anything else, and used from then
 * on for the WebSocket and for blob and output HTTP calls. Should the coordinator welcome it under another id than
 * the one it had (its old identity was not honoured), results kept for the old node are dropped: they belong to
 * attempts the coordinator has requeued already.
 *
 * Delivery: outgoing messages queued in one tick go out as one frame. `finished` reports stay in an outbox until
 * the coordinator acks them (after committing them) and are re-sent after every reconnect; the coordinator fences
 * duplicates by attempt id, so a replay is harmless. Reports that nothing waits on keep company for up to HOLD_MS:
 * a `finished` while prefetched tasks still wait here for a core (the freed core already has its next task, so the
 * coordinator's answer is not needed yet) and more than half as many as were seen waiting since the last frame (so
 * the refill is on its way while the rest still run: holding until the queue emptied left 1 ms tasks' cores idle for
 * the whole round trip), and a `started` while another attempt is in progress (its report will carry this one).
 * Either goes out with the next message that may not wait, when half the prefetched tasks have started, or after
 * HOLD_MS. A busy agent then sends one frame, and its coordinator makes one commit, per few tasks instead
 * of two per task; a lone task's reports go out at once. While disconnected, running attempts carry on; their logs are
 * dropped (logs are best-effort; results are not).
 *
 * Volunteer policy (optional, policy/): a PolicyController reads the machine (idle, owner CPU, power, temperature,
 * local time) and tells the agent to suspend every task it holds (cgroup freezer or SIGSTOP), resume them, or —
 * suspended past the grace period — give them back (`preempted`, requeued elsewhere, not counted as a failure).
 * Each change of state goes to the coordinator at once (`policy` message; also in every hello), which sends no
 * new work while the state is not `working`. The share limits cap what the node offers.
 *
 * Local queue: the coordinator may send more short tasks than fit at once (prefetch). They are prepared at once
 * (working dir, inputs) and handed to the executor, which admits them in order as running ones leave room; each
 * one's timeout counts from its own start. With the native starter the waiting happens in dsg-spawn itself, which
 * starts the next task the moment a leader is reaped (NativeExecutor with a capacity); otherwise in an
 * AdmissionExecutor here.
 */
import { sampleUsage } from './probe/usage.js';
import { coordinatorFetch, parseFingerprint, PinMismatchError, pinnedTransport, probeCertificate, UntrustedCertificateError, type Fingerprint, type PinnedTransport } from '@dsg/client/tls';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  AGENT_WS_PATH,
  looksLikeJoinCode,
  DSG_VERSION,
  PROTOCOL_VERSION,
  type AgentMessage,
  type Assignment,
  type CoordinatorMessage,
  type FinishedMessage,
  type NodeFacts,
  type Resources,
} from '@dsg/core';
import { CoordinatorHttp } from './coordinator-http.js';
import type { Executor } from './executor/executor.js';
import { AdmissionExecutor, admitting } from './executor/admission-executor.js';
import { LauncherExecutor } from './executor/launcher-executor.js';
import { failedToStart, NativeExecutor, type NativeExecutorOptions } from './executor/native-executor.js';
import { NativeStarter } from './executor/process-starter.js';
import type { AgentOptions, RunningAgent } from './options.js';
import { offeredCapacity, parseFakeGpus, sharedGpus, SystemProbe, type Probe } from './probe/probe.js';
import { GpuAllocator } from './gpu-allocator.js';
import { probeIsolation, type IsolationProbe } from './probe/isolation.js';
import { WorkDirs } from './work-dirs.js';
import { AttemptRun } from './runner.js';
import { PolicyController } from './policy/policy-controller.js';
import { systemPolicyReaders, type PolicyReaders } from './policy/readers.js';

export interface AgentPorts {
  readonly executor?: Executor;
  readonly probe?: Probe;
  /** How the volunteer policy reads the machine. Default: the adapter for this OS. */
  readonly policyReaders?: PolicyReaders;
}

/** This machine asked to join and the grid's admin said no (`dsg node reject`). */
export class JoinRejectedError extends Error {
  readonly rejected = true;
}

export async function startAgent(options: AgentOptions, ports: AgentPorts = {}): Promise<RunningAgent> {
  const agent = new Agent(options, ports);
  await agent.start();
  return agent;
}

const noop = (): void => undefined;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errorText = (e: unknown): string => {
  const cause = (e as { cause?: { code?: string } }).cause;
  return cause?.code ?? (e instanceof Error ? e.message : String(e));
};
/** How long a report may wait for company (see Delivery above): how late, at most, a start or an end is known. */
export const HOLD_MS = 50;
const STOPPED = 'the agent was stopped while it held this attempt; it runs again on another node';

class Agent implements RunningAgent {
  private readonly log: NonNullable<AgentOptions['log']>;
  private readonly workDir: string;
  private executor!: Executor;
  /** The native process starter when the agent drives it itself (executor `auto`). */
  private starter: NativeStarter | null = null;
  private readonly probe: Probe;
  private readonly http: CoordinatorHttp;
  /**
   * Every attempt this agent holds, in arrival order: preparing, waiting for a free core (the coordinator
   * prefetches short tasks), or running. Waiting ones are prepared (working dir, inputs) ahead of their start.
   */
  private readonly runs = new Map<string, AttemptRun>();
  private readonly outbox = new Map<string, FinishedMessage>();
  private queue: AgentMessage[] = [];
  private flushQueued = false;
  /** Sends held reports (see Delivery above) at the latest HOLD_MS after the first of them. */
  private holdTimer: NodeJS.Timeout | null = null;
  /** The most prefetched tasks seen waiting since the last frame: held ends go once half of them have started. */
  private waitingPeak = 0;
  private ws: WebSocket | null = null;
  private ready = false;
  private id: string | null = null;
  /** This node's own credential (from the welcome of its first contact); null until it has joined. */
  private credential: string | null = null;
  /** The certificate fingerprint pinned for an https:// coordinator (flag, else node.json); null: verify normally. */
  private pin: Fingerprint | null = null;
  /** The checked, pinned TLS transport (made on the first connection; dropped when a handshake fails). */
  private transport: PinnedTransport | null = null;
  private capacity: Resources | null = null;
  /** What this node does to contain its tasks; reported in the hello facts. Null with an injected executor. */
  private isolation: IsolationProbe | null = null;
  private workDirs: WorkDirs | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private policy: PolicyController | null = null;
  /** GPU visibility for tasks when the policy shares only some GPUs. */
  private gpus: GpuAllocator | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs = 500;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private resolveConnected: () => void = noop;
  readonly connected = new Promise<void>((r) => (this.resolveConnected = r));

  constructor(private readonly options: AgentOptions, private readonly ports: AgentPorts) {
    this.log = options.log ?? noop;
    this.workDir = options.workDir ?? join(options.stateDir, 'work');
    this.probe = ports.probe ?? new SystemProbe(this.workDir, 'nvidia-smi', 'rocm-smi', options.fakeGpus ? parseFakeGpus(options.fakeGpus) : null, (why) => this.log('warn', `${why}; not offered`));
    this.http = new CoordinatorHttp(options.coordinatorUrl, () => this.credential ?? options.token ?? '', join(options.stateDir, 'blobs'), options.log ? { log: options.log } : {});
  }

  nodeId(): string | null {
    return this.id;
  }

  async start(): Promise<void> {
    // The state dir holds this node's credential: nobody else on the machine may read it.
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    await chmod(this.options.stateDir, 0o700);
    await mkdir(this.workDir, { recursive: true });
    // What this node offers decides how many tasks run at once: the executor admits tasks against it, and holds
    // prefetched ones until a core frees (in the launcher helper, so the next one starts without a round trip).
    const facts0 = await this.probe.facts();
    this.capacity = offeredCapacity(facts0, this.limits());
    // The GPUs tasks may have (a volunteer may share some only): each GPU task gets whole ones no other task holds,
    // and every task sees only its own (gpu-allocator.ts).
    this.gpus = new GpuAllocator(sharedGpus(facts0, this.options.policy?.share.gpus));
    if (this.options.fakeGpus) this.log('warn', `using fake GPUs (DSG_FAKE_GPUS): ${this.gpus.gpus.map((g) => `${g.index}: ${g.model}`).join(', ')}; tasks get their device ids, but no real device`);
    const grace = this.options.killGraceMs ?? 5000;
    const cap = { cpuMillis: this.capacity.cpuMillis, memoryBytes: this.capacity.memoryBytes, gpus: this.capacity.gpus };
    if (!this.ports.executor) {
      const o = this.options;
      this.isolation = probeIsolation({
        ...(o.isolation ? { isolation: o.isolation } : {}),
        ...(o.maxProcesses !== undefined ? { maxProcesses: o.maxProcesses } : {}),
        ...(o.allowNetwork !== undefined ? { allowNetwork: o.allowNetwork } : {}),
        ...(o.taskUid !== undefined ? { taskUid: o.taskUid } : {}),
        hide: [...new Set([o.stateDir, this.workDir, ...(o.hidePaths ?? [])])],
      });
      this.log(this.isolation.level === 'sandbox+cgroups' ? 'info' : 'warn', `task isolation: ${this.isolation.level}${this.isolation.notes.length > 0 ? ` (${this.isolation.notes.join('; ')})` : ''}`);
      const s = this.isolation.settings;
      const asUser = s.sandbox?.drop && s.sandbox.uid !== null ? { drop: s.sandbox.drop, uid: s.sandbox.uid } : s.user;
      if (asUser) this.log('info', `tasks run as uid ${asUser.uid}, dropped to it by ${asUser.drop.kind} (${asUser.drop.program})`);
    }
    // Empty working dirs are handed on to later attempts only where tasks are not sandboxed (work-dirs.ts).
    const keep = this.options.keepWorkDirs ?? false;
    const sandboxed = Boolean(this.isolation?.settings.sandbox);
    this.workDirs = new WorkDirs(this.workDir, { keep, reuse: !keep && !this.ports.executor && !sandboxed, removeInBackground: sandboxed });
    this.workDirs.dropLeftovers();
    // Plain processes need no wrapping at all (`none` as a non-root agent): keep the executor's fastest path.
    const iso = this.isolation;
    const isolation = iso && (iso.level !== 'none' || iso.settings.user) ? { isolation: iso.settings } : {};
    // `auto`: the agent drives dsg-spawn itself when it runs here (see AgentOptions.executor); else the launcher.
    const choice = this.options.executor ?? 'auto';
    const found = !this.ports.executor && choice === 'auto' ? NativeStarter.find() : null;
    const notNative = found && found.starter === null ? found.why : null;
    if (found?.starter) {
      this.starter = found.starter;
      this.log('info', 'tasks start through the native process starter (dsg-spawn)');
    }
    this.executor = this.ports.executor
      ? new AdmissionExecutor(this.ports.executor, cap)
      : this.starter
        ? admitting(nativeExecutorOrRefusal({ killGraceMs: grace, ...isolation, starter: this.starter, capacity: cap }), cap)
        : choice === 'native'
          ? new AdmissionExecutor(new NativeExecutor({ killGraceMs: grace, ...isolation }), cap)
          : new LauncherExecutor({
              killGraceMs: grace, capacity: cap, ...isolation,
              onStarter: (s) => this.log('info', s.starter === 'native' ? 'tasks start through the native process starter (dsg-spawn), from a launcher helper' : `tasks start through Node's spawn from a launcher helper (${s.why ?? notNative ?? 'no native starter'})`),
            });
    try {
      const saved = JSON.parse(await readFile(join(this.options.stateDir, 'node.json'), 'utf8')) as { nodeId?: string; credential?: string; tlsFingerprint?: string };
      this.id = saved.nodeId ?? null;
      this.credential = saved.credential ?? null;
      if (saved.tlsFingerprint) {
        try {
          this.pin = parseFingerprint(saved.tlsFingerprint, 'node.json: tlsFingerprint');
        } catch {
          this.log('warn', `node.json holds an unreadable tlsFingerprint; ignoring it (give --tls-fingerprint again)`);
        }
      }
    } catch {
      this.id = null;
    }
    if (this.options.tlsFingerprint) {
      const given = parseFingerprint(this.options.tlsFingerprint);
      if (this.pin && this.pin !== given) this.log('warn', `trusting the certificate ${given} given now instead of ${this.pin} saved before`);
      this.pin = given;
    }
    // No credential, no token or code: ask to join and wait for an admin's approval.
    if (!this.credential && !this.options.token) await this.waitForApproval(facts0);
    await this.startPolicy();
    this.connect();
  }

  /**
   * Joining by approval (no join token or code): ask the coordinator (`POST /api/v1/join-requests`) every 10 s with
   * a secret key kept in `<stateDir>/join-request.json` (0600), so the request is the same one across restarts and
   * only this machine can collect the credential. Approved: the node id and credential are saved like a welcome's.
   * Rejected: throws JoinRejectedError (the CLI exits 5).
   */
  private async waitForApproval(facts: NodeFacts): Promise<void> {
    const file = join(this.options.stateDir, 'join-request.json');
    let key: string;
    try {
      key = (JSON.parse(await readFile(file, 'utf8')) as { key: string }).key;
      if (!/^[A-Za-z0-9_-]{43,86}$/.test(key)) throw new Error('bad key');
    } catch {
      key = randomBytes(32).toString('base64url');
      await writeFile(file, `${JSON.stringify({ key })}\n`, { mode: 0o600 });
    }
    const name = this.options.name ?? facts.hostname;
    const body = JSON.stringify({
      key, name,
      facts: { os: facts.os.slice(0, 100), arch: facts.arch.slice(0, 50), cpuModel: facts.cpuModel.slice(0, 200), cores: facts.cores, memoryBytes: facts.memoryBytes, gpus: facts.gpus.slice(0, 64).map((g) => g.model.slice(0, 200)) },
    });
    const url = `${this.options.coordinatorUrl.replace(/\/+$/, '')}/api/v1/join-requests`;
    const fetch = coordinatorFetch(this.options.coordinatorUrl, this.pin);
    let told = false;
    let unreachableSaid = false;
    for (;;) {
      let wait = 10_000;
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const answer = (await res.json()) as { request?: { id: string; state: string; nodeId: string | null; reason: string | null; decidedBy: string | null }; credential?: string; error?: { message: string; details?: { retryAfterSeconds?: number } } };
        unreachableSaid = false;
        const r = answer.request;
        if (res.status === 200 && r?.nodeId && answer.credential) {
          this.id = r.nodeId;
          this.credential = answer.credential;
          await this.saveIdentity();
          await rm(file, { force: true });
          this.log('info', `approved${r.decidedBy ? ` by ${r.decidedBy}` : ''}: joining as ${name} (${r.nodeId})`);
          return;
        }
        if (res.status === 403 && r?.state === 'rejected')
          throw new JoinRejectedError(`the grid's admin${r.decidedBy ? ` (${r.decidedBy})` : ''} rejected this machine's request to join${r.reason ? `: ${r.reason}` : ''}. Ask them: they can undo it (dsg node approve ${r.id}), then start this agent again; or delete ${file} to ask anew`);
        if (res.status === 202 && r) {
          if (!told) this.log('info', `waiting for approval: request ${r.id} from ${name}. On the coordinator's machine an admin runs \`dsg node approve ${r.id}\` (check the id matches the one shown here; \`dsg node pending\` lists requests)${this.pin ? `. This agent trusts the grid's certificate ${this.pin.slice(0, 'sha256:'.length + 16)}…: \`dsg node list --pending\` shows the grid's; they must match` : ''}`);
          told = true;
        } else if (answer.error) {
          if (res.status === 429) wait = Math.max(wait, (answer.error.details?.retryAfterSeconds ?? 60) * 1000);
          this.log('warn', `the coordinator did not take the join request (HTTP ${res.status}): ${answer.error.message}`);
        }
      } catch (e) {
        if (e instanceof JoinRejectedError) throw e;
        if (!unreachableSaid) this.log('warn', `cannot reach the coordinator at ${this.options.coordinatorUrl} to ask to join (${errorText(e)}); trying again every 10 s`);
        unreachableSaid = true;
      }
      await sleep(wait);
    }
  }

  /** What the node offers: flags and the policy's share limits, the smaller of each. */
  private limits(): { cpus?: number; memoryBytes?: number; gpus?: ReadonlyArray<number | string> } {
    const o = this.options;
    const share = o.policy?.share ?? {};
    const min = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
    const cpus = min(o.cpus, share.cpus);
    const memoryBytes = min(o.memoryBytes, share.memoryBytes);
    return { ...(cpus !== undefined ? { cpus } : {}), ...(memoryBytes !== undefined ? { memoryBytes } : {}), ...(share.gpus ? { gpus: share.gpus } : {}) };
  }

  /** The volunteer policy: its first reading decides before the first hello whether this node works now. */
  private async startPolicy(): Promise<void> {
    const compiled = this.options.policy;
    if (!compiled?.watches) return;
    const readers = this.ports.policyReaders ?? systemPolicyReaders(this.options.policyReaders ?? {});
    this.policy = new PolicyController(compiled, readers, {
      suspend: () => {
        for (const r of this.runs.values()) r.suspend();
      },
      resume: () => {
        for (const r of this.runs.values()) r.resume();
      },
      stop: (reason) => {
        for (const r of this.runs.values()) r.preempt(reason);
      },
      changed: (policy) => this.enqueue({ type: 'policy', policy }),
      log: this.log,
    });
    await this.policy.start();
  }

  /**
   * Stopping (SIGTERM, Ctrl-C) is not cancelling: nobody cancelled these tasks, they must run elsewhere.
   *   1. tell the coordinator (`stopping`): it sends no more work here;
   *   2. interrupt every attempt held (running, waiting for a core, being prepared): each is killed and reported as
   *      `agent_stopped`, a system failure the coordinator requeues at once;
   *   3. wait (a few seconds at most) until the coordinator has acked those reports, then close the connection.
   * Anything it held but could not report is requeued by the coordinator when the connection closes.
   */
  stop(): Promise<void> {
    // A second signal (Ctrl-C reaches the whole process group, then a supervisor sends SIGTERM) waits for the same stop.
    return (this.stopping ??= this.stopInOrder());
  }

  private async stopInOrder(): Promise<void> {
    this.stopped = true;
    this.policy?.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.ready) {
      this.queue.push({ type: 'stopping', reason: 'the agent is stopping' });
      this.flush();
    }
    for (const r of this.runs.values()) r.interrupt(STOPPED);
    const grace = this.options.killGraceMs ?? 5000;
    await Promise.race([Promise.allSettled([...this.runs.values()].map((r) => r.done)), sleep(grace + 5000)]);
    this.flush();
    for (const deadline = Date.now() + 5000; this.ready && this.outbox.size > 0 && Date.now() < deadline; ) await sleep(20);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.executor instanceof LauncherExecutor) this.executor.close();
    // dsg-spawn ends with its stdin; any task still running then is killed by it (as after an agent crash).
    this.starter?.close();
    this.ws?.close(1000, 'agent stopping');
    this.ws = null;
  }

  private wsUrl(): string {
    const u = new URL(this.options.coordinatorUrl);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.pathname = AGENT_WS_PATH;
    return u.toString();
  }

  private connect(): void {
    if (this.stopped) return;
    const https = this.options.coordinatorUrl.startsWith('https:');
    if (https && this.pin && !this.transport) {
      // Check the pin with a handshake that sends nothing (no token) before the first connection; see client/tls.ts.
      const url = this.options.coordinatorUrl;
      pinnedTransport(url, this.pin).then((t) => {
        this.transport = t;
        this.http.setFetch(t.fetch);
        this.connect();
      }, (e: unknown) => {
        const wait = e instanceof PinMismatchError ? 30_000 : Math.round(this.backoffMs * (0.5 + Math.random()));
        this.backoffMs = Math.min(10_000, this.backoffMs * 2);
        this.log(e instanceof PinMismatchError ? 'error' : 'warn', e instanceof PinMismatchError
          ? `${e.message} Retrying in 30s.`
          : `cannot reach the coordinator at ${url} (${e instanceof Error ? e.message : String(e)}), retrying in ${(wait / 1000).toFixed(1)}s`);
        if (!this.stopped) this.retryTimer = setTimeout(() => this.connect(), wait);
      });
      return;
    }
    const ws = new WebSocket(this.wsUrl(), {
      headers: { authorization: `Bearer ${this.credential ?? this.options.token ?? ''}` }, handshakeTimeout: 10_000, ...(this.transport?.tlsOptions ?? {}),
    });
    this.ws = ws;
    let rejectedToken = false;
    ws.on('unexpected-response', (_req, res) => {
      rejectedToken = res.statusCode === 401 || res.statusCode === 403;
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () => {
        if (rejectedToken && this.credential && res.statusCode === 401 && !/revoked/.test(body)) {
          // The coordinator does not know this credential at all (its data was reset, or this is another grid):
          // join again, as a new node, with the join token. A *revoked* credential is never replaced this way.
          this.log('warn', `the coordinator does not know this node's credential (was its data reset?); joining again as a new node with the join token`);
          this.credential = null;
          this.id = null;
          this.outbox.clear();
          rejectedToken = false;
        } else {
          this.log('error', rejectedToken
            ? this.credential
              ? `the coordinator rejected this node's credential (HTTP ${res.statusCode}): ${body.trim() || 'revoked'}; to join again as a new node, delete ${join(this.options.stateDir, 'node.json')} and restart the agent`
              : looksLikeJoinCode(this.options.token ?? '')
                ? `the coordinator did not accept the join code (HTTP ${res.statusCode}${/expired|revoked|used up/.test(body) ? `: ${/expired/.test(body) ? 'it expired' : /used up/.test(body) ? 'it is used up, it has admitted all the machines it may' : 'it was revoked'}` : res.statusCode === 429 ? `: ${body.trim()}` : ': mistyped, expired or revoked'}); ask the grid's admin for a new one (dsg join-code create)`
                : `the coordinator rejected the token (HTTP ${res.statusCode}); use the joinToken from the coordinator's credentials.json`
            : `the coordinator refused the connection (HTTP ${res.statusCode})`);
        }
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('open', () => void this.onOpen(ws));
    ws.on('message', (data) => this.onFrame(String(data)));
    ws.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (https && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(`${code} ${e.message}`)) {
        if (this.transport) {
          // The certificate changed since the pin was checked: check again (the next try says what it is now).
          this.transport = null;
        } else {
          void probeCertificate(this.options.coordinatorUrl).then(
            (p) => this.log('error', new UntrustedCertificateError(this.options.coordinatorUrl, p.fingerprint, code || e.message).message),
            () => this.log('warn', `TLS error: ${e.message}`));
          return;
        }
      }
      this.log('debug', `connection error: ${e.message}`);
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.heartbeat) clearInterval(this.heartbeat);
      if (this.stopped) return;
      // 4002: a newer connection with this node id replaced ours. Two agents sharing one state dir would take
      // turns forever; say so, and back off fully instead of flapping.
      const replaced = code === 4002;
      const wait = rejectedToken || replaced ? 30_000 : Math.round(this.backoffMs * (0.5 + Math.random()));
      // At most ~10 s between tries, so agents are back well within the 30 s a restarted coordinator waits for them.
      this.backoffMs = Math.min(10_000, this.backoffMs * 2);
      if (replaced)
        this.log('error', `another agent connected as node ${this.id ?? '?'} (do two agents share --state-dir ${this.options.stateDir}?); retrying in 30s`);
      else this.log('warn', `cannot reach the coordinator at ${this.options.coordinatorUrl}, retrying in ${(wait / 1000).toFixed(1)}s`);
      this.retryTimer = setTimeout(() => this.connect(), wait);
    });
  }

  private async onOpen(ws: WebSocket): Promise<void> {
    const facts = await this.probe.facts();
    // Fresh facts on every connection (free disk changes); cores and memory stay what the executor admits against.
    this.capacity = offeredCapacity(facts, this.limits());
    if (this.options.cpus !== undefined && this.options.cpus > facts.cores)
      this.log('warn', `--cpus ${this.options.cpus} is more than this machine's ${facts.cores} cores; offering ${facts.cores}`);
    const hello: AgentMessage = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      nodeId: this.id,
      name: this.options.name ?? facts.hostname,
      agentVersion: DSG_VERSION,
      capacity: this.capacity,
      // Only the GPUs the owner shares are this node's, for constraints as for capacity.
      facts: {
        ...facts,
        gpus: sharedGpus(facts, this.options.policy?.share.gpus),
        ...(this.isolation ? { isolation: this.isolation.level } : {}),
        ...(this.options.allowUnisolatedJobs ? { allowUnisolatedJobs: true } : {}),
      },
      labels: { ...(this.options.labels ?? {}) },
      running: this.held(),
      ...(this.policy ? { policy: this.policy.status() } : {}),
    };
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(hello));
  }

  private onFrame(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.log('warn', 'ignoring a malformed frame from the coordinator');
      return;
    }
    for (const m of (Array.isArray(parsed) ? parsed : [parsed]) as CoordinatorMessage[]) this.onMessage(m);
  }

  private onMessage(m: CoordinatorMessage): void {
    switch (m.type) {
      case 'welcome': {
        this.ready = true;
        this.backoffMs = 500;
        if (this.id !== null && this.id !== m.nodeId) {
          this.log('warn', `the coordinator welcomed this agent as a new node ${m.nodeId} (it was node ${this.id}); results kept for the old node are dropped`);
          this.outbox.clear();
        }
        if (this.id !== m.nodeId || m.credential) {
          this.id = m.nodeId;
          if (m.credential) this.credential = m.credential;
          void this.saveIdentity();
        }
        this.log('info', `connected to ${this.options.coordinatorUrl} as node ${m.nodeId}`);
        // Results the coordinator may not have committed yet.
        for (const f of this.outbox.values()) this.enqueue(f);
        if (this.heartbeat) clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.enqueue({ type: 'heartbeat', running: this.held(), usage: sampleUsage() }), m.heartbeatIntervalMs);
        this.heartbeat.unref();
        this.resolveConnected();
        break;
      }
      case 'assign':
        for (const a of m.attempts) this.startAttempt(a);
        break;
      case 'cancel':
        for (const id of m.attemptIds) this.runs.get(id)?.cancel();
        break;
      case 'ack':
        for (const id of m.attemptIds) this.outbox.delete(id);
        break;
      case 'error':
        this.log('warn', `coordinator says: ${m.message}`);
        break;
    }
  }

  /** node.json: the node id and its credential, mode 0600, written whole (temp file + rename). */
  private async saveIdentity(): Promise<void> {
    const file = join(this.options.stateDir, 'node.json');
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
      await writeFile(tmp, `${JSON.stringify({ nodeId: this.id, ...(this.credential ? { credential: this.credential } : {}), ...(this.pin ? { tlsFingerprint: this.pin } : {}) })}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, file);
    } catch (e) {
      this.log('error', `cannot save the node id and credential in ${file}: ${String(e)}`);
    }
  }

  /** Every attempt this agent holds: running, waiting for a core, or being prepared. */
  private held(): string[] {
    return [...this.runs.keys()];
  }

  private startAttempt(a: Assignment): void {
    if (this.runs.has(a.attemptId) || this.outbox.has(a.attemptId)) return; // a duplicate
    if (this.stopped) {
      // Sent before the coordinator read our `stopping`: hand it straight back.
      this.report({ type: 'finished', attemptId: a.attemptId, startedAt: null, finishedAt: Date.now(), outputs: [], end: { kind: 'error', reason: 'agent_stopped', message: STOPPED } });
      return;
    }
    const cap = this.capacity;
    if (cap && (a.resources.cpuMillis > cap.cpuMillis || a.resources.memoryBytes > cap.memoryBytes || a.resources.gpus > cap.gpus)) {
      this.report({
        type: 'finished', attemptId: a.attemptId, startedAt: null, finishedAt: Date.now(), outputs: [],
        end: { kind: 'error', reason: 'executor_error', message: 'the agent refused the attempt: it needs more than this node offers' },
      });
      return;
    }
    const run = new AttemptRun(a, {
      executor: this.executor,
      http: this.http,
      workDir: this.workDir,
      baseEnv: this.options.baseEnv ?? { PATH: '/usr/local/bin:/usr/bin:/bin' },
      ...(this.gpus ? { gpus: this.gpus } : {}),
      keepWorkDirs: this.options.keepWorkDirs ?? false,
      ...(this.workDirs ? { workDirs: this.workDirs } : {}),
      send: (msg) => this.enqueue(msg),
    });
    this.runs.set(a.attemptId, run);
    // Sent before the coordinator read our change of state: pause it with the others, or give it straight back.
    if (this.policy?.givingBack()) run.preempt(this.policy.status().reason);
    else if (this.policy?.suspended()) run.suspend();
    void run.done.then((f) => {
      this.runs.delete(a.attemptId);
      this.report(f);
    });
  }

  private report(f: FinishedMessage): void {
    this.outbox.set(f.attemptId, f);
    this.enqueue(f);
  }

  private enqueue(m: AgentMessage): void {
    if (!this.ready) return; // finished reports wait in the outbox; logs and heartbeats are dropped
    this.queue.push(m);
    if (this.mayWait(m)) {
      if (!this.holdTimer && !this.flushQueued) this.holdTimer = setTimeout(() => this.flushSoon(), HOLD_MS);
      return;
    }
    this.flushSoon();
  }

  /** Whether a report may wait for company (see Delivery above). */
  private mayWait(m: AgentMessage): boolean {
    if (m.type === 'finished') {
      const waiting = this.executor.waiting ?? 0;
      this.waitingPeak = Math.max(this.waitingPeak, waiting);
      return waiting > 0 && waiting * 2 > this.waitingPeak;
    }
    if (m.type === 'started') return this.runs.size > 1;
    return false;
  }

  private flushSoon(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
    let msgs = this.queue;
    this.queue = [];
    this.waitingPeak = 0;
    // A task that started and ended within one batch needs only its `finished` (which carries startedAt).
    const ended = new Set<string>();
    for (const m of msgs) if (m.type === 'finished') ended.add(m.attemptId);
    if (ended.size > 0) msgs = msgs.filter((m) => m.type !== 'started' || !ended.has(m.attemptId));
    const ws = this.ws;
    if (msgs.length === 0 || !ws || ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(msgs.length === 1 ? msgs[0] : msgs));
  }
}

/**
 * The native executor, or, when it cannot give the isolation the agent promised (its cgroups are not usable by this
 * process), one that fails every task with the reason — never a task run without its limits.
 */
function nativeExecutorOrRefusal(options: NativeExecutorOptions): Executor {
  try {
    return new NativeExecutor(options);
  } catch (e) {
    const why = (e as Error).message;
    return { start: (spec) => failedToStart(spec.argv[0] ?? '', new Error(why), Date.now()) };
  }
}
