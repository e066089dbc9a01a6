/**
 * Structured logging (pino) to stderr: JSON lines for machines (log collectors, `--log-level debug` bug reports),
 * or, when stderr is a terminal, one readable line per event: `12:00:01 WARN node lost nodeId=… attempts=2`.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Turn pino's JSON lines into short human lines. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, component, err, ...rest } = o;
  const t = typeof time === 'string' ? time.slice(11, 19) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const error = err && typeof err === 'object' ? ` — ${(err as { message?: string }).message ?? ''}` : '';
  void component;
  return `${t} ${(LEVEL_NAMES[level as number] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${error}${fields ? ` ${fields}` : ''}\n`;
}

export function createLogger(level: string, pretty: boolean = Boolean(process.stderr.isTTY)): Logger {
  const options = { level, base: { component: 'coordinator' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!pretty) return pino(options, pino.destination(2));
  let partial = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l) process.stderr.write(prettyLine(l));
      done();
    },
  });
  return pino(options, out);
}
