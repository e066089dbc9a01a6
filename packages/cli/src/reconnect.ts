/**
 * Riding out a coordinator restart. Commands that wait (`dsg wait`, `submit --wait`, `logs --follow`) call the
 * coordinator through a Reconnector: a request that fails because the coordinator cannot be reached is retried
 * with exponential backoff (0.2 s doubling to 5 s) instead of ending the command, since the job lives on in the
 * coordinator's database and carries on when it is back.
 *
 *   up ──request fails (unreachable)──▶ down: say once "unreachable, still trying for T"; sleep, retry
 *   down ──request succeeds──▶ up: say "back after D"; backoff reset
 *   down ──unreachable for longer than T──▶ throw `unavailable` (exit 3), the message stating T
 *
 * Only "cannot reach" errors are retried; an answer from the coordinator (404, 401, bad input) is passed on
 * at once, so a retry never hides a real failure.
 */
import { DsgError, formatDuration, isDsgError } from '@dsg/core/base';

export interface ReconnectOptions {
  /** Give up once the coordinator has been unreachable this long (ms). 0: at the first failure. */
  readonly giveUpAfterMs: number;
  /** Where the give-up time came from, named in messages (`--give-up-after`, `DSG_GIVE_UP_AFTER`, `default`). */
  readonly giveUpSource: string;
  /** The coordinator's URL, for messages. */
  readonly url: string;
  /** Added to the give-up message: how to pick up again later (e.g. "`dsg wait job_…` waits again"). */
  readonly resumeHint?: string;
  /** First retry delay. Default 200 ms. */
  readonly initialDelayMs?: number;
  /** Longest delay between retries. Default 5,000 ms. */
  readonly maxDelayMs?: number;
  /** Prints one line to the user (stderr). */
  readonly say: (line: string) => void;
  /** Default: Date.now. */
  readonly now?: () => number;
  /** Default: a timer, cut short by `signal`. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Thrown by `call` when its signal is aborted while it waits to retry (Ctrl-C). */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

export const isUnreachable = (e: unknown): e is DsgError => isDsgError(e) && e.code === 'unavailable';

export function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class Reconnector {
  private downSince: number | null = null;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Where the one-line notices go; a progress display swaps in its own to print above its bar. */
  say: (line: string) => void;

  constructor(private readonly o: ReconnectOptions) {
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? sleepFor;
    this.say = o.say;
  }

  /** True while the coordinator is unreachable (between the "unreachable" and "back" lines). */
  get down(): boolean {
    return this.downSince !== null;
  }

  /** Run `fn`, retrying it while the coordinator cannot be reached; see the state machine above. */
  async call<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let delay = this.o.initialDelayMs ?? 200;
    const maxDelay = this.o.maxDelayMs ?? 5000;
    for (;;) {
      if (signal?.aborted) throw new Interrupted();
      let value: T;
      try {
        value = await fn();
      } catch (e) {
        if (!isUnreachable(e)) throw e;
        const now = this.now();
        if (this.downSince === null) {
          this.downSince = now;
          if (this.o.giveUpAfterMs > 0)
            this.say(`the coordinator at ${this.o.url} is unreachable (${shortReason(e)}); still trying, for up to ${formatDuration(this.o.giveUpAfterMs)} (${this.giveUpSetting()})`);
        }
        const downFor = now - this.downSince;
        if (downFor >= this.o.giveUpAfterMs) {
          this.downSince = null;
          throw new DsgError(
            'unavailable',
            `gave up: the coordinator at ${this.o.url} has been unreachable for ${formatDuration(downFor)}, longer than the give-up time of ${formatDuration(this.o.giveUpAfterMs)} (${this.giveUpSetting()}). ` +
              `Last error: ${shortReason(e)}.${this.o.resumeHint ? ` ${this.o.resumeHint}` : ''}`,
          );
        }
        await this.sleep(Math.min(delay, this.o.giveUpAfterMs - downFor), signal);
        delay = Math.min(delay * 2, maxDelay);
        continue;
      }
      if (this.downSince !== null) {
        this.say(`the coordinator is back (unreachable for ${formatDuration(this.now() - this.downSince)}); carrying on`);
        this.downSince = null;
      }
      return value;
    }
  }

  private giveUpSetting(): string {
    return this.o.giveUpSource === 'default' ? 'change it with --give-up-after or DSG_GIVE_UP_AFTER' : `from ${this.o.giveUpSource}`;
  }
}

/** "ECONNREFUSED" out of the client's long "cannot reach … : ECONNREFUSED. Is it running? …" message. */
function shortReason(e: DsgError): string {
  const m = /^cannot reach the coordinator at \S+: (.*?)\. Is it running\?/.exec(e.message);
  return m ? m[1]! : e.message;
}
