/** Structured logging (pino): JSON lines when not a TTY, readable lines otherwise. */
import { pino, type Logger } from 'pino';
export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { component: 'coordinator' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
