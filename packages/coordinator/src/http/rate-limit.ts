/**
 * Per-token request rate limits (and per-IP limits on failed sign-ins), as token buckets held in memory: a bucket
 * holds up to `burst` requests and refills at `perSecond`. A request finding its bucket empty is refused with 429
 * `over_limit` and Retry-After (the seconds until one request's worth has refilled).
 *
 * The defaults are far above what a person, the CLI or the dashboard does (the CLI checks each input with one HEAD
 * before a submit, one after another: a submit of 10,000 files fits in one burst; the dashboard makes ~2 requests
 * a second). A node credential gets `NODE_FACTOR` times the allowance: an agent fetches inputs and uploads outputs
 * per task, at the pace its tasks finish, and must never be slowed by this. Only a runaway script or a guessing
 * attack meets the limits. Buckets idle long enough to be full again are forgotten, so memory stays bounded.
 */
import { OverLimitError } from '@dsg/core';

export interface RateLimitSettings {
  /** Sustained requests per second per token (node credentials: 10 times this). Default 200; 0 turns per-token limits off. */
  readonly perTokenPerSecond: number;
  /** Requests a token may make at once before the sustained rate applies (node credentials: 10 times this). Default 10,000. */
  readonly perTokenBurst: number;
  /** Failed authentications (no, wrong, revoked or expired token) per minute per client IP. Default 60; 0: off. */
  readonly failedAuthPerMinute: number;
  /**
   * Failed authentications per minute from all addresses together. Default 10 × `failedAuthPerMinute` (600); 0: off. Guessing a join code from
   * many addresses (a botnet, or IPv6 addresses by the million) meets this bound; it refuses only failed attempts
   * (a valid token is never refused by it), so it cannot lock real users out.
   */
  readonly failedAuthGlobalPerMinute?: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = { perTokenPerSecond: 200, perTokenBurst: 10_000, failedAuthPerMinute: 60 };
/** How many times the per-token allowance a node credential gets. */
export const NODE_FACTOR = 10;

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly tokens = new Map<string, Bucket>();
  private readonly failures = new Map<string, Bucket>();
  constructor(private readonly settings: RateLimitSettings, private readonly now: () => number = Date.now) {}

  /** Count one request of a token; throws OverLimitError (429) when its bucket is empty. */
  takeToken(tokenId: string, isNode = false): void {
    const f = isNode ? NODE_FACTOR : 1;
    const rate = this.settings.perTokenPerSecond * f;
    const burst = this.settings.perTokenBurst * f;
    if (rate <= 0) return;
    const wait = take(this.tokens, tokenId, rate, Math.max(1, burst), this.now());
    if (wait > 0)
      throw new OverLimitError(`too many requests with this token: at most ${rate} per second (bursts of ${burst}); try again in ${Math.ceil(wait)} s`, wait, { limit: 'perTokenPerSecond', max: rate });
  }

  /**
   * Count one failed authentication of this IP (and of everyone: the global bound); throws OverLimitError (429)
   * once either budget is spent. Called before the answer to a failed one, by the API and the agent hub alike.
   */
  failedAuth(ip: string): void {
    const global = this.settings.failedAuthGlobalPerMinute ?? this.settings.failedAuthPerMinute * 10;
    if (global > 0) {
      const w = take(this.failures, '*', global / 60, global, this.now());
      if (w > 0)
        throw new OverLimitError(`too many failed authentications at this coordinator (someone may be guessing tokens or join codes): at most ${global} per minute from all addresses; try again in ${Math.ceil(w)} s with a valid token`, w, { limit: 'failedAuthGlobalPerMinute', max: global });
    }
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
