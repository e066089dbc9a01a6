// The dashboard in a real browser (headless Chromium driven by playwright-core) against a real grid:
// sign-in by link to a session cookie (never localStorage), nodes and jobs tables, a job's detail with its failed
// task's log; a submitter's sign-in sees only its project; revoking the token ends the session at once.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** base64 sha256 of a certificate's public key (SPKI), what Chromium's --ignore-certificate-errors-spki-list takes. */
const spkiHash = (certFile: string): string =>
  createHash('sha256').update(new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
import { chromium, type Browser } from 'playwright-core';
import { fetchFor, Sandbox, type Credentials } from './harness.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const CI = process.env['CI'] === 'true';

describe('dashboard in a real browser', { timeout: 120_000 }, () => {
  if (!CHROMIUM) {
    if (CI) it('needs Chromium in CI', () => assert.fail('Chromium not found: .ci/run must install it (apt-get install -y chromium)'));
    else it.skip('SKIPPED LOUDLY: no Chromium found (apt-get install -y chromium) — the dashboard was not tested');
    return;
  }
  const sb = new Sandbox();
  let creds: Credentials;
  let browser: Browser;

  before(async () => {
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('an online node', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // `dsg up` serves TLS with a self-signed certificate: trust exactly its key, as a user accepting the warning
      // after checking the fingerprint would (Chromium's SPKI pin; nothing else is trusted).
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
        ...(creds.url.startsWith('https:') ? [`--ignore-certificate-errors-spki-list=${spkiHash(join(sb.dir, 'data', 'tls', 'cert.pem'))}`] : [])],
    });
  });
  after(async () => {
    await browser?.close();
    await sb.cleanup();
  });

  it('signs in from the printed link and shows nodes, jobs and a failed task\'s log', async () => {
    const ok = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: { name: 'dash-ok', command: ['true'], array: 3 } });
    const bad = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: { name: 'dash-bad', script: 'echo "it broke" >&2; exit 2' } });
    for (const id of [ok.job.id, bad.job.id])
      await sb.waitFor(`job ${id} finished`, async () => (await sb.api<{ finishedAt: string | null }>(creds, 'GET', `/jobs/${id}`)).finishedAt !== null);

    const page = await browser.newPage();
    await page.goto(`${creds.url}/#token=${creds.adminToken}`);
    await page.waitForSelector('#nodes tr td');
    assert.equal(page.url().includes('token='), false, 'the token is taken out of the address bar');
    const nodeText = await page.textContent('#nodes');
    assert.match(nodeText ?? '', /online/);
    assert.match(nodeText ?? '', /sandbox\+cgroups|sandbox|cgroups|none/, 'the node\'s isolation level is shown');
    await page.waitForSelector(`tr[data-id="${bad.job.id}"]`);
    const jobs = await page.textContent('#jobs');
    assert.match(jobs ?? '', /dash-ok/);
    assert.match(jobs ?? '', /3 \/ 3/);
    await page.click(`tr[data-id="${bad.job.id}"]`);
    await page.waitForSelector('#job-detail pre');
    assert.match((await page.textContent('#job-detail')) ?? '', /it broke/);
    await page.screenshot({ path: join(sb.dir, 'dashboard.png'), fullPage: true });

    // The browser holds a session cookie, httpOnly and SameSite=Strict; the token is nowhere in page storage.
    const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie');
    assert.equal(stored.includes(creds.adminToken), false, 'the token is not kept in the page');
    assert.equal(stored.includes('dsg_session'), false, 'the session cookie is not readable by scripts');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'dsg_session');
    assert.ok(session, 'a session cookie is set');
    assert.deepEqual([session.httpOnly, session.sameSite], [true, 'Strict']);
    assert.notEqual(session.value, creds.adminToken, 'the cookie holds a session id, not the token');

    // A cookie-authenticated change without the X-DSG-CSRF header is refused; with it, it goes through.
    const noCsrf = await page.evaluate(async (id) => (await fetch(`/api/v1/jobs/${id}/retry`, { method: 'POST' })).status, bad.job.id);
    assert.equal(noCsrf, 403);
    const withCsrf = await page.evaluate(async (id) => (await fetch(`/api/v1/jobs/${id}/cancel`, { method: 'POST', headers: { 'x-dsg-csrf': '1' } })).status, ok.job.id);
    assert.equal(withCsrf, 409, 'past authentication: the finished job has nothing to cancel');

    // Signing out ends the session: the cookie no longer works.
    await page.click('#signout');
    await page.waitForSelector('#login:not([hidden])');
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/jobs')).status), 401);

    // A wrong token sends the user back to the sign-in form, saying why.
    const other = await browser.newPage();
    await other.goto(`${creds.url}/#token=wrong`);
    await other.waitForSelector('#login:not([hidden])');
    assert.match((await other.textContent('#login-error')) ?? '', /invalid token/);
    await other.close();
  });

  it('a submitter signs in with the form and sees only its project; revoking its token ends the session at once', async () => {
    const mine = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: { name: 'dash-climate', project: 'climate', command: ['true'] } });
    const theirs = await sb.api<{ job: { id: string } }>(creds, 'POST', '/jobs', { spec: { name: 'dash-bio', project: 'bio', command: ['true'] } });
    const t = await sb.api<{ token: { id: string }; secret: string }>(creds, 'POST', '/tokens', { role: 'submitter', projects: ['climate'], name: 'student-1' });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(creds.url);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', t.secret);
    await page.click('#login-form button');
    await page.waitForSelector(`tr[data-id="${mine.job.id}"]`);
    assert.match((await page.textContent('#who')) ?? '', /student-1 \(submitter: climate\)/);
    assert.equal(await page.$(`tr[data-id="${theirs.job.id}"]`), null, 'another project\'s job is not listed');
    assert.equal(await page.evaluate(async (id) => (await fetch(`/api/v1/jobs/${id}`)).status, theirs.job.id), 404);
    // A reload keeps the session (the cookie), with no token anywhere in the page.
    await page.reload();
    await page.waitForSelector(`tr[data-id="${mine.job.id}"]`);
    await sb.api(creds, 'DELETE', `/tokens/${t.token.id}`);
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/jobs')).status), 401, 'revocation ends the session at once');
    await page.waitForSelector('#login:not([hidden])');
    await ctx.close();
  });

  it('machines waiting to join are listed; an admin approves one and rejects another with a reason, a reader cannot', async () => {
    const ask = async (name: string): Promise<string> => {
      const r = await fetchFor(creds)(`${creds.url}/api/v1/join-requests`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: randomBytes(32).toString('base64url'), name, facts: { os: 'linux', arch: 'x64', cpuModel: 'x', cores: 4, memoryBytes: 8 * 2 ** 30, gpus: ['RTX 3060'] } }),
      });
      assert.equal(r.status, 202);
      return ((await r.json()) as { request: { id: string } }).request.id;
    };
    const keep = await ask('pc-keep');
    const drop = await ask('pc-drop');
    const reader = await sb.api<{ secret: string }>(creds, 'POST', '/tokens', { role: 'reader', name: 'wall' });
    const rctx = await browser.newContext();
    const rpage = await rctx.newPage();
    await rpage.goto(`${creds.url}/#token=${reader.secret}`);
    await rpage.waitForSelector('#pending-card:not([hidden])');
    assert.match((await rpage.textContent('#pending')) ?? '', /pc-keep.*RTX 3060.*an admin decides/s);
    assert.equal(await rpage.$('button[data-approve]'), null, 'no buttons for a reader');
    await rctx.close();

    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${creds.url}/#token=${creds.adminToken}`);
    await page.waitForSelector(`button[data-approve="${keep}"]`);
    assert.match((await page.textContent('#pending')) ?? '', new RegExp(`${keep}.*pc-keep`));
    await page.click(`button[data-approve="${keep}"]`);
    page.once('dialog', (d) => void d.accept('not on the list'));
    await page.click(`button[data-reject="${drop}"]`);
    await sb.waitFor('both decided', async () => {
      const all = (await sb.api<{ items: Array<{ id: string; state: string; reason: string | null }> }>(creds, 'GET', '/join-requests')).items;
      const k = all.find((r) => r.id === keep);
      const d = all.find((r) => r.id === drop);
      return k?.state === 'approved' && d?.state === 'rejected' && d.reason === 'not on the list';
    }, 10_000);
    await page.waitForSelector('#pending-card[hidden]', { state: 'attached' });
    await ctx.close();
  });
});
