/**
 * Per-token request rate limits (and per-IP limits on failed sign-ins), as token buckets held in memory: a bucket
 * holds up to `burst` requests and refills at `perSecond`. A request finding its bucket empty is refused with 429
 * `over_limit` and Retry-After (the seconds until one request's worth has refilled).
 *
 * The defaults are far above what a person, the CLI, an agent or the dashboard does (the CLI checks each input
 * with one HEAD before a submit: a burst of a few thousand), so only a runaway script or a guessing attack meets
 * them. Buckets idle long enough to be full again are forgotten, so memory stays bounded by active callers.
 */
import { OverLimitError } from '@dsg/core';

export interface RateLimitSettings {
  /** Sustained requests per second per token. Default 50; 0 turns per-token limits off. */
  readonly perTokenPerSecond: number;
  /** Requests a token may make at once before the sustained rate applies. Default 1000. */
  readonly perTokenBurst: number;
  /** Failed authentications (no, wrong, revoked or expired token) per minute per client IP. Default 60; 0: off. */
  readonly failedAuthPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = { perTokenPerSecond: 50, perTokenBurst: 1000, failedAuthPerMinute: 60 };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly tokens = new Map<string, Bucket>();
  private readonly failures = new Map<string, Bucket>();
  constructor(private readonly settings: RateLimitSettings, private readonly now: () => number = Date.now) {}

  /** Count one request of a token; throws OverLimitError (429) when its bucket is empty. */
  takeToken(tokenId: string): void {
    const { perTokenPerSecond: rate, perTokenBurst: burst } = this.settings;
    if (rate <= 0) return;
    const wait = take(this.tokens, tokenId, rate, Math.max(1, burst), this.now());
    if (wait > 0)
      throw new OverLimitError(`too many requests with this token: at most ${rate} per second (bursts of ${burst}); try again in ${Math.ceil(wait)} s`, wait, { limit: 'perTokenPerSecond', max: rate });
  }

  /** Whether this IP has used up its failed authentications (checked before the answer to a failed one). */
  failedAuth(ip: string): void {
    const perMinute = this.settings.failedAuthPerMinute;
    if (perMinute <= 0) return;
    const wait = take(this.failures, ip, perMinute / 60, perMinute, this.now());
    if (wait > 0)
      throw new OverLimitError(`too many failed authentications from ${ip}: at most ${perMinute} per minute; try again in ${Math.ceil(wait)} s with a valid token`, wait, { limit: 'failedAuthPerMinute', max: perMinute });
  }
}

/** Take one from the bucket; returns 0 when taken, else the seconds until one is available. */
function take(buckets: Map<string, Bucket>, key: string, perSecond: number, burst: number, now: number): number {
  let b = buckets.get(key);
  if (!b) {
    if (buckets.size >= 100_000) sweep(buckets, perSecond, burst, now);
    buckets.set(key, (b = { tokens: burst, at: now }));
  }
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
  b.at = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return (1 - b.tokens) / perSecond;
}

function sweep(buckets: Map<string, Bucket>, perSecond: number, burst: number, now: number): void {
  for (const [k, b] of buckets) if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) buckets.delete(k);
  if (buckets.size >= 100_000) buckets.clear();
}
