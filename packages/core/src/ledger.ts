/**
 * The contribution ledger: one entry per finished task attempt, written in the same store transaction that ends the
 * attempt, so the ledger adds up exactly to the recorded attempt run times (finished_at − started_at). Here: the
 * domain rules (what counts as wasted, how CPU is charged) and the wire shapes; the store aggregates in SQL.
 */
import { z } from 'zod';

/** How an entry's CPU time was obtained: `measured` by the agent (cgroup usage), or `declared` cores × wall. */
export type CpuSource = 'measured' | 'declared';
export type LedgerOutcome = 'succeeded' | 'wasted';
export const LEDGER_GROUPS = ['node', 'project', 'user'] as const;
export type LedgerGroupBy = (typeof LEDGER_GROUPS)[number];

/** The user a job is charged to until jobs carry their submitter: the token's name, else `admin`. */
export const LEDGER_DEFAULT_USER = 'admin';

/** The most CPU an agent may claim for an attempt: 4096 cores for 30 days; more is a broken or lying agent. */
export const MAX_REPORTED_CPU_MS = 4096 * 30 * 24 * 3600 * 1000;

/** What the agent may measure and send with `finished` (every field optional: old agents send none). */
export const AttemptUsageWire = z.strictObject({
  /** CPU time the task's processes used (user + system), in ms. */
  cpuMs: z.number().int().min(0).max(MAX_REPORTED_CPU_MS).optional(),
  /** Peak memory of the task's processes, in bytes (at most 1 PiB). */
  peakMemoryBytes: z.number().int().min(0).max(2 ** 50).optional(),
});
export type AttemptUsage = z.infer<typeof AttemptUsageWire>;

/** One finished attempt's charges, as the store writes them. */
export interface LedgerCharge {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly cpuSource: CpuSource;
  readonly gpuMs: number;
  /** Memory × wall in byte-milliseconds (declared memory, or the measured peak when the agent sent one). */
  readonly memoryByteMs: number;
  readonly memorySource: CpuSource;
  readonly outcome: LedgerOutcome;
}

/**
 * Charge one attempt. Wall time is the attempt's recorded run time (0 when it never started). CPU: the agent's
 * measurement when it sent one, else declared cores × wall. An attempt is `succeeded` only when it ended the task
 * successfully; failed, lost, cancelled, preempted and timed-out attempts are `wasted`.
 */
export function chargeAttempt(a: {
  readonly startedAt: number | null;
  readonly finishedAt: number;
  readonly attemptState: string;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  readonly gpus: number;
  readonly usage?: AttemptUsage | undefined;
}): LedgerCharge {
  const wallMs = a.startedAt === null ? 0 : Math.max(0, a.finishedAt - a.startedAt);
  const measuredCpu = a.usage?.cpuMs;
  const peak = a.usage?.peakMemoryBytes;
  return {
    wallMs,
    cpuMs: measuredCpu ?? Math.round((a.cpuMillis * wallMs) / 1000),
    cpuSource: measuredCpu !== undefined ? 'measured' : 'declared',
    gpuMs: Math.round(a.gpus * wallMs), // a shared GPU counts its fraction (gpuUnits): keep whole ms
    memoryByteMs: (peak ?? a.memoryBytes) * wallMs,
    memorySource: peak !== undefined ? 'measured' : 'declared',
    outcome: a.attemptState === 'succeeded' ? 'succeeded' : 'wasted',
  };
}

/** Totals for one group (or the whole ledger). Seconds are exact sums of the entries' milliseconds / 1000. */
export interface LedgerTotalsV1 {
  attempts: number;
  succeededAttempts: number;
  wastedAttempts: number;
  wallSeconds: number;
  succeededWallSeconds: number;
  wastedWallSeconds: number;
  cpuSeconds: number;
  /** Attempts whose CPU was measured by the agent; the rest were charged declared cores × wall. */
  cpuMeasuredAttempts: number;
  gpuSeconds: number;
  memoryGbSeconds: number;
}

export interface LedgerRowV1 extends LedgerTotalsV1 {
  /** The node name, project or user this row is for. */
  key: string;
}

export interface LedgerV1 {
  by: LedgerGroupBy;
  since: string | null;
  until: string | null;
  rows: LedgerRowV1[];
  total: LedgerTotalsV1;
}

export const LedgerQueryV1Schema = z.strictObject({
  by: z.enum(LEDGER_GROUPS).optional(),
  /** Attempts that finished at or after this time: ISO 8601 or epoch milliseconds. */
  since: z.union([z.iso.datetime({ offset: true }), z.coerce.number().int().min(0)]).optional(),
  until: z.union([z.iso.datetime({ offset: true }), z.coerce.number().int().min(0)]).optional(),
  node: z.string().min(1).max(200).optional(),
  project: z.string().min(1).max(200).optional(),
  user: z.string().min(1).max(200).optional(),
});
export type LedgerQueryV1 = z.infer<typeof LedgerQueryV1Schema>;

/** Raw sums per group, as a store returns them (milliseconds and byte-milliseconds). */
export interface LedgerSums {
  readonly key: string;
  readonly attempts: number;
  readonly succeededAttempts: number;
  readonly wallMs: number;
  readonly succeededWallMs: number;
  readonly cpuMs: number;
  readonly cpuMeasuredAttempts: number;
  readonly gpuMs: number;
  readonly memoryByteMs: number;
}

const GB = 1024 ** 3;

export function ledgerTotals(s: Omit<LedgerSums, 'key'>): LedgerTotalsV1 {
  return {
    attempts: s.attempts,
    succeededAttempts: s.succeededAttempts,
    wastedAttempts: s.attempts - s.succeededAttempts,
    wallSeconds: s.wallMs / 1000,
    succeededWallSeconds: s.succeededWallMs / 1000,
    wastedWallSeconds: (s.wallMs - s.succeededWallMs) / 1000,
    cpuSeconds: s.cpuMs / 1000,
    cpuMeasuredAttempts: s.cpuMeasuredAttempts,
    gpuSeconds: s.gpuMs / 1000,
    memoryGbSeconds: s.memoryByteMs / GB / 1000,
  };
}

/** Add group sums into the ledger's total (the store's groups partition the entries, so this is exact). */
export function sumLedger(rows: readonly LedgerSums[]): Omit<LedgerSums, 'key'> {
  const t = { attempts: 0, succeededAttempts: 0, wallMs: 0, succeededWallMs: 0, cpuMs: 0, cpuMeasuredAttempts: 0, gpuMs: 0, memoryByteMs: 0 };
  for (const r of rows) {
    t.attempts += r.attempts; t.succeededAttempts += r.succeededAttempts; t.wallMs += r.wallMs; t.succeededWallMs += r.succeededWallMs;
    t.cpuMs += r.cpuMs; t.cpuMeasuredAttempts += r.cpuMeasuredAttempts; t.gpuMs += r.gpuMs; t.memoryByteMs += r.memoryByteMs;
  }
  return t;
}

export function toLedgerV1(by: LedgerGroupBy, since: number | null, until: number | null, rows: readonly LedgerSums[]): LedgerV1 {
  return {
    by,
    since: since === null ? null : new Date(since).toISOString(),
    until: until === null ? null : new Date(until).toISOString(),
    rows: rows.map((r) => ({ key: r.key, ...ledgerTotals(r) })),
    total: ledgerTotals(sumLedger(rows)),
  };
}

export const LEDGER_CSV_COLUMNS = [
  'by', 'key', 'attempts', 'succeeded_attempts', 'wasted_attempts', 'wall_s', 'succeeded_wall_s', 'wasted_wall_s',
  'cpu_s', 'cpu_measured_attempts', 'gpu_s', 'memory_gb_s',
] as const;

const csvCell = (v: string | number): string => {
  const s = String(v);
  // Quote what would break the row, and defuse spreadsheet formulas in names (=, +, -, @ at the start).
  const safe = /^[=+\-@]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

/** The ledger as CSV (RFC 4180): a header, one line per group, then the total (first column `total`, no key). */
export function ledgerCsv(l: LedgerV1): string {
  const line = (key: string, t: LedgerTotalsV1): string => [
    l.by, key, t.attempts, t.succeededAttempts, t.wastedAttempts, t.wallSeconds, t.succeededWallSeconds, t.wastedWallSeconds,
    t.cpuSeconds, t.cpuMeasuredAttempts, t.gpuSeconds, Number(t.memoryGbSeconds.toFixed(6)),
  ].map(csvCell).join(',');
  return [LEDGER_CSV_COLUMNS.join(','), ...l.rows.map((r) => line(r.key, r)), line('', l.total).replace(/^[^,]*,/, 'total,')].join('\n') + '\n';
}
