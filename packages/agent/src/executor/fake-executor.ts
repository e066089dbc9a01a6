/** FakeExecutor: scripted results for tests of the runner and agent, without processes. */
import type { ExecEvents, ExecHandle, ExecResult, ExecSpec, Executor } from './executor.js';

export interface FakeBehaviour {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode?: number;
  /** Milliseconds before it "exits"; default 0. */
  readonly durationMs?: number;
  /** Files to create in the working dir before exiting (path → content). */
  readonly files?: Readonly<Record<string, string>>;
}

export class FakeExecutor implements Executor {
  readonly started: ExecSpec[] = [];
  constructor(private readonly behave: (spec: ExecSpec) => FakeBehaviour = () => ({})) {}

  start(spec: ExecSpec, events: ExecEvents): ExecHandle {
    this.started.push(spec);
    const b = this.behave(spec);
    const startedAt = Date.now();
    events.onStart?.(startedAt, undefined);
    let settle!: (r: ExecResult) => void;
    const done = new Promise<ExecResult>((r) => (settle = r));
    const end = (extra: Partial<ExecResult>): void =>
      settle({ exitCode: b.exitCode ?? 0, signal: null, timedOut: false, cancelled: false, spawnError: null, startedAt, finishedAt: Date.now(), ...extra });
    const timer = setTimeout(async () => {
      if (b.files) {
        const { mkdir, writeFile } = await import('node:fs/promises');
        const { dirname, join } = await import('node:path');
        for (const [p, c] of Object.entries(b.files)) {
          await mkdir(dirname(join(spec.cwd, p)), { recursive: true });
          await writeFile(join(spec.cwd, p), c);
        }
      }
      if (b.stdout) events.onStdout(b.stdout);
      if (b.stderr) events.onStderr(b.stderr);
      end({});
    }, Math.min(b.durationMs ?? 0, spec.timeoutMs));
    return {
      pid: undefined,
      kill: (reason) => {
        clearTimeout(timer);
        end({ exitCode: null, signal: 'SIGTERM', timedOut: reason === 'timeout', cancelled: reason === 'cancel' });
      },
      done,
    };
  }
}
