/**
 * Sizes and durations as people write them in job specs: `512Mi`, `2G`, `1.5Gi`; `30s`, `5m`, `1h30m`, `250ms`.
 * A bare number is rejected on purpose: `memory: 512` could mean bytes or MiB, and guessing wrong fails late.
 */
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9, T: 1e12, TB: 1e12,
  Ki: 1024, KiB: 1024, Mi: 1024 ** 2, MiB: 1024 ** 2, Gi: 1024 ** 3, GiB: 1024 ** 3, Ti: 1024 ** 4, TiB: 1024 ** 4,
};
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)\s*$/;

/** Parse a size like `512Mi` into bytes, or return null when it is not one. */
export function parseSize(text: string): number | null {
  const m = SIZE_RE.exec(text);
  if (!m) return null;
  const unit = SIZE_UNITS[m[2]!];
  if (unit === undefined) return null;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isFinite(bytes) ? bytes : null;
}

export function formatSize(bytes: number): string {
  const units = ['B', 'Ki', 'Mi', 'Gi', 'Ti'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '');
  return `${s}${units[i]}`;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Parse a duration like `5m` or `1h30m` into milliseconds, or return null when it is not one. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (!DURATION_RE.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(DURATION_PART)) total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s % 60);
  if (m < 60) return rs ? `${m}m${rs}s` : `${m}m`;
  const h = Math.floor(m / 60);
  const rm = m % 60;
  return rm ? `${h}h${rm}m` : `${h}h`;
}
