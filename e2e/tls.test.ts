// TLS end to end with real processes: a coordinator listening beyond loopback serves HTTPS/WSS by default with a
// self-signed certificate; an agent joins by pinning its fingerprint (and keeps the pin in node.json), a job moves
// an input and an output through the pinned transport; the CLI pins it from credentials.json or a flag; a wrong
// pin, no pin, and plain HTTP are each refused with a message that says what to do; an operator's CA-signed
// certificate is verified the usual way; deleting credentials.json revokes the tokens it held.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { Sandbox, freePort } from './harness.js';

interface Creds { url: string; adminToken: string; joinToken: string; tlsFingerprint?: string }

const WRONG = `sha256:${'ab'.repeat(32)}`;

describe('TLS: self-signed certificate pinned by agents and the CLI', { timeout: 120_000 }, () => {
  const sb = new Sandbox();
  const data = join(sb.dir, '.dsg'); // the CLI finds ./.dsg/credentials.json from sb.dir
  const work = join(sb.dir, 'work');
  let port: number;
  let creds: Creds;
  let coord: ReturnType<Sandbox['start']>;
  const readCreds = (): Creds => JSON.parse(readFileSync(join(data, 'credentials.json'), 'utf8')) as Creds;

  before(async () => {
    mkdirSync(work);
    port = await freePort();
    // Default TLS mode (auto) on an address beyond loopback.
    coord = sb.start(['coordinator', '--data-dir', data, '--port', String(port), '--host', '0.0.0.0', '--no-advertise']);
    await sb.waitFor('credentials with a fingerprint', () => {
      try {
        const c = readCreds();
        return c.url?.startsWith('https://') && c.tlsFingerprint ? c : null;
      } catch {
        return null;
      }
    }, 30_000, coord.output);
    creds = readCreds();
  });
  after(() => sb.cleanup());

  it('serves HTTPS by default beyond loopback and prints the fingerprint and a join command that pins it', async () => {
    assert.match(creds.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(creds.tlsFingerprint!, /^sha256:[0-9a-f]{64}$/);
    await sb.waitFor('banner', () => coord.output().includes('join a machine'), 10_000, coord.output);
    assert.ok(coord.output().includes(creds.tlsFingerprint!), coord.output());
    assert.match(coord.output(), new RegExp(`dsg agent --coordinator https://[^ ]+ --tls-fingerprint ${creds.tlsFingerprint}`));
    const st = (await import('node:fs')).statSync(join(data, 'tls', 'key.pem'));
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('an agent pins the fingerprint, runs a job with an input and an output, and keeps the pin for its next start', async () => {
    const agentDir = join(sb.dir, 'agent');
    const agent = sb.start(['agent', '--coordinator', creds.url, '--state-dir', agentDir, '--name', 'pinned', '--cpus', '1', '--memory', '512Mi'],
      { DSG_JOIN_TOKEN: creds.joinToken, DSG_TLS_FINGERPRINT: creds.tlsFingerprint! });
    writeFileSync(join(work, 'in.txt'), 'over TLS\n');
    writeFileSync(join(work, 'job.yaml'), 'name: tls-job\nscript: tr a-z A-Z < in.txt > out.txt\ninputs: [in.txt]\noutputs: [out.txt]\n');
    // The CLI's settings come from ./.dsg/credentials.json, fingerprint included: no flags.
    const s = await sb.run(['submit', 'work/job.yaml', '--wait', '-q'], { cwd: sb.dir });
    assert.equal(s.code, 0, s.stdout + s.stderr + agent.output());
    const id = s.stdout.trim().split('\n')[0]!;
    const o = await sb.run(['outputs', id, '--to', join(sb.dir, 'got')], { cwd: sb.dir });
    assert.equal(o.code, 0, o.stderr);
    assert.equal(readFileSync(join(sb.dir, 'got', 'out.txt'), 'utf8'), 'OVER TLS\n');
    const saved = JSON.parse(readFileSync(join(agentDir, 'node.json'), 'utf8')) as { tlsFingerprint?: string };
    assert.equal(saved.tlsFingerprint, creds.tlsFingerprint);

    // Restarted without the fingerprint: it uses the saved one.
    await sb.stop(agent.proc);
    const again = sb.start(['agent', '--coordinator', creds.url, '--state-dir', agentDir, '--name', 'pinned', '--cpus', '1', '--memory', '512Mi'], { DSG_JOIN_TOKEN: creds.joinToken });
    await sb.waitFor('reconnected with the saved pin', () => /connected to https:/.test(again.output()), 20_000, again.output);
    await sb.stop(again.proc);
  });

  it('an agent with a wrong pin sends nothing and says what to do', async () => {
    const bad = sb.start(['agent', '--coordinator', creds.url, '--state-dir', join(sb.dir, 'bad-agent'), '--name', 'impostor-victim', '--tls-fingerprint', WRONG], { DSG_JOIN_TOKEN: creds.joinToken });
    await sb.waitFor('pin mismatch reported', () => bad.output().includes('is pinned. Nothing was sent'), 20_000, bad.output);
    assert.ok(bad.output().includes(`--tls-fingerprint ${creds.tlsFingerprint}`));
    const nodes = await sb.run(['nodes', '--json'], { cwd: sb.dir });
    assert.ok(!nodes.stdout.includes('impostor-victim'), 'it never joined');
    await sb.stop(bad.proc);
  });

  it('the CLI refuses a wrong pin, an unpinned self-signed certificate and plain HTTP, each with what to do', async () => {
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    const wrong = await sb.run(['jobs', '--tls-fingerprint', WRONG], { env });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /is pinned\. Nothing was sent/);
    const unpinned = await sb.run(['jobs'], { env });
    assert.equal(unpinned.code, 1);
    assert.match(unpinned.stderr, new RegExp(`does not trust .*--tls-fingerprint ${creds.tlsFingerprint}`));
    const right = await sb.run(['jobs', '--tls-fingerprint', creds.tlsFingerprint!.replace('sha256:', '').toUpperCase().match(/../g)!.join(':')], { env });
    assert.equal(right.code, 0, `the colon form browsers print is accepted: ${right.stderr}`);
    // Plain HTTP to the TLS port: the coordinator answers a readable 400 (not a dropped connection), so the CLI exits 2
    // with its message.
    const plain = await sb.run(['jobs'], { env: { ...env, DSG_COORDINATOR: creds.url.replace('https:', 'http:') } });
    assert.equal(plain.code, 2, plain.stderr);
    assert.match(plain.stderr, /serves HTTPS only: use https:\/\//);
    const raw = await fetch(`${creds.url.replace('https:', 'http:')}/api/v1/jobs`);
    assert.equal(raw.status, 400);
    assert.equal(((await raw.json()) as { error: { code: string } }).error.code, 'validation');
    const typo = await sb.run(['jobs', '--tls-fingerprint', 'sha256:xyz'], { env });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--tls-fingerprint/);
  });

  it('a fingerprint given once with --tls-fingerprint is remembered in the config file for its coordinator', async () => {
    const cfgDir = join(sb.home, '.config', 'dsg');
    mkdirSync(cfgDir, { recursive: true });
    const cfg = join(cfgDir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ coordinator: creds.url, token: creds.adminToken }));
    try {
      const unpinned = await sb.run(['jobs']);
      assert.equal(unpinned.code, 1, 'no pin yet: refused');
      const wrong = await sb.run(['jobs', '--tls-fingerprint', WRONG]);
      assert.equal(wrong.code, 1);
      assert.equal((JSON.parse(readFileSync(cfg, 'utf8')) as { tlsFingerprint?: string }).tlsFingerprint, undefined, 'a refused pin is not saved');
      const first = await sb.run(['jobs', '--tls-fingerprint', creds.tlsFingerprint!.toUpperCase().replace('SHA256:', '')]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((JSON.parse(readFileSync(cfg, 'utf8')) as { tlsFingerprint?: string }).tlsFingerprint, creds.tlsFingerprint, 'saved, canonical');
      const next = await sb.run(['jobs']);
      assert.equal(next.code, 0, next.stderr);
    } finally {
      rmSync(cfg);
    }
  });

  it('deleting credentials.json makes new tokens and revokes the old ones', async () => {
    const old = readCreds();
    await sb.stop(coord.proc);
    rmSync(join(data, 'credentials.json'));
    coord = sb.start(['coordinator', '--data-dir', data, '--port', String(port), '--host', '0.0.0.0', '--no-advertise']);
    await sb.waitFor('new credentials', () => {
      try {
        const c = readCreds();
        return c.adminToken !== old.adminToken ? c : null;
      } catch {
        return null;
      }
    }, 30_000, coord.output);
    const fresh = readCreds();
    assert.equal(fresh.tlsFingerprint, old.tlsFingerprint, 'the certificate stays with the data dir');
    const env = (token: string) => ({ DSG_COORDINATOR: fresh.url, DSG_TOKEN: token, DSG_TLS_FINGERPRINT: fresh.tlsFingerprint! });
    await sb.waitFor('coordinator answers', async () => (await sb.run(['jobs'], { env: env(fresh.adminToken) })).code === 0, 20_000, coord.output);
    const stale = await sb.run(['jobs'], { env: env(old.adminToken) });
    assert.equal(stale.code, 1, stale.stdout);
    assert.match(stale.stderr, /revoked/);
  });
});

describe("TLS: the operator's own CA-signed certificate", { timeout: 60_000 }, () => {
  const sb = new Sandbox();
  after(() => sb.cleanup());

  it('is served as given and verified the usual way (no pin needed)', async () => {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const caKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=Lab CA', notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86_400_000), keys: caKeys as never, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    });
    const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '02', issuer: ca.subject, subject: 'CN=grid.lab', notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86_400_000),
      publicKey: leafKeys.publicKey as never, signingKey: caKeys.privateKey as never, signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
    writeFileSync(join(sb.dir, 'ca.pem'), ca.toString('pem'));
    writeFileSync(join(sb.dir, 'cert.pem'), leaf.toString('pem'));
    writeFileSync(join(sb.dir, 'key.pem'), `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n`);
    const data = join(sb.dir, 'data');
    const port = await freePort();
    const c = sb.start(['coordinator', '--data-dir', data, '--port', String(port), '--host', '0.0.0.0', '--no-advertise', '--tls-cert', join(sb.dir, 'cert.pem'), '--tls-key', join(sb.dir, 'key.pem')]);
    const creds = await sb.waitFor('credentials', () => {
      try {
        const v = JSON.parse(readFileSync(join(data, 'credentials.json'), 'utf8')) as Creds;
        return v.url?.startsWith('https://') ? v : null;
      } catch {
        return null;
      }
    }, 30_000, c.output);
    assert.equal(creds.tlsFingerprint, undefined, 'an operator certificate is verified, not pinned');
    const env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    const trusted = await sb.run(['jobs'], { env: { ...env, NODE_EXTRA_CA_CERTS: join(sb.dir, 'ca.pem') } });
    assert.equal(trusted.code, 0, trusted.stderr);
    const untrusted = await sb.run(['jobs'], { env });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /does not trust/);
    const half = await sb.run(['coordinator', '--data-dir', join(sb.dir, 'd2'), '--port', '0', '--tls-cert', join(sb.dir, 'cert.pem')]);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /--tls-key/);
  });
});
