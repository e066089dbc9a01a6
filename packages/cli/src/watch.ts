/**
 * Waiting for something on the grid to finish (`dsg wait`, `dsg submit --wait`): a live progress bar on a
 * terminal, a plain line every 5 s otherwise; polls through a Reconnector, so a coordinator restart is ridden out.
 *
 * What is waited for is a WaitTarget: today a job (commands/job-watch.ts); a workflow plugs in the same way,
 * with its own `load`, `progress` and `outcome`.
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

export interface WaitTarget<T> {
  /** "job", later "workflow": used in messages. */
  readonly kind: string;
  readonly id: string;
  /** Fetch the current state (one request or a few; retried by the caller while unreachable). */
  load(): Promise<T>;
  progress(v: T): WaitProgress;
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
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | {done} done · {running} running · {failed} failed · {queued} queued | {elapsed}', hideCursor: true, stream: process.stderr, barsize: 30 },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  const fields = (p: WaitProgress) => ({ done: p.done, running: p.running, failed: p.failed, queued: p.queued, elapsed: elapsed(Date.now() - started) });
  let last = first;
  /** A line above the bar: stop it, print, draw it again. Connection notices are printed even when quiet. */
  const say = (line: string): void => {
    bar?.stop();
    info(line);
    const p = target.progress(last);
    bar?.start(p.total, p.ended, fields(p));
  };
  opts.reconnector.say = say;
  const p0 = target.progress(first);
  bar?.start(p0.total, p0.ended, fields(p0));
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
      else if (!opts.quiet && Date.now() - lastLine > 5000) {
        info(`${target.id}: ${p.done} done, ${p.running} running, ${p.failed} failed, ${p.queued} queued (${elapsed(Date.now() - started)})`);
        lastLine = Date.now();
      }
      if (target.outcome(last) !== 'pending') break;
      await sleepFor(pollMs, stop.signal);
    }
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const interrupted = stop.signal.aborted && target.outcome(last) === 'pending';
  if (interrupted) info(`stopped waiting; the ${target.kind} keeps running. Check it with: dsg ${target.kind} ${target.id}   ·   wait again: dsg wait ${target.id}`);
  return { last, interrupted };
}
