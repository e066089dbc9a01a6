// The dashboard (packages/web) in a real browser (Debian's Chromium driven by playwright-core) against a real
// grid: a coordinator and an agent as processes, work submitted through the CLI. Sign-in by link to a session
// cookie (never localStorage); a job submitted with `dsg submit` watched to the end without a reload (the change
// feed, within 2 s); a running task's log followed; a workflow's graph changing state; cancel and retry from the
// page; draining a node; a reader who cannot cancel; a submitter who sees only its project; machines waiting to
// join approved and rejected; the page living through a coordinator restart. Screenshots of every page at desktop
// (1280) and phone (390) widths go to e2e/screenshots/ (git-ignored).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { fetchFor, freePort, ROOT, Sandbox, type Credentials } from './harness.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const CI = process.env['CI'] === 'true';
const SHOTS = join(ROOT, 'e2e', 'screenshots');

interface Job { id: string; state: string; finishedAt: string | null; counts: Record<string, number> }

describe('dashboard in a real browser', { timeout: 240_000 }, () => {
  if (!CHROMIUM) {
    if (CI) it('needs Chromium in CI', () => assert.fail('Chromium not found: .ci/run must install it (apt-get install -y chromium)'));
    else it.skip('SKIPPED LOUDLY: no Chromium found (apt-get install -y chromium) — the dashboard was not tested');
    return;
  }
  const sb = new Sandbox();
  const data = join(sb.dir, 'data');
  let port = 0;
  let creds: Credentials;
  let browser: Browser;
  let coord: ReturnType<Sandbox['start']>;
  let agent: ReturnType<Sandbox['start']>;
  let env: Record<string, string>;
  const startCoordinator = () => sb.start(['coordinator', '--data-dir', data, '--port', String(port), '--host', '127.0.0.1', '--heartbeat', '1']);
  const submit = async (name: string, yaml: string): Promise<string> => {
    const file = join(sb.dir, `${name}.yaml`);
    writeFileSync(file, yaml);
    const r = await sb.run(['submit', file, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { id: string }).id;
  };
  const job = (id: string) => sb.api<Job>(creds, 'GET', `/jobs/${id}`);
  const signedIn = async (token: string, width = 1280): Promise<Page> => {
    const ctx = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${creds.url}/#token=${token}`);
    await page.waitForSelector('[data-testid="who"]');
    await page.waitForSelector('[data-testid="live"]:has-text("live")');
    return page;
  };
  const shot = async (page: Page, name: string) => {
    for (const [w, suffix] of [[1280, 'desktop'], [390, 'phone']] as const) {
      await page.setViewportSize({ width: w, height: w === 390 ? 844 : 900 });
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(SHOTS, `${name}-${suffix}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    port = await freePort();
    coord = startCoordinator();
    creds = await sb.credentials(data, coord.output);
    env = { DSG_COORDINATOR: creds.url, DSG_TOKEN: creds.adminToken };
    agent = sb.start(['agent', '--coordinator', creds.url, '--token', creds.joinToken, '--state-dir', join(sb.dir, 'agent'), '--name', 'lab-pc-1', '--cpus', '4', '--memory', '2Gi', '--label', 'room=lab1']);
    await sb.waitFor('an online node', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'),
      30_000, () => `${coord.output()}\n${agent.output()}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  });
  after(async () => {
    await browser?.close();
    await sb.cleanup();
  });

  it('signs in from the printed link into an httpOnly session; the token is nowhere in the page; writes need the CSRF header', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(creds.url);
    await page.waitForSelector('form[aria-label="Sign in"]');
    await shot(page, 'sign-in');
    await page.fill('#token', 'dsg_wrong');
    await page.click('form[aria-label="Sign in"] button');
    assert.match(await page.textContent('[role="alert"]', { timeout: 5000 }) ?? '', /invalid token/);
    await page.goto(`${creds.url}/#token=${creds.adminToken}`);
    await page.waitForSelector('[data-testid="who"]');
    assert.equal(page.url().includes('token='), false, 'the token is taken out of the address bar');
    const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie');
    assert.equal(stored.includes(creds.adminToken), false, 'the token is not kept in the page');
    assert.equal(stored.includes('dsg_session'), false, 'the session cookie is not readable by scripts');
    const session = (await ctx.cookies()).find((c) => c.name === 'dsg_session');
    assert.ok(session, 'a session cookie is set');
    assert.deepEqual([session.httpOnly, session.sameSite], [true, 'Strict']);
    // A cookie-authenticated change without the X-DSG-CSRF header is refused (a cross-site form cannot add it).
    const id = await submit('csrf', 'name: csrf\ncommand: ["true"]\nresources: { cpu: 0.1, memory: 16Mi }\n');
    assert.equal(await page.evaluate(async (j) => (await fetch(`/api/v1/jobs/${j}/retry`, { method: 'POST' })).status, id), 403);
    // Signing out ends the session.
    await page.click('button:has-text("Sign out")');
    await page.waitForSelector('form[aria-label="Sign in"]');
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/jobs')).status), 401);
    await ctx.close();
  });

  it('a job submitted with the CLI appears and finishes on the page without a reload, within 2 s of the change', async () => {
    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/jobs`);
    await page.waitForSelector('table');
    const reloads: string[] = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) reloads.push(f.url()); });
    const id = await submit('pi', 'name: pi-estimate\nscript: sleep 1.5\narray: 3\nresources: { cpu: 0.5, memory: 32Mi }\n');
    await page.waitForSelector(`tr[data-job="${id}"]`, { timeout: 2000 });
    const finished = await sb.waitFor('job finished', async () => { const j = await job(id); return j.finishedAt ? Date.now() : null; }, 30_000);
    await page.waitForSelector(`tr[data-job="${id}"] .state:has-text("succeeded")`, { timeout: 2000 });
    const lag = Date.now() - finished;
    assert.ok(lag < 2000, `the page showed the change ${lag} ms after the API did`);
    assert.match(await page.textContent(`tr[data-job="${id}"]`) ?? '', /3 \/ 3/);
    assert.equal(reloads.filter((u) => !u.includes('#/')).length, 0, 'no reload');
    await shot(page, 'jobs');
    await page.click(`tr[data-job="${id}"] a`);
    await page.waitForSelector('h1 .state:has-text("succeeded")');
    await shot(page, 'job');
    await page.goto(`${creds.url}/#/`);
    await page.waitForSelector('section[aria-label="Tasks finished per minute"] svg');
    assert.match(await page.textContent('section[aria-label="Tasks finished per minute"]') ?? '', /[1-9]\d* in the last hour/);
    await shot(page, 'overview');
    await page.context().close();
  });

  it('follows a running task\'s log as it is written', async () => {
    const id = await submit('talk', 'name: talker\nscript: for i in $(seq 1 40); do echo "line $i"; sleep 0.2; done\nresources: { cpu: 0.5, memory: 32Mi }\n');
    await sb.waitFor('task running', async () => (await job(id)).counts['running'] === 1);
    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/jobs/${id}/tasks/0`);
    await page.waitForSelector('[data-testid="log"]:has-text("line 2")', { timeout: 10_000 });
    const early = (await page.textContent('[data-testid="log"]')) ?? '';
    assert.doesNotMatch(early, /line 40/, 'caught while running');
    await page.waitForSelector('[data-testid="log"]:has-text("line 40")', { timeout: 20_000 });
    await page.waitForSelector('h2:has-text("(complete)")', { timeout: 10_000 });
    await shot(page, 'task-log');
    await page.context().close();
  });

  it('a workflow\'s graph changes state live', async () => {
    const id = await submit('wf', 'name: pipeline\nstages:\n  fetch:\n    script: sleep 6\n    resources: { cpu: 0.5, memory: 32Mi }\n  clean:\n    needs: [fetch]\n    array: 2\n    script: sleep 1\n    resources: { cpu: 0.5, memory: 32Mi }\n  model:\n    needs: [fetch]\n    script: sleep 1\n    resources: { cpu: 0.5, memory: 32Mi }\n  report:\n    needs: [clean, model]\n    script: "true"\n    resources: { cpu: 0.5, memory: 32Mi }\n');
    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/workflows/${id}`);
    await page.waitForSelector('a[data-stage="fetch"][data-state="running"]', { timeout: 10_000 });
    assert.match(await page.getAttribute('a[data-stage="report"]', 'data-state') ?? '', /waiting|queued/);
    await shot(page, 'workflow-running');
    await page.waitForSelector('a[data-stage="report"][data-state="succeeded"]', { timeout: 30_000 });
    // The layout puts each stage right of what it needs.
    const x = async (s: string) => Number(await page.getAttribute(`a[data-stage="${s}"] rect`, 'x'));
    assert.ok((await x('fetch')) < (await x('clean')) && (await x('clean')) < (await x('report')));
    await shot(page, 'workflow');
    await page.goto(`${creds.url}/#/workflows`);
    await page.waitForSelector(`tr[data-workflow="${id}"]`);
    await shot(page, 'workflows');
    await page.context().close();
  });

  it('cancels and retries a job from the page; a reader sees the buttons disabled and the API refuses it', async () => {
    const id = await submit('long', 'name: long-run\nscript: sleep 120\narray: 2\nresources: { cpu: 0.5, memory: 32Mi }\n');
    await sb.waitFor('running', async () => (await job(id)).counts['running'] === 2);
    const reader = await sb.api<{ secret: string }>(creds, 'POST', '/tokens', { role: 'reader', name: 'wall-screen' });
    const rpage = await signedIn(reader.secret);
    await rpage.goto(`${creds.url}/#/jobs/${id}`);
    await rpage.waitForSelector('h1 .state:has-text("running")');
    assert.equal(await rpage.isDisabled('button:has-text("Cancel")'), true, 'a reader cannot cancel');
    assert.equal(await rpage.evaluate(async (j) => (await fetch(`/api/v1/jobs/${j}/cancel`, { method: 'POST', headers: { 'x-dsg-csrf': '1' } })).status, id), 403);
    await shot(rpage, 'job-reader');

    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/jobs/${id}`);
    await page.waitForSelector('h1 .state:has-text("running")');
    page.once('dialog', (d) => void d.accept());
    await page.click('button:has-text("Cancel")');
    await page.waitForSelector('h1 .state:has-text("cancelled")', { timeout: 10_000 });
    // The reader's page follows along without a reload.
    await rpage.waitForSelector('h1 .state:has-text("cancelled")', { timeout: 5000 });
    await page.click('button:has-text("Retry")');
    await page.waitForSelector('h1 .state:has-text("running")', { timeout: 10_000 });
    assert.equal((await job(id)).finishedAt, null, 'retried');
    await sb.api(creds, 'POST', `/jobs/${id}/cancel`);
    await rpage.context().close();
    await page.context().close();
  });

  it('drains a node from its page and shows what it runs', async () => {
    const id = await submit('busy', 'name: busy\nscript: sleep 60\nresources: { cpu: 0.5, memory: 32Mi }\n');
    await sb.waitFor('running', async () => (await job(id)).counts['running'] === 1);
    const node = (await sb.api<{ items: Array<{ id: string; name: string }> }>(creds, 'GET', '/nodes')).items[0]!;
    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/nodes`);
    await page.waitForSelector(`tr[data-node="${node.name}"]`);
    await shot(page, 'nodes');
    await page.click(`tr[data-node="${node.name}"] a`);
    await page.waitForSelector('section[aria-label="Running on this node"] a:has-text("busy")');
    assert.match(await page.textContent('section[aria-label="Capabilities"]') ?? '', /room=lab1/);
    // The agent's heartbeats report the whole machine's load and memory in use.
    await page.waitForSelector('section[aria-label="Utilisation"] >> text=Load (1 min)', { timeout: 5000 });
    await shot(page, 'node');
    await page.click('button:has-text("Drain")');
    await page.waitForSelector('h1 .state:has-text("draining")', { timeout: 5000 });
    await sb.api(creds, 'POST', `/jobs/${id}/cancel`); // what it runs ends: the drain completes
    await page.waitForSelector('h1 .state:has-text("drained")', { timeout: 20_000 });
    assert.equal(await page.$('section[aria-label="Running on this node"] a:has-text("busy")'), null);
    await page.click('button:has-text("Take back")');
    await page.waitForSelector('h1 .state:has-text("drained")', { state: 'detached', timeout: 5000 });
    await page.context().close();
  });

  it('a submitter sees only its project; ledger and audit pages load', async () => {
    const mine = await submit('mine', 'name: climate-run\nproject: climate\ncommand: ["true"]\nresources: { cpu: 0.1, memory: 16Mi }\n');
    const theirs = await submit('theirs', 'name: bio-run\nproject: bio\ncommand: ["true"]\nresources: { cpu: 0.1, memory: 16Mi }\n');
    const t = await sb.api<{ secret: string }>(creds, 'POST', '/tokens', { role: 'submitter', projects: ['climate'], name: 'student-1' });
    const page = await signedIn(t.secret);
    await page.goto(`${creds.url}/#/jobs`);
    await page.waitForSelector(`tr[data-job="${mine}"]`);
    assert.equal(await page.$(`tr[data-job="${theirs}"]`), null, 'another project\'s job is not listed');
    assert.match(await page.textContent('[data-testid="who"]') ?? '', /student-1 \(submitter: climate\)/);
    await page.context().close();
    const admin = await signedIn(creds.adminToken);
    await admin.goto(`${creds.url}/#/ledger`);
    await admin.waitForSelector('tr.total');
    await shot(admin, 'ledger');
    await admin.goto(`${creds.url}/#/audit`);
    await admin.waitForSelector('td:has-text("job.submitted")');
    await shot(admin, 'audit');
    await admin.context().close();
  });

  it('machines waiting to join are listed on the nodes page; an admin approves and rejects, a reader cannot', async () => {
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
    const reader = await sb.api<{ secret: string }>(creds, 'POST', '/tokens', { role: 'reader', name: 'wall-2' });
    const rpage = await signedIn(reader.secret);
    await rpage.goto(`${creds.url}/#/nodes`);
    await rpage.waitForSelector('section[aria-label="Machines waiting to join"]');
    assert.match(await rpage.textContent('section[aria-label="Machines waiting to join"]') ?? '', /pc-keep.*RTX 3060.*an admin decides/s);
    assert.equal(await rpage.$('button:has-text("Approve")'), null, 'no buttons for a reader');
    await rpage.context().close();

    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/nodes`);
    await page.waitForSelector(`button[aria-label="Approve: pc-keep (${keep})"]`);
    await shot(page, 'nodes-join-requests');
    await page.click(`button[aria-label="Approve: pc-keep (${keep})"]`);
    page.once('dialog', (d) => void d.accept('not on the list'));
    await page.click(`button[aria-label="Reject: pc-drop (${drop})"]`);
    await sb.waitFor('both decided', async () => {
      const all = (await sb.api<{ items: Array<{ id: string; state: string; reason: string | null }> }>(creds, 'GET', '/join-requests')).items;
      return all.find((r) => r.id === keep)?.state === 'approved' && all.find((r) => r.id === drop)?.reason === 'not on the list';
    }, 10_000);
    await page.waitForSelector('section[aria-label="Machines waiting to join"]', { state: 'detached', timeout: 5000 });
    await page.context().close();
  });

  it('lives through a coordinator restart without a reload', async () => {
    const page = await signedIn(creds.adminToken);
    await page.goto(`${creds.url}/#/jobs`);
    await page.waitForSelector('table');
    let reloaded = false;
    page.on('load', () => { reloaded = true; });
    sb.kill(coord.proc, 'SIGKILL');
    await page.waitForSelector('[data-testid="live"]:has-text("reconnecting")', { timeout: 10_000 });
    coord = startCoordinator();
    await sb.waitFor('coordinator back', async () => { try { await sb.api(creds, 'GET', '/health'); return true; } catch { return false; } }, 30_000, coord.output);
    await page.waitForSelector('[data-testid="live"]:has-text("live")', { timeout: 15_000 });
    await sb.waitFor('agent back', async () => (await sb.api<{ items: Array<{ state: string }> }>(creds, 'GET', '/nodes')).items.some((n) => n.state === 'online'), 30_000);
    const id = await submit('after', 'name: after-restart\ncommand: ["true"]\nresources: { cpu: 0.1, memory: 16Mi }\n');
    await page.waitForSelector(`tr[data-job="${id}"] .state:has-text("succeeded")`, { timeout: 20_000 });
    assert.equal(reloaded, false, 'the page was not reloaded');
    await page.context().close();
  });
});
