// Fingerprints: the spellings people paste are read as one, bad ones are refused with the flag named; and the pin
// check against a real TLS server: the right pin connects, a wrong one is refused before any request is sent.
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { ValidationError } from '@dsg/core';
import { coordinatorFetch, fingerprintOf, parseFingerprint, PinMismatchError, pinnedTransport } from '../src/tls.js';

const HEX = '3f'.repeat(32);

async function selfSigned(): Promise<{ cert: string; key: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=test', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), keys: keys as never, signingAlgorithm: alg });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { cert: cert.toString('pem'), key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n` };
}

describe('TLS pinning', () => {
  it('reads sha256:HEX, bare HEX and the colon form, in either case', () => {
    const want = `sha256:${HEX}`;
    assert.equal(parseFingerprint(want), want);
    assert.equal(parseFingerprint(HEX.toUpperCase()), want);
    assert.equal(parseFingerprint(`SHA256:${HEX.match(/../g)!.join(':').toUpperCase()}`), want);
    assert.equal(parseFingerprint(` sha-256=${HEX} `), want);
  });

  it('refuses anything else, naming where it came from', () => {
    for (const bad of ['', 'sha256:', `sha1:${HEX}`, HEX.slice(2), `${HEX}00`, 'sha256:zz'.padEnd(71, 'z')]) {
      assert.throws(() => parseFingerprint(bad, 'DSG_TLS_FINGERPRINT'), (e: unknown) => e instanceof ValidationError && /DSG_TLS_FINGERPRINT/.test(e.message) && /64 hex digits/.test(e.message), bad);
    }
  });

  it('connects with the right pin and refuses a wrong one before any request reaches the server', async () => {
    const { cert, key } = await selfSigned();
    let requests = 0;
    const server = createServer({ cert, key }, (_req, res) => {
      requests += 1;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const pin = fingerprintOf(cert);
      const t = await pinnedTransport(url, pin);
      assert.equal(await (await t.fetch(`${url}/x`)).text(), 'ok');
      await t.close();
      assert.equal(requests, 1);
      // The CLI's path: one handshake per connection, checked before the request is written.
      const right = coordinatorFetch(url, pin);
      assert.equal(await (await right(`${url}/y`)).text(), 'ok');
      assert.equal(await (await right(`${url}/z`, { method: 'POST', body: 'x' })).text(), 'ok');
      assert.equal(requests, 3);
      const f = coordinatorFetch(url, `sha256:${HEX}`);
      await assert.rejects(f(`${url}/x`, { headers: { authorization: 'Bearer secret' } }), (e: unknown) => e instanceof PinMismatchError && e.message.includes(pin));
      assert.equal(requests, 3, 'nothing was sent to a server with another certificate');
      await assert.rejects(coordinatorFetch(url, null)(`${url}/x`), /does not trust/);
      assert.equal(requests, 3);
    } finally {
      server.close();
    }
  });
});
