/**
 * Tasks finished per minute over the last hour, for the dashboard's chart. Fed by the engine as attempts end
 * (EngineMetrics.countOutcome), kept in memory in 60 one-minute buckets: a restarted coordinator starts empty.
 * Kept out of the store on purpose: counting from the attempts table would need an index on finished_at over
 * every attempt, paid by every commit, for a chart.
 */
export class ThroughputMeter {
  private static readonly MINUTES = 60;
  /** bucket minute (ms since epoch / 60000) → counts; at most MINUTES + 1 entries. */
  private readonly buckets = new Map<number, { succeeded: number; failed: number }>();

  constructor(private readonly now: () => number) {}

  add(outcome: 'succeeded' | 'failed', n = 1): void {
    const minute = Math.floor(this.now() / 60_000);
    let b = this.buckets.get(minute);
    if (!b) {
      b = { succeeded: 0, failed: 0 };
      this.buckets.set(minute, b);
      for (const k of this.buckets.keys()) if (k <= minute - ThroughputMeter.MINUTES) this.buckets.delete(k);
    }
    b[outcome] += n;
  }

  /** The last hour, oldest first; the last bucket is the current minute. */
  lastHour(): Array<{ bucketStart: string; succeeded: number; failed: number }> {
    const minute = Math.floor(this.now() / 60_000);
    const out = [];
    for (let m = minute - ThroughputMeter.MINUTES + 1; m <= minute; m++) {
      const b = this.buckets.get(m);
      out.push({ bucketStart: new Date(m * 60_000).toISOString(), succeeded: b?.succeeded ?? 0, failed: b?.failed ?? 0 });
    }
    return out;
  }
}
