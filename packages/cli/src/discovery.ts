/**
 * Finding coordinators on the LAN (DNS-SD over mDNS, `_dsg._tcp`), for `dsg discover` and `dsg agent` without
 * --coordinator. What the TXT record says is untrusted input (anyone on the LAN can advertise): it is validated here,
 * and a record that does not parse is skipped, never half-used. The coordinator side is
 * packages/coordinator/src/discovery/advertise.ts.
 */
import BonjourModule from 'bonjour-service';

const SERVICE_TYPE = 'dsg';
/** The API version this CLI speaks; coordinators advertising another one are listed but not joined. */
export const SUPPORTED_API = '1';

export interface FoundGrid {
  readonly gridId: string;
  readonly name: string;
  readonly api: string;
  readonly tls: boolean;
  /** Fingerprint of the coordinator's certificate (sha256:…), when TLS is on. */
  readonly tlsFingerprint: string | null;
  /** URL built from the first IPv4 address in the answer and the advertised port. */
  readonly url: string;
  readonly addresses: readonly string[];
  readonly port: number;
}

/** Parse one answer; null when it is not a usable DSG advertisement. Pure, exported for tests. */
export function parseService(s: { txt?: unknown; addresses?: string[]; port?: number; referer?: { address: string } }): FoundGrid | null {
  const txt = (s.txt && typeof s.txt === 'object' ? s.txt : {}) as Record<string, unknown>;
  const str = (k: string): string | null => (typeof txt[k] === 'string' ? txt[k] : Buffer.isBuffer(txt[k]) ? txt[k].toString('utf8') : null);
  const id = str('id');
  const name = str('name');
  const api = str('api');
  const tls = str('tls');
  const fp = str('fp');
  if (!id || !/^[0-9a-f]{12}$/.test(id) || !name || name.length > 63 || !api || !/^\d{1,4}$/.test(api)) return null;
  if (tls !== '0' && tls !== '1') return null;
  if (fp !== null && !/^sha256:[0-9a-f]{64}$/.test(fp)) return null;
  const port = s.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  const v4 = (s.addresses ?? []).filter((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a));
  // Fall back to the address the answer came from (some responders leave the A record out).
  const addr = v4[0] ?? (s.referer && /^\d{1,3}(\.\d{1,3}){3}$/.test(s.referer.address) ? s.referer.address : null);
  if (!addr) return null;
  return { gridId: id, name, api, tls: tls === '1', tlsFingerprint: fp, url: `${tls === '1' ? 'https' : 'http'}://${addr}:${port}`, addresses: v4.length > 0 ? v4 : [addr], port };
}

export interface Browse {
  /** Grids found so far, one per grid id (a grid answering on two addresses is listed once). */
  found(): FoundGrid[];
  stop(): void;
}

/** Start browsing; `onFound` is called once per new grid. Queries are repeated every `requeryMs` (late starters). */
export function browse(onFound: (g: FoundGrid) => void = () => {}, requeryMs = 2000): Browse {
  const Bonjour = BonjourModule as unknown as typeof BonjourModule.Bonjour;
  const bonjour = new Bonjour({}, () => {});
  const grids = new Map<string, FoundGrid>();
  const browser = bonjour.find({ type: SERVICE_TYPE }, (s) => {
    const g = parseService(s);
    if (!g || grids.has(g.gridId)) return;
    grids.set(g.gridId, g);
    onFound(g);
  });
  // Gone grids (goodbye records) are forgotten, so a restarted coordinator on a new port is found anew.
  browser.on('down', (s: { txt?: unknown; addresses?: string[]; port?: number }) => {
    const g = parseService(s);
    if (g) grids.delete(g.gridId);
  });
  const timer = setInterval(() => browser.update(), requeryMs);
  return {
    found: () => [...grids.values()],
    stop: () => {
      clearInterval(timer);
      browser.stop();
      bonjour.destroy();
    },
  };
}

/** Browse for `timeoutMs` and return what answered. */
export async function discover(timeoutMs: number): Promise<FoundGrid[]> {
  const b = browse(() => {}, Math.max(250, Math.min(1000, timeoutMs / 3)));
  await new Promise((r) => setTimeout(r, timeoutMs));
  const out = b.found();
  b.stop();
  return out.sort((a, b2) => a.name.localeCompare(b2.name));
}

/**
 * For `dsg agent` without --coordinator: wait until exactly one grid matches (`gridName`, when given, picks by
 * name or id). Several grids and no --grid is an error listing them, after a short settle time so a second grid
 * answering a moment later is not missed. Waits forever (with progress lines) until one appears.
 */
export async function waitForGrid(opts: { gridName?: string; say: (line: string) => void; settleMs?: number; progressMs?: number; signal?: AbortSignal }): Promise<FoundGrid> {
  const settleMs = opts.settleMs ?? 1500;
  const progressMs = opts.progressMs ?? 10_000;
  const matches = (g: FoundGrid): boolean => g.api === SUPPORTED_API && (!opts.gridName || g.name === opts.gridName || g.gridId === opts.gridName);
  opts.say(`looking for a coordinator on the LAN (mDNS _dsg._tcp${opts.gridName ? `, grid "${opts.gridName}"` : ''})…`);
  const b = browse();
  const started = Date.now();
  let lastProgress = started;
  try {
    for (;;) {
      if (opts.signal?.aborted) throw new Error('stopped while looking for a coordinator');
      const all = b.found();
      const ok = all.filter(matches);
      if (ok.length > 0) {
        // Let other grids answer too before deciding, so "several grids" is reported rather than a random pick.
        await new Promise((r) => setTimeout(r, settleMs));
        const now = b.found().filter(matches);
        if (now.length === 1) return now[0]!;
        if (now.length > 1) throw new SeveralGrids(now);
      }
      if (Date.now() - lastProgress >= progressMs) {
        lastProgress = Date.now();
        const other = all.filter((g) => !matches(g));
        opts.say(`still looking (${Math.round((Date.now() - started) / 1000)}s)${other.length > 0 ? `; seen but not matching: ${other.map(describe).join(', ')}` : ''}. Start the coordinator with \`dsg up\`, or give --coordinator URL if this network blocks multicast`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    b.stop();
  }
}

export class SeveralGrids extends Error {
  constructor(readonly grids: FoundGrid[]) {
    super(`found ${grids.length} grids on the LAN: ${grids.map(describe).join('; ')}. Pick one with --grid NAME`);
  }
}

export const describe = (g: FoundGrid): string => `"${g.name}" (id ${g.gridId}) at ${g.url}${g.api !== SUPPORTED_API ? ` [API ${g.api}, this CLI speaks ${SUPPORTED_API}]` : ''}`;
