/** Formatting for people: sizes, durations, times ago, an estimate of the time left. Pure: the clock is passed in. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; whole numbers lose their ".0". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1).replace(/\.0$/, '')} ${UNITS[i]}`;
}

/** Milliseconds as "850 ms", "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** An ISO time relative to `now`: "just now", "5 s ago", "3 min ago", "in 2 min"; "—" for null. */
export function formatAgo(iso: string | null, now: number): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '?';
  const d = now - t;
  if (Math.abs(d) < 2000) return 'just now';
  return d > 0 ? `${formatDuration(Math.floor(d / 1000) * 1000)} ago` : `in ${formatDuration(Math.ceil(-d / 1000) * 1000)}`;
}

/** Duration between two ISO times (the second defaults to now), or "—" before the first. */
export function formatSpan(from: string | null, to: string | null, now: number): string {
  if (!from) return '—';
  const end = to ? Date.parse(to) : now;
  return formatDuration(Math.max(0, end - Date.parse(from)));
}

/**
 * Time left for a job from its pace so far: tasks done since the first started, extrapolated to the rest.
 * Null when nothing has finished yet (no pace to go by) or nothing is left.
 */
export function estimateRemainingMs(p: { total: number; done: number; startedAt: number | null; now: number }): number | null {
  const left = p.total - p.done;
  if (left <= 0 || p.done <= 0 || p.startedAt === null || p.now <= p.startedAt) return null;
  return Math.round(((p.now - p.startedAt) / p.done) * left);
}

/** "1,234" */
export const formatCount = (n: number): string => n.toLocaleString('en-US');
