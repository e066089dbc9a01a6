/** What every command gets: the client (built lazily from config) and the process's streams. */
import { existsSync } from 'node:fs';
import { DsgClient, type FetchLike } from '@dsg/client';
import { loadClientConfig, rememberClientPin, resolveGiveUpAfter, type ClientConfig } from './config.js';
import { Reconnector } from './reconnect.js';

// node:http and friends load on the first request, not at start-up: `dsg --version` and `--help` never pay for them.
let nodeFetchModule: Promise<typeof import('@dsg/client/node')> | undefined;
const lazyNodeFetch: FetchLike = async (url, init) => (await (nodeFetchModule ??= import('@dsg/client/node'))).nodeFetch(url, init);

export interface GlobalFlags {
  coordinator?: string;
  token?: string;
  tlsFingerprint?: string;
}

/** The settings of the client this process made, so an error message can say where they came from. */
let active: ClientConfig | null = null;
export const activeClientConfig = (): ClientConfig | null => active;

export function clientFrom(flags: GlobalFlags): DsgClient {
  const c = loadClientConfig(flags);
  active = c;
  // A fingerprint given with --tls-fingerprint for the coordinator the config file names is remembered there after
  // the first request it pinned succeeds, so the next command needs no flag.
  const remember = flags.tlsFingerprint !== undefined && c.coordinatorSource.kind === 'file';
  const network = c.coordinator.startsWith('https://') ? lazyTlsFetch(c, remember) : lazyNodeFetch;
  return new DsgClient({ baseUrl: c.coordinator, token: c.token, fetch: c.localSocket ? viaLocalSocket(c.localSocket, c.coordinator, network) : network });
}

/**
 * On the coordinator's machine, as its user: requests go through its local API socket (@dsg/client/local: checked
 * before each connection, no TLS), and through `network` whenever that socket is missing, stale or not this user's.
 */
function viaLocalSocket(socketPath: string, baseUrl: string, network: FetchLike): FetchLike {
  let local: Promise<FetchLike> | null = null;
  return async (input, init) => (await (local ??= import('@dsg/client/local').then((l) => l.createLocalFetch(socketPath, baseUrl, () => network))))(input, init);
}

/**
 * The fetch for an https:// coordinator (pinned when a fingerprint is configured; see @dsg/client/tls), loaded on
 * first use so plain-HTTP commands never load the TLS code.
 */
function lazyTlsFetch(c: ClientConfig, rememberPin: boolean): FetchLike {
  let f: Promise<{ fetch: FetchLike; pin: string | null }> | null = null;
  let remembered = !rememberPin;
  return async (input, init) => {
    f ??= import('@dsg/client/tls').then((t) => {
      const pin = c.tlsFingerprint ? t.parseFingerprint(c.tlsFingerprint) : null;
      return { fetch: t.coordinatorFetch(c.coordinator, pin), pin };
    });
    const { fetch: pinned, pin } = await f;
    const res = await pinned(input, init);
    if (!remembered && pin) {
      remembered = true;
      rememberClientPin(c.coordinatorSource.name, pin);
    }
    return res;
  };
}

/**
 * Load Node's TLS module now when this process will talk to an https:// coordinator (the settings resolved as
 * `clientFrom` will resolve them, from the global flags as given on the command line). Why: on Node 24, loading `node:tls`
 * starts a thread that parses Node's ~140 root certificates and any NODE_EXTRA_CA_CERTS file, and the process cannot
 * exit before that thread ends (it is joined at exit). Loaded at the first request, as before, the thread was still
 * parsing when a short command like `dsg jobs` had printed its answer, and held its exit back (0–20 ms, more with
 * a large NODE_EXTRA_CA_CERTS); loaded here, it runs on the other core while the command's code loads. Only a
 * hint: the connection is made and checked later exactly as without it, and a hint that cannot be read does nothing.
 */
export function preloadTls(flags: GlobalFlags): void {
  let c: ClientConfig;
  try {
    c = loadClientConfig(flags);
  } catch {
    return; // clientFrom reports it, with its advice, when the command asks for a client
  }
  // A local socket that is there and answers needs no TLS; one that is gone is known here at the cost of a stat.
  if (c.localSocket && existsSync(c.localSocket)) return;
  if (c.coordinator.startsWith('https://')) process.getBuiltinModule?.('node:tls'); // Node 22.3+
}

/** For commands that wait: retries an unreachable coordinator until the give-up time (flag > env > 5 minutes). */
export function reconnectorFor(client: DsgClient, giveUpAfter: string | undefined, resumeHint: string, say: (line: string) => void = info): Reconnector {
  const g = resolveGiveUpAfter(giveUpAfter);
  return new Reconnector({ giveUpAfterMs: g.ms, giveUpSource: g.source, url: client.baseUrl, resumeHint, say });
}

export const GIVE_UP_HELP = 'keep trying an unreachable coordinator this long before exiting 3, e.g. 30s, 10m, 1h (default 5m, or env DSG_GIVE_UP_AFTER)';

export const print = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
export const printJson = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
};
export const info = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/**
 * `dsg jobs | head`: once the reader has gone, writing fails with EPIPE. That is the reader's choice, not an error:
 * end quietly with 0 like other Unix tools instead of crashing with an unhandled 'error' event.
 */
export function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(Exit.ok);
      throw e;
    });
}

/**
 * Exit codes: 0 ok, 1 a job failed or a runtime error, 2 bad input, 3 cannot reach the coordinator, 4 refused for now
 * (a limit is reached: try again later), 130 interrupted.
 */
export const Exit = { ok: 0, failed: 1, usage: 2, unavailable: 3, overLimit: 4, rejected: 5, interrupted: 130 } as const;

export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
