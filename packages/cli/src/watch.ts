/**
 * Waiting for something on the grid to finish (`dsg wait`, `dsg submit --wait`): a live progress bar on a
 * terminal, a plain line every 5 s otherwise; polls through a Reconnector, so a coordinator restart is ridden out.
 *
 * What is waited for is a WaitTarget: a job (commands/job-watch.ts, one bar) or a workflow (commands/workflow.ts,
 * one bar per stage through `stages`).
 */
import cliProgress from 'cli-progress';
import { info } from './context.js';
import { elapsed } from './format.js';
import { Interrupted, sleepFor, type Reconnector } from './reconnect.js';

export interface WaitProgress {
  /** Units of work in all (tasks of a job). */
  readonly total: number;
  /** Units that have ended, however (the bar's position). */
  readonly ended: number;
  /** Units that succeeded. */
  readonly done: number;
  readonly running: number;
  readonly failed: number;
  readonly queued: number;
  /** Why nothing can start, ever (no node could run it); said once. Null otherwise. */
  readonly never: string | null;
}

export type WaitOutcome = 'pending' | 'succeeded' | 'failed';

/** One part of what is waited for, with its own bar (a workflow's stages). */
export interface WaitPart {
  readonly name: string;
  readonly total: number;
  readonly ended: number;
  readonly state: string;
  /** Why it waits or was skipped; '' when there is nothing to say. */
  readonly note: string;
}

export interface WaitTarget<T> {
  /** "job", later "workflow": used in messages. */
  readonly kind: string;
  readonly id: string;
  /** Fetch the current state (one request or a few; retried by the caller while unreachable). */
  load(): Promise<T>;
  progress(v: T): WaitProgress;
  /** Parts shown with a bar each on a terminal (and in the periodic line otherwise); absent for a single bar. */
  stages?(v: T): WaitPart[];
  /** `pending` until nothing more will change; then `succeeded`, or `failed` (failed or cancelled). */
  outcome(v: T): WaitOutcome;
  /** Lines for stderr once it has ended. */
  summary(v: T): Array<{ line: string; ok: boolean }>;
}

export interface WatchOptions {
  readonly reconnector: Reconnector;
  /** No progress output (for --json and --quiet). */
  readonly quiet: boolean;
  /** Default 300 ms. */
  readonly pollMs?: number;
}

/** Poll until `target` ends or the user presses Ctrl-C. Throws `unavailable` once the reconnector gives up. */
export async function watch<T>(target: WaitTarget<T>, first: T, opts: WatchOptions): Promise<{ last: T; interrupted: boolean }> {
  const pollMs = opts.pollMs ?? 300;
  const started = Date.now();
  const tty = Boolean(process.stderr.isTTY) && !opts.quiet;
  const parts = target.stages?.bind(target);
  const bar = tty && !parts
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | {done} done · {running} running · {failed} failed · {queued} queued | {elapsed}', hideCursor: true, stream: process.stderr, barsize: 30 },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const stageBars = tty && parts ? new StageBars(parts(first)) : null;
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  const fields = (p: WaitProgress) => ({ done: p.done, running: p.running, failed: p.failed, queued: p.queued, elapsed: elapsed(Date.now() - started) });
  let last = first;
  /** A line above the bar: stop it, print, draw it again. Connection notices are printed even when quiet. */
  const say = (line: string): void => {
    bar?.stop();
    stageBars?.stop();
    info(line);
    const p = target.progress(last);
    bar?.start(p.total, p.ended, fields(p));
    if (parts) stageBars?.start(parts(last));
  };
  opts.reconnector.say = say;
  const p0 = target.progress(first);
  bar?.start(p0.total, p0.ended, fields(p0));
  if (parts) stageBars?.start(parts(first));
  let toldWhy: string | null = null;
  let lastLine = 0;
  try {
    for (let firstRound = true; !stop.signal.aborted; firstRound = false) {
      if (!firstRound) last = await opts.reconnector.call(() => target.load(), stop.signal);
      const p = target.progress(last);
      if (p.never && p.never !== toldWhy && !opts.quiet) {
        // Something that cannot run would otherwise just sit at 0%: say why, once.
        say(`waiting: ${p.never} (Ctrl-C stops waiting; \`dsg cancel ${target.id}\` cancels the ${target.kind})`);
        toldWhy = p.never;
      }
      if (bar) bar.update(p.ended, fields(p));
      else if (stageBars && parts) stageBars.update(parts(last));
      else if (!opts.quiet && Date.now() - lastLine > 5000) {
        const detail = parts ? ` · ${parts(last).map((s) => `${s.name} ${s.state} ${s.ended}/${s.total}`).join(' · ')}` : '';
        info(`${target.id}: ${p.done} done, ${p.running} running, ${p.failed} failed, ${p.queued} queued (${elapsed(Date.now() - started)})${detail}`);
        lastLine = Date.now();
      }
      if (target.outcome(last) !== 'pending') break;
      await sleepFor(pollMs, stop.signal);
    }
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
  } finally {
    bar?.stop();
    stageBars?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const interrupted = stop.signal.aborted && target.outcome(last) === 'pending';
  if (interrupted) info(`stopped waiting; the ${target.kind} keeps running. Check it with: dsg ${target.kind} ${target.id}   ·   wait again: dsg wait ${target.id}`);
  return { last, interrupted };
}

/** One bar per part (stage), all redrawn together. */
class StageBars {
  private multi: cliProgress.MultiBar | null = null;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private readonly width: number;
  constructor(first: readonly WaitPart[]) {
    this.width = Math.max(5, ...first.map((s) => s.name.length));
  }
  private fields(s: WaitPart) {
    return { stage: s.name.padEnd(this.width), done: s.ended, all: s.total, state: s.state, note: s.note.slice(0, 70) };
  }
  start(parts: readonly WaitPart[]): void {
    this.multi = new cliProgress.MultiBar(
      { format: ' {stage} {bar} {done}/{all} {state} {note}', hideCursor: true, stream: process.stderr, barsize: 24, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    this.bars.clear();
    for (const s of parts) this.bars.set(s.name, this.multi.create(Math.max(1, s.total), s.ended, this.fields(s)));
  }
  update(parts: readonly WaitPart[]): void {
    for (const s of parts) {
      const b = this.bars.get(s.name);
      if (!b) continue;
      b.setTotal(Math.max(1, s.total));
      b.update(s.ended, this.fields(s));
    }
  }
  stop(): void {
    this.multi?.stop();
    this.multi = null;
  }
}
