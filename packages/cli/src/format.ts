/** Terminal output helpers: aligned tables, relative times, state colours. */
import { formatSize } from '@dsg/core/base';
import { processEnv } from './config.js';

export { formatSize };

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const width = headers.map((h, i) => Math.max(visible(h).length, ...rows.map((r) => visible(r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c + ' '.repeat(Math.max(0, width[i]! - visible(c).length))).join('  ').trimEnd();
  return [line(headers.map((h) => dim(h))), ...rows.map(line)].join('\n');
}

// eslint-disable-next-line no-control-regex
const visible = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

const useColor = process.stdout.isTTY && !processEnv['NO_COLOR'];
const paint = (code: string) => (s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);
export const dim = paint('2');
export const red = paint('31');
export const green = paint('32');
export const yellow = paint('33');
export const cyan = paint('36');
export const bold = paint('1');

export function colorState(state: string): string {
  switch (state) {
    case 'succeeded':
    case 'online':
      return green(state);
    case 'failed':
    case 'lost':
      return red(state);
    case 'running':
    case 'assigned':
      return cyan(state);
    case 'offline':
      return yellow(state);
    default:
      return dim(state);
  }
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function elapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * "1 core", "2 cores", "0.5 cores", "1 GPU", "3 GPUs": a count with its noun, singular only for exactly one.
 * `many` defaults to `one` + "s" (pass it for irregular nouns).
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What a task sees as DSG_ARRAY_VALUE: its value from the spec's `array:` list, or its index for `array: N`. */
export const taskValue = (t: { index: number; arrayValue: string | null }): string => t.arrayValue ?? String(t.index);
