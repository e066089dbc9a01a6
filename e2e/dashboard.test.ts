// The dashboard in a real browser (headless Chromium driven by playwright-core) against a real grid:
// sign-in by link, nodes and jobs tables, a job's detail with its failed task's log.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { Sandbox, type Credentials } from './harness.js';

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
    const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0']);
    creds = await sb.credentials(join(sb.dir, 'data'), up.output);
    await sb.waitFor('an online node', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
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

    // A wrong token sends the user back to the sign-in form.
    const other = await browser.newPage();
    await other.goto(`${creds.url}/#token=wrong`);
    await other.waitForSelector('#login:not([hidden])');
  });
});
