// The Linux policy readers against fake /proc and /sys trees in temp dirs (and this machine's real ones), plus the
// parsers of the macOS and Windows adapters (written to the documented formats; not verified on those systems).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  LinuxPolicyReaders, localTime, parseIoregIdle, parseLoginctlIdle, parsePidStat, parsePmsetBatt, parseProcStat, parseWindowsReadings, type CommandRunner,
} from '../src/policy/readers.js';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'dsg-policy-fs-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}
const noCommands: CommandRunner = async (p) => {
  throw new Error(`${p}: not found`);
};
const pidStat = (pid: number, comm: string, ppid: number, u: number, s: number, cu = 0, cs = 0): string =>
  `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 100 0 0 0 ${u} ${s} ${cu} ${cs} 20 0 1 0 100 1000 100\n`;

describe('Linux readers: power and temperature (fake /sys)', () => {
  const cases: Array<[string, Record<string, string>, boolean | null]> = [
    ['laptop on mains', { 'class/power_supply/AC/type': 'Mains\n', 'class/power_supply/AC/online': '1\n', 'class/power_supply/BAT0/type': 'Battery\n', 'class/power_supply/BAT0/status': 'Charging\n' }, true],
    ['laptop on battery', { 'class/power_supply/AC/type': 'Mains\n', 'class/power_supply/AC/online': '0\n', 'class/power_supply/BAT0/type': 'Battery\n', 'class/power_supply/BAT0/status': 'Discharging\n' }, false],
    ['battery only, discharging (no Mains entry)', { 'class/power_supply/BAT1/type': 'Battery\n', 'class/power_supply/BAT1/status': 'Discharging\n' }, false],
    ['desktop: no supply listed', { 'class/power_supply/.keep': '' }, true],
    ['a USB supply does not count as mains', { 'class/power_supply/usb/type': 'USB\n', 'class/power_supply/usb/online': '0\n' }, true],
  ];
  for (const [name, files, want] of cases)
    it(name, async () => {
      const root = tree(files);
      try {
        assert.equal(await new LinuxPolicyReaders({ sysRoot: root, run: noCommands }).onAc(), want);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  it('no /sys/class/power_supply at all: unknown', async () => {
    const root = tree({ 'x': '' });
    try {
      assert.equal(await new LinuxPolicyReaders({ sysRoot: root, run: noCommands }).onAc(), null);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  it('temperature: the hottest zone, ignoring absent sensors; none: null, and said in limits()', async () => {
    const root = tree({ 'class/thermal/thermal_zone0/temp': '45000\n', 'class/thermal/thermal_zone1/temp': '71500\n', 'class/thermal/thermal_zone2/temp': '-273000\n', 'class/thermal/cooling_device0/type': 'Fan\n' });
    const empty = tree({ 'class/thermal/.keep': '' });
    try {
      assert.equal(await new LinuxPolicyReaders({ sysRoot: root, run: noCommands }).temperature(), 71.5);
      const r = new LinuxPolicyReaders({ sysRoot: empty, run: noCommands });
      assert.equal(await r.temperature(), null);
      const limits = (await r.limits()).join('\n');
      assert.match(limits, /no thermal zone/);
      assert.match(limits, /idle time cannot be read here \(no display, and logind reports no IdleHint\): an idle-only policy counts the machine as in use/);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('Linux readers: owner CPU (fake /proc)', () => {
  it('is the machine\'s busy time minus the agent\'s tree and task cgroups, as % of the whole machine', async () => {
    // Agent 100 → launcher 101 → task 102; a setsid task child 300 re-parented to init but in a task cgroup;
    // the owner's browser 200.
    const files = (busyUser: number, idle: number, agent: number, task: number, escaped: number, browser: number): Record<string, string> => ({
      'stat': `cpu  ${busyUser} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n`,
      '1/stat': pidStat(1, 'init', 0, 5, 5), '1/cgroup': '0::/init.scope\n',
      '100/stat': pidStat(100, 'node', 1, agent, 0), '100/cgroup': '0::/user.slice\n',
      '101/stat': pidStat(101, 'node launcher', 100, 0, 0), '101/cgroup': '0::/user.slice\n',
      '102/stat': pidStat(102, 'sh) S 1 (evil', 101, task, 0), '102/cgroup': '4:memory:/user.slice/dsg-101-7\n',
      '300/stat': pidStat(300, 'sleeper', 1, escaped, 0), '300/cgroup': '4:memory:/user.slice/dsg-101-7\n0::/user.slice\n',
      '200/stat': pidStat(200, 'firefox', 1, browser, 0), '200/cgroup': '0::/user.slice/firefox\n',
    });
    const root = tree(files(1000, 1000, 10, 100, 0, 50));
    try {
      const r = new LinuxPolicyReaders({ procRoot: root, agentPid: 100, run: noCommands });
      assert.equal(await r.ownerCpu(), null, 'the first reading has nothing to compare with');
      // 400 jiffies pass: 300 busy of which the agent 10 + task 200 + escaped child 40 are the grid's; the browser's 50 are the owner's.
      for (const [p, t] of Object.entries(files(1300, 1100, 20, 300, 40, 100))) writeFileSync(join(root, p), t);
      const pct = await r.ownerCpu();
      assert.ok(pct !== null && Math.abs(pct - 12.5) < 1e-9, `owner CPU ${pct}% (expected 50/400 = 12.5%)`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  it('parses /proc/stat and /proc/PID/stat (a command name with spaces and parentheses)', () => {
    assert.deepEqual(parseProcStat('cpu  10 1 5 100 4 1 1 2 0 0\n'), { busy: 20, total: 124 });
    assert.deepEqual(parsePidStat(pidStat(7, 'a b) S (c', 3, 11, 12, 13, 14)), { ppid: 3, jiffies: 50 });
  });
  it('reads this machine\'s real /proc: a busy loop of the agent\'s own is not the owner\'s', async () => {
    const r = new LinuxPolicyReaders({ run: noCommands });
    await r.ownerCpu();
    const until = Date.now() + 300;
    while (Date.now() < until) { /* burn one core as the "agent" */ }
    const pct = await r.ownerCpu();
    assert.ok(pct !== null && pct >= 0 && pct <= 100, String(pct));
    // The busy loop alone is 1 core of this machine; it must not show up as the owner's (others' load may).
    console.log(`owner CPU on this machine while the agent itself spun: ${pct.toFixed(1)}%`);
  });
});

describe('Linux readers: idle time', () => {
  it('xprintidle with a display; logind IdleHint / IdleSinceHint without; nothing: null', async () => {
    const calls: string[] = [];
    const x: CommandRunner = async (p, args) => {
      calls.push([p, ...args].join(' '));
      if (p === 'xprintidle') return '12345\n';
      throw new Error('no');
    };
    assert.equal(await new LinuxPolicyReaders({ display: ':0', run: x }).idle(0), 12_345);
    const now = 1_700_000_000_000;
    const logind: CommandRunner = async (p, args) => {
      if (p !== 'loginctl') throw new Error('no xprintidle');
      if (args[0] === 'list-sessions') return '  3 1000 alice seat0 tty2\n  7 1001 bob          \n';
      assert.deepEqual(args.slice(0, 2), ['show-session', '3'], 'only sessions on a seat (a person at the machine)');
      return `IdleHint=yes\nIdleSinceHint=${(now - 90_000) * 1000}\n`;
    };
    assert.equal(await new LinuxPolicyReaders({ display: ':0', run: logind }).idle(now), 90_000);
    assert.equal(await new LinuxPolicyReaders({ run: noCommands }).idle(now), null);
    assert.equal(parseLoginctlIdle('IdleHint=no\nIdleSinceHint=0\n', now), 0);
    assert.equal(parseLoginctlIdle('Id=3\n', now), null);
  });
  it('reads the real machine without throwing (here: no display and no logind, so null)', async () => {
    const r = await new LinuxPolicyReaders().read();
    console.log(`this machine: idle ${r.idleMs}, on AC ${r.onAc}, temperature ${r.temperatureC}, local ${r.local.weekday} ${r.local.minute}`);
    assert.equal(typeof r.now, 'number');
  });
});

describe('macOS and Windows parsers (NOT verified on those systems)', () => {
  it('ioreg HIDIdleTime (ns), pmset -g batt, the PowerShell output', () => {
    assert.equal(parseIoregIdle('  |   "HIDIdleTime" = 5123456789\n'), 5123.456789);
    assert.equal(parseIoregIdle('nothing'), null);
    assert.equal(parsePmsetBatt("Now drawing from 'AC Power'\n -InternalBattery-0 (id=1)\t100%; charged;"), true);
    assert.equal(parsePmsetBatt("Now drawing from 'Battery Power'\n"), false);
    assert.deepEqual(parseWindowsReadings('4500\r\n1\r\n'), { idleMs: 4500, onAc: false });
    assert.deepEqual(parseWindowsReadings('10\r\n'), { idleMs: 10, onAc: true });
  });
  it('local time is the machine\'s own', () => {
    const d = new Date(2026, 0, 4, 22, 30); // a Sunday, local
    assert.deepEqual(localTime(d.getTime()), { weekday: 'sun', minute: 22 * 60 + 30 });
  });
});
