/**
 * The agent's side of the volunteer policy: reads the machine every `checkEveryMs`, runs the pure policy engine,
 * and carries out its actions on the agent's tasks through hooks. It decides nothing itself.
 *
 *   idle ──start──▶ checking (one reading at a time; a slow reader delays the next check, never overlaps it) ──close──▶ closed
 *
 * On every state change it reports the new status (the agent sends it to the coordinator at once).
 */
import type { NodePolicyStatus } from '@dsg/core';
import { evaluatePolicy, initialPolicyMemory, type PolicyMemory } from './policy-engine.js';
import type { CompiledPolicy } from './policy-file.js';
import type { PolicyReaders } from './readers.js';

export interface PolicyHooks {
  /** Pause every task the agent holds (and those that start while suspended). */
  suspend(reason: string): void;
  resume(): void;
  /** Stop every task the agent holds and give them back to the coordinator (preempted). */
  stop(reason: string): void;
  changed(status: NodePolicyStatus): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
}

export class PolicyController {
  private memory: PolicyMemory;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private checking: Promise<void> | null = null;

  constructor(private readonly compiled: CompiledPolicy, private readonly readers: PolicyReaders, private readonly hooks: PolicyHooks, now = Date.now()) {
    this.memory = initialPolicyMemory(now);
  }

  status(): NodePolicyStatus {
    return this.memory.status;
  }

  /** Suspended now (new tasks are paused as they arrive). */
  suspended(): boolean {
    return this.memory.status.state !== 'working';
  }

  /** This suspension outlasted the grace period: new tasks go straight back. */
  givingBack(): boolean {
    return this.memory.stopped;
  }

  /** Says what cannot be read here, takes a first reading (decides before any task starts), then checks on a timer. */
  async start(): Promise<void> {
    if (!this.compiled.watches) return;
    for (const l of await this.readers.limits()) this.hooks.log('warn', `volunteer policy: ${l}`);
    await this.check();
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), this.compiled.checkEveryMs);
    this.timer.unref();
  }

  /** One reading and its actions. Public for tests. */
  check(): Promise<void> {
    return (this.checking ??= this.checkOnce().finally(() => (this.checking = null)));
  }

  private async checkOnce(): Promise<void> {
    let readings;
    try {
      readings = await this.readers.read();
    } catch (e) {
      this.hooks.log('warn', `volunteer policy: cannot read the machine's state: ${(e as Error).message}`);
      return;
    }
    if (this.closed) return;
    const d = evaluatePolicy(readings, this.compiled.policy, this.memory);
    this.memory = d.memory;
    for (const a of d.actions) {
      if (a.kind === 'suspend') {
        this.hooks.log('info', `volunteer policy: suspending tasks: ${a.reason}`);
        this.hooks.suspend(a.reason);
      } else if (a.kind === 'resume') {
        this.hooks.log('info', 'volunteer policy: resuming tasks');
        this.hooks.resume();
      } else {
        this.hooks.log('info', `volunteer policy: giving tasks back to the grid: ${a.reason}`);
        this.hooks.stop(a.reason);
      }
    }
    if (d.changed) this.hooks.changed(d.memory.status);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
