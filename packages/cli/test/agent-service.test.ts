// `dsg agent install | uninstall`: the generated service text (systemd, launchd, Task Scheduler), and a real install
// and uninstall into a temporary HOME (systemd is not running on the test machine: the command must say what to
// run and exit 0). The systemd unit is checked with `systemd-analyze verify` where that tool exists.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { envFileText, launchdPlist, systemdUnit, windowsInstallCommand, windowsTaskXml, type ServicePlan } from '../src/agent-service.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'dsg.js');
const plan: ServicePlan = { scope: 'user', argv: ['/usr/bin/node', '/opt/dsg/bin/dsg.js', 'agent', '--state-dir', '/home/a b/state', '--name', '50%"pc"'], envFile: '/home/a/.config/dsg/agent.env', stateDir: '/home/a b/state' };

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('agent service definitions', () => {
  it('systemd: environment file for secrets, quoted arguments (% and quotes escaped), restart, delegated cgroups, target by scope', () => {
    const u = systemdUnit(plan);
    assert.match(u, /^EnvironmentFile=\/home\/a\/.config\/dsg\/agent.env$/m);
    assert.match(u, /^ExecStart=\/usr\/bin\/node \/opt\/dsg\/bin\/dsg.js agent --state-dir "\/home\/a b\/state" --name "50%%\\"pc\\""$/m);
    assert.match(u, /^Restart=on-failure$/m);
    assert.match(u, /^Delegate=yes$/m);
    assert.match(u, /^KillMode=mixed$/m);
    assert.match(u, /^WantedBy=default.target$/m);
    assert.match(systemdUnit({ ...plan, scope: 'system' }), /^WantedBy=multi-user.target$/m);
    assert.doesNotMatch(u, /dsg_node_/, 'no token in the unit');
  });

  it('launchd plist (unverified on macOS here): sources the env file, escapes XML, restarts on failure', () => {
    const p = launchdPlist(plan, '/Users/a/Library/Application Support/dsg');
    assert.match(p, /<key>Label<\/key><string>org.dsg.agent<\/string>/);
    assert.match(p, /set -a; \. '\/home\/a\/.config\/dsg\/agent.env'; set \+a; exec '\/usr\/bin\/node'/);
    assert.match(p, /'50%&quot;pc&quot;'/);
    assert.match(p, /<key>SuccessfulExit<\/key><false\/>/);
  });

  it('Windows task XML and schtasks command (unverified on Windows here)', () => {
    const x = windowsTaskXml({ ...plan, argv: ['C:\\Program Files\\nodejs\\node.exe', 'C:\\dsg\\dsg.js', 'agent'] });
    assert.match(x, /<Command>C:\\Program Files\\nodejs\\node.exe<\/Command><Arguments>C:\\dsg\\dsg.js agent<\/Arguments>/);
    assert.match(x, /<LogonTrigger>/);
    assert.match(windowsTaskXml({ ...plan, scope: 'system' }), /<BootTrigger>.*<UserId>S-1-5-18<\/UserId>/s);
    assert.equal(windowsInstallCommand('C:\\x\\dsg-agent.xml'), 'schtasks /Create /TN "dsg-agent" /XML "C:\\x\\dsg-agent.xml" /F');
  });

  it('the environment file refuses values that would inject lines', () => {
    assert.equal(envFileText('http://h:1', 'tok'), '# dsg agent service environment (written by `dsg agent install`; readable by its owner only)\nDSG_COORDINATOR=http://h:1\nDSG_JOIN_TOKEN=tok\n');
    assert.throws(() => envFileText('http://h:1\nLD_PRELOAD=/x', 'tok'), /one line/);
  });

  it('install writes unit, 0600 env file, policy and record into HOME; says what to run without systemd; uninstall removes exactly that', { skip: process.platform !== 'linux' ? 'Linux only' : false }, () => {
    const home = mkdtempSync(join(tmpdir(), 'dsg-svc-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_RUNTIME_DIR: join(home, 'run') };
      delete env['DSG_COORDINATOR']; delete env['DSG_JOIN_TOKEN'];
      const missing = spawnSync(process.execPath, [BIN, 'agent', 'install'], { env, encoding: 'utf8' });
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /--coordinator/);
      assert.match(missing.stderr, /--join-token/);

      writeFileSync(join(home, 'policy.yaml'), 'idleMinutes: 5\n');
      const r = spawnSync(process.execPath, [BIN, 'agent', 'install', '--user', '--coordinator', 'http://10.0.0.1:7070', '--join-token', 'dsg_node_secret', '--policy', join(home, 'policy.yaml'), '--cpus', '2'], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const unitPath = join(home, '.config/systemd/user/dsg-agent.service');
      const unit = readFileSync(unitPath, 'utf8');
      assert.match(unit, new RegExp(`^ExecStart=${process.execPath} \\S+/bin/dsg.js agent --state-dir ${home}/.local/share/dsg/agent --cpus 2 --policy ${home}/.config/dsg/agent-policy.yaml$`, 'm'));
      const envFile = join(home, '.config/dsg/agent.env');
      assert.equal(statSync(envFile).mode & 0o777, 0o600);
      assert.match(readFileSync(envFile, 'utf8'), /^DSG_JOIN_TOKEN=dsg_node_secret$/m);
      assert.equal(readFileSync(join(home, '.config/dsg/agent-policy.yaml'), 'utf8'), 'idleMinutes: 5\n');
      if (!existsSync('/run/systemd/system')) assert.match(r.stdout, /systemd is not running here.*\n\s+systemctl --user daemon-reload\n\s+systemctl --user enable --now dsg-agent/);
      if (hasSystemdAnalyze) execFileSync('systemd-analyze', ['verify', unitPath], { stdio: 'pipe' });
      else console.log('# systemd-analyze not available: unit checked by content only');

      const u = spawnSync(process.execPath, [BIN, 'agent', 'uninstall'], { env, encoding: 'utf8' });
      assert.equal(u.status, 0, u.stderr);
      for (const f of [unitPath, envFile, join(home, '.config/dsg/agent-policy.yaml'), join(home, '.config/dsg/install.json')]) assert.ok(!existsSync(f), f);
      assert.ok(existsSync(join(home, '.local/share/dsg/agent')), 'the node identity is kept unless --purge');
      const again = spawnSync(process.execPath, [BIN, 'agent', 'uninstall'], { env, encoding: 'utf8' });
      assert.equal(again.status, 0);
      assert.match(again.stdout, /nothing to remove/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
