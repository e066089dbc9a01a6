// LAN discovery over real multicast: network-namespace "hosts" on a bridge (its own namespace), each with the
// 224.0.0.0/4 route mDNS needs. An agent started before any coordinator waits, then joins once the coordinator
// appears (pinning the TLS fingerprint it advertised); `dsg discover` lists the grid; two grids without --grid are
// reported, not picked at random. Needs root and iproute2: skipped loudly without them, except under CI=true.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DSG } from './harness.js';

const CI = process.env['CI'] === 'true';
const missing = [
  process.getuid?.() !== 0 ? 'root' : null,
  spawnSync('ip', ['-V']).status !== 0 ? 'iproute2 (ip)' : null,
].filter((x): x is string => x !== null);

const RUN = `${process.pid % 100000}`;
const SW = `disc-${RUN}-sw`;
const host = (i: number) => `disc-${RUN}-h${i}`;
const ip = (i: number) => `10.79.0.${10 + i}`;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

interface Found { gridId: string; name: string; url: string; tls: boolean; tlsFingerprint: string | null }
interface Node { name: string; state: string }

describe('discovery over mDNS between network-namespace hosts', { timeout: 120_000 }, () => {
  if (missing.length > 0) {
    if (CI) it('has what the discovery test needs', () => assert.fail(`missing: ${missing.join(', ')}`));
    else it.skip(`SKIPPED LOUDLY: the discovery test needs ${missing.join(', ')}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dsg-e2e-disc-'));
  const procs: ChildProcess[] = [];
  const outputs = new Map<string, () => string>();
  const diag = (): string => [...outputs].map(([name, out]) => `--- ${name}\n${out().slice(-2000)}`).join('\n');
  const env = (i: number) => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: join(dir, `home${i}`), DSG_LOG_LEVEL: 'warn' });

  const inHost = (i: number, args: string[], log: string, extraEnv: Record<string, string> = {}): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', host(i), process.execPath, DSG, ...args], { env: { ...env(i), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    outputs.set(log, () => out);
    procs.push(p);
    return p;
  };
  const run = (i: number, args: string[], extraEnv: Record<string, string> = {}) =>
    spawnSync('ip', ['netns', 'exec', host(i), process.execPath, DSG, ...args], { encoding: 'utf8', env: { ...env(i), ...extraEnv }, timeout: 60_000 });
  const waitFor = async <T>(what: string, fn: () => T | null | undefined | false, ms = 30_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      try {
        const v = fn();
        if (v) return v;
      } catch {
        /* not yet */
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${diag()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const stop = async (p: ChildProcess): Promise<void> => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  };
  const creds = () => JSON.parse(readFileSync(join(dir, 'data1', 'credentials.json'), 'utf8')) as { adminToken: string; joinToken: string; url: string; tlsFingerprint?: string; gridId: string };
  const coordinator = (i: number, name: string) =>
    inHost(i, ['coordinator', '--data-dir', join(dir, `data${i}`), '--host', '0.0.0.0', '--port', '7070', '--grid-name', name, '--heartbeat', '1', '--node-timeout', '3'], `coordinator${i}`);

  before(() => {
    sh('ip', ['netns', 'add', SW]);
    sh('ip', ['-n', SW, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', SW, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', SW, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    sh('ip', ['-n', SW, 'link', 'set', 'br0', 'up']);
    for (const i of [1, 2, 3]) {
      sh('ip', ['netns', 'add', host(i)]);
      sh('ip', ['-n', host(i), 'link', 'set', 'lo', 'up']);
      sh('ip', ['link', 'add', 'eth0', 'netns', host(i), 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', SW]);
      sh('ip', ['-n', SW, 'link', 'set', `p${i}`, 'master', 'br0']);
      sh('ip', ['-n', SW, 'link', 'set', `p${i}`, 'up']);
      sh('ip', ['-n', host(i), 'addr', 'add', `${ip(i)}/24`, 'brd', '10.79.0.255', 'dev', 'eth0']);
      sh('ip', ['-n', host(i), 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', host(i), 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']); // without it mDNS fails silently
    }
  });

  after(async () => {
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => { p.once('exit', r); p.kill('SIGKILL'); }))));
    for (const ns of [host(1), host(2), host(3), SW]) {
      for (const pid of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('an agent started before the coordinator waits, then joins the grid it finds (pinning the advertised fingerprint)', async () => {
    // A first start makes the data dir and its join token; the agent then starts while no coordinator runs.
    const first = coordinator(1, 'physics-lab');
    await waitFor('credentials', () => existsSync(join(dir, 'data1', 'credentials.json')) && creds().url.startsWith('https://'));
    await stop(first);
    const { joinToken, adminToken } = creds();
    const agent = inHost(2, ['agent', '--state-dir', join(dir, 'agent2'), '--name', 'desk2', '--cpus', '1'], 'agent2', { DSG_JOIN_TOKEN: joinToken });
    await waitFor('the agent saying it is looking', () => outputs.get('agent2')!().includes('looking for a coordinator on the LAN'));
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(agent.exitCode, null, `the agent must keep waiting while no coordinator is up\n${diag()}`);

    const started = Date.now();
    coordinator(1, 'physics-lab');
    await waitFor('the agent finding the grid', () => outputs.get('agent2')!().includes('found "physics-lab"'));
    const foundMs = Date.now() - started;
    const { tlsFingerprint } = creds();
    assert.ok(tlsFingerprint, 'a coordinator on 0.0.0.0 serves TLS (auto)');
    const nodes = await waitFor('the node online', () => {
      const r = run(1, ['nodes', '--json', '--coordinator', `https://${ip(1)}:7070`, '--tls-fingerprint', tlsFingerprint!], { DSG_TOKEN: adminToken });
      const items = (JSON.parse(r.stdout) as { items: Node[] }).items;
      return items.some((n) => n.name === 'desk2' && n.state === 'online') ? items : null;
    });
    assert.ok(nodes.length === 1);
    const tookMs = Date.now() - started;
    console.log(`agent found the grid ${foundMs} ms and was online ${tookMs} ms after the coordinator process was started (includes its start-up)`);
    // Generous: the machine is shared and the coordinator's own start-up (TLS, SQLite) is in the figure.
    assert.ok(tookMs < 45_000, `took ${tookMs} ms`);
  });

  it('dsg discover lists the grid with its id, URL and TLS fingerprint', () => {
    const r = run(3, ['discover', '--json', '--timeout', '2']);
    assert.equal(r.status, 0, r.stderr);
    const found = JSON.parse(r.stdout) as Found[];
    const c = creds();
    assert.deepEqual(found.map((g) => [g.name, g.gridId, g.url, g.tls, g.tlsFingerprint]), [['physics-lab', c.gridId, `https://${ip(1)}:7070`, true, c.tlsFingerprint]]);
  });

  it('with two grids on the LAN, an agent without --grid names both and asks to pick; --grid picks', async () => {
    coordinator(3, 'chem-lab');
    await waitFor('two grids discovered', () => (JSON.parse(run(2, ['discover', '--json', '--timeout', '1.5']).stdout) as Found[]).length === 2);
    const r = run(2, ['agent', '--state-dir', join(dir, 'agent2b'), '--name', 'desk2b'], { DSG_JOIN_TOKEN: creds().joinToken });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /found 2 grids/);
    assert.match(r.stderr, /"physics-lab"/);
    assert.match(r.stderr, /"chem-lab"/);
    assert.match(r.stderr, /--grid NAME/);
    const text = run(2, ['discover', '--timeout', '1.5']);
    assert.match(text.stdout, /chem-lab\thttps:\/\/10\.79\.0\.13:7070/);
    const picked = inHost(2, ['agent', '--grid', 'chem-lab', '--state-dir', join(dir, 'agent2c'), '--name', 'desk2c'], 'agent2c', { DSG_JOIN_TOKEN: 'dsg_node_not-for-this-grid' });
    await waitFor('--grid picking chem-lab', () => outputs.get('agent2c')!().includes(`found "chem-lab"`));
    await stop(picked);
  });

  it('a coordinator started with --no-advertise is not found', async () => {
    const p = inHost(3, ['coordinator', '--data-dir', join(dir, 'data3b'), '--port', '7071', '--no-advertise', '--grid-name', 'hidden'], 'coordinator3b');
    await waitFor('hidden coordinator up', () => existsSync(join(dir, 'data3b', 'credentials.json')));
    const found = JSON.parse(run(2, ['discover', '--json', '--timeout', '2']).stdout) as Found[];
    assert.deepEqual(found.map((g) => g.name).sort(), ['chem-lab', 'physics-lab']);
    await stop(p);
  });
});
