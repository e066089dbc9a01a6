/**
 * The coordinator's TLS: when to serve it, and its certificate.
 *
 * `auto` (the default) serves HTTPS and WSS on the same port whenever the coordinator listens beyond loopback
 * (`0.0.0.0`, a LAN address): tokens, node credentials, inputs and results then cross the network encrypted, and
 * clients know they talk to *this* coordinator by pinning its certificate's SHA-256 fingerprint (printed at start,
 * carried in the join command and in credentials.json). On a loopback-only address traffic never leaves the
 * machine, so plain HTTP stays the default there (`on` forces TLS anyway; `off` never serves it).
 *
 * Without `--tls-cert`/`--tls-key`, a self-signed certificate (ECDSA P-256, 10 years) is made at first start and
 * kept in `<dataDir>/tls/` (key 0600): the fingerprint stays the same across restarts, and changes only with a new
 * data dir. With the operator's own certificate, clients verify it the usual way (or pin it too).
 *
 * Certificate generation uses `@peculiar/x509` (Node 20's crypto reads X.509 but cannot write it; that library is
 * maintained, typed, built on WebCrypto with no native code, and is what `selfsigned` itself now builds on).
 */
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { ValidationError } from '@dsg/core';

export type TlsMode = 'auto' | 'on' | 'off';
export const TLS_MODES: readonly TlsMode[] = ['auto', 'on', 'off'];

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** `sha256:<hex>` of the certificate (DER). */
  readonly fingerprint: string;
  /** Made here (clients must pin it) or the operator's (verified the usual way). */
  readonly selfSigned: boolean;
  readonly certFile: string;
}

/** Whether an address is reachable only from this machine. */
export const isLoopbackHost = (host: string): boolean => host === 'localhost' || /^127\./.test(host) || host === '::1' || host === '[::1]';

/** Serve TLS? `auto`: beyond loopback only. */
export const wantsTls = (mode: TlsMode, host: string): boolean => mode === 'on' || (mode === 'auto' && !isLoopbackHost(host));

export const fingerprintOfPem = (pem: string): string => `sha256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')}`;

/** The certificate to serve: the operator's when given, else the data dir's own (made on first use). */
export async function tlsMaterial(opts: { readonly dataDir: string; readonly host: string; readonly certFile?: string | undefined; readonly keyFile?: string | undefined }): Promise<TlsMaterial> {
  if (opts.certFile || opts.keyFile) {
    if (!opts.certFile || !opts.keyFile)
      throw new ValidationError([{ path: opts.certFile ? '--tls-key' : '--tls-cert', message: 'give both --tls-cert FILE and --tls-key FILE (PEM), or neither to let the coordinator make its own certificate' }]);
    const [cert, key] = await Promise.all([readPem(opts.certFile, '--tls-cert'), readPem(opts.keyFile, '--tls-key')]);
    let fingerprint: string;
    try {
      fingerprint = fingerprintOfPem(cert);
    } catch (e) {
      throw new ValidationError([{ path: '--tls-cert', message: `${opts.certFile} is not a PEM certificate (${(e as Error).message})` }]);
    }
    return { cert, key, fingerprint, selfSigned: false, certFile: opts.certFile };
  }
  return selfSignedCertificate(opts.dataDir, opts.host);
}

async function readPem(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ValidationError([{ path: flag, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
}

/** `<dataDir>/tls/cert.pem` and `key.pem`, made once (names: localhost, this host, its addresses, the bind address). */
async function selfSignedCertificate(dataDir: string, host: string): Promise<TlsMaterial> {
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { cert, key, fingerprint: fingerprintOfPem(cert), selfSigned: true, certFile };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const names = new Set(['localhost', hostname(), `${hostname()}.local`]);
  const ips = new Set(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ips.add(a.address.replace(/%.*$/, ''));
  if (host !== '0.0.0.0' && host !== '::') (/^[\d.]+$|:/.test(host) ? ips : names).add(host);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '7'),
    name: `CN=DSG coordinator ${hostname()}`,
    notBefore: new Date(now - 3600_000), // a client clock a little behind still accepts it
    notAfter: new Date(now + 3650 * 86_400_000),
    keys: keys as unknown as x509.X509CertificateCreateSelfSignedParams['keys'],
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([...[...names].map((value) => ({ type: 'dns' as const, value })), ...[...ips].map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  const certPem = cert.toString('pem');
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  // Key first, each written whole (temp + rename), so a crash never leaves a certificate without its key.
  for (const [file, text] of [[keyFile, keyPem], [certFile, certPem]] as const) {
    await writeFile(`${file}.tmp`, text, { mode: 0o600 });
    await chmod(`${file}.tmp`, 0o600);
    await rename(`${file}.tmp`, file);
  }
  return { cert: certPem, key: keyPem, fingerprint: fingerprintOfPem(certPem), selfSigned: true, certFile };
}

/**
 * Answer plain-HTTP requests on the TLS port with a readable refusal instead of a dropped connection. The first byte
 * of a TLS connection is 0x16 (a handshake record), of an HTTP request a letter: this takes over the server's
 * `connection` event, peeks one chunk, puts it back and hands TLS connections to the server's own handler (Node's
 * TLS socket reads what is buffered on the socket it wraps). A plain request gets a 400 in the API's error format
 * saying to use https:// and is closed; it is never served. Its token, if any, has already crossed the network in
 * clear, which the message says. The fingerprint in the message came over plain HTTP: the message asks to compare it.
 */
export function refusePlainHttp(server: import('node:net').Server, fingerprint: string | null, sniffTimeoutMs = 10_000): void {
  const tlsHandlers = server.listeners('connection') as Array<(s: import('node:net').Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: import('node:net').Socket) => {
    socket.setTimeout(sniffTimeoutMs, () => socket.destroy());
    socket.once('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      if (first[0] === 0x16) {
        socket.unshift(first);
        for (const h of tlsHandlers) h.call(server, socket);
        return;
      }
      const pin = fingerprint ? ` (and pin its certificate: --tls-fingerprint ${fingerprint}, after comparing it with the one the coordinator printed)` : '';
      const message = `this coordinator serves HTTPS only: use https:// instead of http://${pin}. If this request carried a token, it crossed the network unencrypted`;
      const body = JSON.stringify({ error: { code: 'validation', message, details: { issues: [{ path: 'coordinator URL', message }] } } });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
}
