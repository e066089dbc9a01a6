/**
 * Test harness for end-to-end tests: real `dsg` processes in a temp dir with their own HOME, on 127.0.0.1 and
 * free ports. Everything a test starts is registered and killed (whole process group) in `cleanup()`.
 */
import { createServer } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coordinatorFetch, parseFingerprint } from '@dsg/client/tls';
import { nodeFetch } from '@dsg/client/node';
import type { FetchLike } from '@dsg/client';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DSG = join(ROOT, 'packages', 'cli', 'bin', 'dsg.js');

export interface Credentials {
  url: string;
  adminToken: string;
  joinToken: string;
  /** Set when the coordinator serves TLS with its self-signed certificate (beyond loopback, e.g. `dsg up`). */
  tlsFingerprint?: string;
}

/** A fetch for these credentials: pinned to the coordinator's certificate when it serves TLS (as the CLI does). */
export function fetchFor(c: Credentials): FetchLike {
  return c.tlsFingerprint ? coordinatorFetch(c.url, parseFingerprint(c.tlsFingerprint)) : nodeFetch;
}

/** A free TCP port on 127.0.0.1 (found by listening on port 0, then closed again). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class Sandbox {
  readonly dir = mkdtempSync(join(tmpdir(), 'dsg-e2e-'));
  readonly home = join(this.dir, 'home');
  private readonly procs: ChildProcess[] = [];

  /** `bin`: the dsg launcher to run (default the repository's; an installed package's in the install test). */
  constructor(readonly bin: string = DSG) {}

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: this.home, XDG_CONFIG_HOME: join(this.home, '.config'), XDG_STATE_HOME: join(this.home, '.state'), DSG_LOG_LEVEL: 'warn', ...extra };
  }

  /** Start a long-running dsg command (up, coordinator, agent) in its own process group. */
  start(args: string[], extraEnv: Record<string, string> = {}): { proc: ChildProcess; output: () => string } {
    const proc = spawn(process.execPath, [this.bin, ...args], { cwd: this.dir, env: this.env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    this.procs.push(proc);
    return { proc, output: () => out };
  }

  /** Run a dsg command to completion. */
  run(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; stdin?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [this.bin, ...args], { cwd: opts.cwd ?? this.dir, env: this.env(opts.env), stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      if (opts.stdin !== undefined) p.stdin!.end(opts.stdin);
      let stdout = '';
      let stderr = '';
      p.stdout!.on('data', (d) => (stdout += d));
      p.stderr!.on('data', (d) => (stderr += d));
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`dsg ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, opts.timeoutMs ?? 120_000);
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 30_000, diag?: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = 'never answered';
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
        last = `last answer: ${String(v)}`;
      } catch (e) {
        last = `last error: ${(e as Error).message}`; // not yet
      }
      if (Date.now() > deadline) {
        // The end of the output is what explains a timeout (the start is the banner); CI folds long messages.
        const out = diag ? diag().split('\n') : [];
        const tail = out.length > 40 ? ['[… ' + String(out.length - 40) + ' earlier lines]', ...out.slice(-40)] : out;
        throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (${last})${tail.length ? `\n${tail.join('\n')}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Credentials written by the coordinator in `dataDir`, once its URL has a real port. */
  async credentials(dataDir: string, diag?: () => string): Promise<Credentials> {
    const file = join(dataDir, 'credentials.json');
    return this.waitFor('credentials.json', () => {
      if (!existsSync(file)) return null;
      const c = JSON.parse(readFileSync(file, 'utf8')) as Credentials;
      return c.url && !c.url.endsWith(':0') ? c : null;
    }, 30_000, diag);
  }

  async api<T>(c: Credentials, method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetchFor(c)(`${c.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${c.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  kill(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
    try {
      process.kill(-proc.pid!, signal);
    } catch {
      /* already gone */
    }
  }

  async stop(proc: ChildProcess): Promise<void> {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    this.kill(proc, 'SIGTERM');
    const t = setTimeout(() => this.kill(proc, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
