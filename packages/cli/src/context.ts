/** What every command gets: the client (built lazily from config) and the process's streams. */
import { DsgClient } from '@dsg/client';
import { loadClientConfig } from './config.js';

export interface GlobalFlags {
  coordinator?: string;
  token?: string;
}

export function clientFrom(flags: GlobalFlags): DsgClient {
  const c = loadClientConfig(flags);
  return new DsgClient({ baseUrl: c.coordinator, token: c.token });
}

export const print = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
export const printJson = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};
export const info = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** Exit codes: 0 ok, 1 a job failed or a runtime error, 2 bad input, 3 cannot reach the coordinator. */
export const Exit = { ok: 0, failed: 1, usage: 2, unavailable: 3 } as const;

export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
