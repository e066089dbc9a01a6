/**
 * TLS with a pinned certificate, for the CLI and the agent (Node only: import `@dsg/client/tls`; the package root
 * stays free of `node:*` for the dashboard).
 *
 * The coordinator makes a self-signed certificate at first start; no CA vouches for it, so clients **pin** its
 * SHA-256 fingerprint (printed by `dsg up` and carried in the join command). How a pin is enforced:
 *   1. a first TLS handshake that sends nothing (no token, no request) reads the certificate the server presents;
 *   2. its fingerprint must equal the pin, or nothing more is sent: `PinMismatchError` says what to do;
 *   3. every real connection then trusts exactly that certificate (`ca`) beside the usual roots, and checks the
 *      fingerprint again in `checkServerIdentity` (so a server swapped between the probe and the request is refused
 *      before any header leaves). Host names are not checked for a pinned certificate: the pin is stronger.
 * Without a pin, an `https://` coordinator is verified the usual way (an operator's CA-signed certificate just
 * works); a self-signed one is refused with its fingerprint and how to trust it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, rootCertificates, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { DsgError, ValidationError } from '@dsg/core/base';
import type { FetchLike } from './fetch-like.js';
import { createNodeFetch, nodeFetch } from './node-fetch.js';

/** `sha256:` + 64 lowercase hex digits: the one spelling printed and stored. */
export type Fingerprint = `sha256:${string}`;

/**
 * Accepts `sha256:HEX`, bare `HEX`, or the colon-separated form browsers and `openssl x509 -fingerprint` print
 * (`AB:CD:…`), in either case; returns `sha256:<lowercase hex>`.
 */
export function parseFingerprint(text: string, where = '--tls-fingerprint'): Fingerprint {
  const hex = text.trim().replace(/^sha-?256[:=]/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new ValidationError([{ path: where, message: `expected a SHA-256 certificate fingerprint like sha256:3f9a… (64 hex digits), as \`dsg up\` prints it; got "${text}"` }]);
  return `sha256:${hex}`;
}

/** The fingerprint of a certificate (PEM text or DER bytes). */
export function fingerprintOf(cert: string | Uint8Array): Fingerprint {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : cert;
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

export class PinMismatchError extends DsgError {
  constructor(url: string, readonly presented: Fingerprint, readonly pinned: Fingerprint) {
    super('unauthorized',
      `the coordinator at ${url} presented certificate ${presented}, but ${pinned} is pinned. Nothing was sent. ` +
      `Either this is not your coordinator (someone may be impersonating it), or the grid's certificate was made anew ` +
      `(a new data dir). If you trust it — compare with what \`dsg up\` / \`dsg coordinator\` prints on the coordinator's machine — ` +
      `use --tls-fingerprint ${presented}.`, { tls: 'pin_mismatch', presented, pinned });
  }
}

export class UntrustedCertificateError extends DsgError {
  constructor(url: string, readonly presented: Fingerprint, why: string) {
    super('unauthorized',
      `the coordinator at ${url} presented a certificate this machine does not trust (${why}); its fingerprint is ${presented}. ` +
      `If that is what \`dsg up\` / \`dsg coordinator\` printed on the coordinator's machine, trust it with --tls-fingerprint ${presented} ` +
      `(or DSG_TLS_FINGERPRINT).`, { tls: 'untrusted', presented });
  }
}

const hostOf = (u: URL): string => u.hostname.replace(/^\[|\]$/g, '');

/** TLS options naming the server (SNI only for names, never for IP addresses). */
function baseOptions(u: URL): ConnectionOptions {
  const host = hostOf(u);
  return { host, port: Number(u.port || 443), ...(isIP(host) ? {} : { servername: host }) };
}

/** Handshake only (nothing sent) and return the certificate the server presents, and whether Node trusts it. */
export function probeCertificate(url: string, timeoutMs = 10_000): Promise<{ pem: string; fingerprint: Fingerprint; trusted: boolean; why: string | null }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ ...baseOptions(u), rejectUnauthorized: false });
    const timer = setTimeout(() => socket.destroy(new DsgError('unavailable', `no TLS handshake from ${url} within ${timeoutMs / 1000}s`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate(true) as PeerCertificate;
      const trusted = socket.authorized;
      const why = socket.authorizationError ? String(socket.authorizationError) : null;
      socket.destroy();
      if (!cert?.raw) return reject(new DsgError('unavailable', `${url} presented no certificate`));
      const pem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
      resolve({ pem, fingerprint: fingerprintOf(cert.raw), trusted, why });
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * A refused certificate (PinMismatchError from the handshake check) arrives as the cause of a failed fetch: throw it
 * as it is, with its advice, instead of a bare "fetch failed".
 */
function surfacingRefusals(inner: FetchLike): FetchLike {
  return async (input, init) => {
    try {
      return await inner(input, init);
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      throw cause instanceof DsgError ? cause : e;
    }
  };
}

/** What a pinned connection trusts: TLS options for `ws` and `https`, and a `fetch` through the same. */
export interface PinnedTransport {
  readonly fingerprint: Fingerprint;
  /** For `new WebSocket(url, { ...tlsOptions })` and `https.request`. */
  readonly tlsOptions: Pick<ConnectionOptions, 'ca' | 'checkServerIdentity'>;
  readonly fetch: FetchLike;
  close(): Promise<void>;
}

/**
 * Check the server's certificate against `pin` (step 1–2 above) and return a transport that trusts exactly it.
 * Throws PinMismatchError, before anything is sent, when the server presents another certificate.
 */
export async function pinnedTransport(url: string, pin: Fingerprint): Promise<PinnedTransport> {
  const probe = await probeCertificate(url);
  if (probe.fingerprint !== pin) throw new PinMismatchError(url, probe.fingerprint, pin);
  const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
    const got = cert?.raw ? fingerprintOf(cert.raw) : null;
    return got === pin ? undefined : new PinMismatchError(url, got ?? ('sha256:' as Fingerprint), pin);
  };
  // A self-signed certificate (what the coordinator makes) is its own root: trusting it alone is enough, and skips
  // loading Node's ~140 root certificates into the TLS context (~20 ms per connection). An operator's certificate
  // that a CA signed needs the roots to build its chain.
  const cert = new X509Certificate(probe.pem);
  const tlsOptions = { ca: cert.checkIssued(cert) ? [probe.pem] : [probe.pem, ...rootCertificates], checkServerIdentity };
  const inner = createNodeFetch({ tls: tlsOptions });
  return { fingerprint: pin, tlsOptions, fetch: surfacingRefusals(inner), close: async () => inner.close() };
}

/**
 * A `fetch` for a coordinator URL: plain for `http://`; pinned when a fingerprint is given (the pin is checked on
 * first use and kept); otherwise normal verification, turning an untrusted certificate into a message with its
 * fingerprint and what to do.
 */
export function coordinatorFetch(baseUrl: string, pin: Fingerprint | null): FetchLike {
  if (!baseUrl.startsWith('https://')) return nodeFetch;
  if (pin) {
    // One handshake per connection: its certificate must have the pinned fingerprint before the request is
    // written (no separate probe, no CA chain: the pin is stronger than both).
    const inner = createNodeFetch({
      verifyPeer: (der) => {
        const got = fingerprintOf(der);
        return got === pin ? undefined : new PinMismatchError(baseUrl, got, pin);
      },
    });
    return surfacingRefusals(inner);
  }
  return async (input, init) => {
    try {
      return await nodeFetch(input, init);
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if (cause?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(cause.code)) {
        const probe = await probeCertificate(baseUrl).catch(() => null);
        if (probe) throw new UntrustedCertificateError(baseUrl, probe.fingerprint, cause.code);
      }
      throw e;
    }
  };
}
