/**
 * LAN advertisement (DNS-SD over mDNS, service type `_dsg._tcp`): lets `dsg agent` without --coordinator and
 * `dsg discover` find this coordinator. The TXT record carries only what is safe to shout on a LAN: the grid's id and
 * name, the API version, whether TLS is on and the certificate fingerprint to pin. Never a token.
 *
 * mDNS is unauthenticated: anyone on the LAN can advertise `_dsg._tcp`. That is why the TXT carries the TLS
 * fingerprint (an agent that joins over TLS pins what it found, and a spoofer without the key fails the handshake)
 * and why a discovered coordinator still needs a join token to admit a node. See docs/SECURITY.md.
 */
import BonjourModule from 'bonjour-service';

/** The DNS-SD service type, without the leading underscore and protocol (bonjour-service adds `_…._tcp`). */
export const DSG_SERVICE_TYPE = 'dsg';
/** Bumped when the HTTP/WebSocket API changes incompatibly; agents skip coordinators with another version. */
export const DSG_API_VERSION = '1';

export interface AdvertiseOptions {
  readonly gridId: string;
  readonly gridName: string;
  readonly port: number;
  /** The SHA-256 fingerprint of the certificate when TLS is on (self-signed or not), null when TLS is off. */
  readonly tlsFingerprint: string | null;
  readonly tls: boolean;
  /** Called on a socket error of the mDNS responder (logged; advertising is best-effort and never stops the grid). */
  readonly onError: (e: Error) => void;
}

export interface Advertisement {
  readonly txt: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

/**
 * Whether advertising makes sense for a listen address: not for loopback-only binds (nobody on the LAN could
 * connect to what we would advertise).
 */
export function advertisableHost(host: string): boolean {
  return !(host === 'localhost' || host === '::1' || /^127\./.test(host));
}

export function advertise(o: AdvertiseOptions): Advertisement {
  const txt: Record<string, string> = {
    id: o.gridId,
    name: o.gridName,
    api: DSG_API_VERSION,
    tls: o.tls ? '1' : '0',
    ...(o.tlsFingerprint ? { fp: o.tlsFingerprint } : {}),
  };
  const Bonjour = BonjourModule as unknown as typeof BonjourModule.Bonjour;
  const bonjour = new Bonjour({}, (e: Error) => o.onError(e));
  // The instance name must be unique on the LAN: two grids named "lab" on one network are told apart by their ids.
  bonjour.publish({ name: `${o.gridName} (${o.gridId.slice(0, 8)})`, type: DSG_SERVICE_TYPE, port: o.port, txt, disableIPv6: true })
    .on('error', (e: Error) => o.onError(e));
  let stopped: Promise<void> | null = null;
  return {
    txt,
    // unpublishAll sends the "goodbye" records (TTL 0) so browsers drop us at once instead of after the TTL.
    stop: () => (stopped ??= new Promise<void>((done) => {
      const t = setTimeout(() => { bonjour.destroy(); done(); }, 1000);
      bonjour.unpublishAll(() => { clearTimeout(t); bonjour.destroy(); done(); });
    })),
  };
}
