/**
 * The Policy readers port: how the agent learns whether the machine's owner is using it. One adapter per OS, and a
 * fake for tests. Every reading may be null ("this machine does not say"); the policy engine decides what unknown
 * means (see policy-engine.ts).
 *
 * | reading | Linux (verified here, against real and fake /proc and /sys) | macOS (written, NOT verified) | Windows (written, NOT verified) |
 * |---|---|---|---|
 * | idle | `xprintidle` with a display; else logind `IdleHint`/`IdleSinceHint` (`loginctl show-session`) | `ioreg -c IOHIDSystem` HIDIdleTime | PowerShell `GetLastInputInfo` |
 * | owner CPU | /proc/stat minus the agent's process tree and its task cgroups (/proc/PID/stat) | — (null) | — (null) |
 * | AC power | /sys/class/power_supply/{*}/type + online (no supply at all: a desktop on mains) | `pmset -g batt` | `Win32_Battery.BatteryStatus` |
 * | temperature | hottest /sys/class/thermal/thermal_zone{*}/temp | — (null) | — (null) |
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WEEKDAYS, type PolicyReadings } from './policy-engine.js';

export interface PolicyReaders {
  read(): Promise<PolicyReadings>;
  /** What this adapter cannot read on this machine, in words (logged once at start). */
  limits(): Promise<string[]>;
}

/** Runs a program and resolves to its stdout; rejects when it cannot be run or fails. */
export type CommandRunner = (program: string, args: readonly string[]) => Promise<string>;

export const runCommand: CommandRunner = (program, args) =>
  new Promise((resolve, reject) => {
    execFile(program, [...args], { timeout: 3000, maxBuffer: 1 << 20, windowsHide: true }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });

/** Local weekday and minute of the day (the machine's own time zone). */
export function localTime(now: number): PolicyReadings['local'] {
  const d = new Date(now);
  return { weekday: WEEKDAYS[d.getDay()]!, minute: d.getHours() * 60 + d.getMinutes() };
}

// ─── Linux ─────────────────────────────────────────────────────────────────────────────────────────────────────

export interface LinuxReaderOptions {
  /** Default /sys (tests point these at fake trees). */
  readonly sysRoot?: string;
  /** Default /proc. */
  readonly procRoot?: string;
  /** The X display ($DISPLAY) to ask `xprintidle`; absent: logind only. */
  readonly display?: string;
  /** The agent's pid: it and everything below it are the grid's, not the owner's. Default this process. */
  readonly agentPid?: number;
  readonly run?: CommandRunner;
  readonly clock?: () => number;
}

interface CpuSample {
  /** Busy and total jiffies of the whole machine (/proc/stat). */
  readonly busy: number;
  readonly total: number;
  /** Jiffies per grid process (own + reaped children's), keyed by pid. */
  readonly grid: ReadonlyMap<number, number>;
}

/** The `cpu` line of /proc/stat → busy and total jiffies. */
export function parseProcStat(text: string): { busy: number; total: number } | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** /proc/PID/stat → ppid and jiffies (utime + stime + cutime + cstime). The command may hold spaces and parens. */
export function parsePidStat(text: string): { ppid: number; jiffies: number } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).trim().split(/\s+/); // f[0] is field 3 (state)
  const ppid = Number(f[1]);
  const jiffies = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return Number.isFinite(ppid) && Number.isFinite(jiffies) ? { ppid, jiffies } : null;
}

/** `loginctl show-session` output → ms since the last input (0 while not idle); null without the properties. */
export function parseLoginctlIdle(text: string, now: number): number | null {
  const hint = /^IdleHint=(yes|no)$/m.exec(text)?.[1];
  if (!hint) return null;
  if (hint === 'no') return 0;
  const since = Number(/^IdleSinceHint=(\d+)$/m.exec(text)?.[1]);
  return since > 0 ? Math.max(0, now - since / 1000) : null; // µs since the epoch
}

export class LinuxPolicyReaders implements PolicyReaders {
  private readonly sys: string;
  private readonly proc: string;
  private readonly run: CommandRunner;
  private readonly clock: () => number;
  private readonly agentPid: number;
  private last: CpuSample | null = null;
  private idleSource: 'xprintidle' | 'logind' | null = null;

  constructor(private readonly options: LinuxReaderOptions = {}) {
    this.sys = options.sysRoot ?? '/sys';
    this.proc = options.procRoot ?? '/proc';
    this.run = options.run ?? runCommand;
    this.clock = options.clock ?? Date.now;
    this.agentPid = options.agentPid ?? process.pid;
  }

  async read(): Promise<PolicyReadings> {
    const now = this.clock();
    const [idleMs, ownerCpuPercent, onAc, temperatureC] = await Promise.all([this.idle(now), this.ownerCpu(), this.onAc(), this.temperature()]);
    return { now, local: localTime(now), idleMs, ownerCpuPercent, onAc, temperatureC };
  }

  async limits(): Promise<string[]> {
    const out: string[] = [];
    if ((await this.idle(this.clock())) === null)
      out.push(`keyboard and mouse idle time cannot be read here (${this.options.display ? `xprintidle failed on display ${this.options.display}, ` : 'no display, '}and logind reports no IdleHint): an idle-only policy counts the machine as in use`);
    if ((await this.temperature()) === null) out.push('no thermal zone in /sys/class/thermal: a temperature ceiling cannot be applied');
    return out;
  }

  /** ms since the last keyboard or mouse input; null when nothing says. */
  async idle(now: number): Promise<number | null> {
    if (this.options.display && this.idleSource !== 'logind') {
      try {
        const ms = Number((await this.run('xprintidle', [])).trim());
        if (Number.isFinite(ms) && ms >= 0) {
          this.idleSource = 'xprintidle';
          return ms;
        }
      } catch {
        /* not installed, or no access to the display: try logind */
      }
    }
    try {
      // The graphical (or any) session on a seat: the person in front of the machine.
      const list = await this.run('loginctl', ['list-sessions', '--no-legend']);
      const ids = list.split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c[0] && c.some((x) => /^seat\d+$/.test(x))).map((c) => c[0]!);
      let best: number | null = null;
      for (const id of ids) {
        const ms = parseLoginctlIdle(await this.run('loginctl', ['show-session', id, '-p', 'IdleHint', '-p', 'IdleSinceHint']), now);
        if (ms !== null) best = best === null ? ms : Math.min(best, ms); // the most recently used session counts
      }
      if (best !== null) this.idleSource = 'logind';
      return best;
    } catch {
      return null;
    }
  }

  /** Owner CPU, % of the whole machine, since the previous call (null on the first). */
  async ownerCpu(): Promise<number | null> {
    const sample = await this.sampleCpu();
    if (!sample) return null;
    const prev = this.last;
    this.last = sample;
    if (!prev) return null;
    const total = sample.total - prev.total;
    if (total <= 0) return null;
    let grid = 0;
    // Each grid process's growth since the last sample (a new one counts in full: it started in between).
    for (const [pid, j] of sample.grid) grid += Math.max(0, j - (prev.grid.get(pid) ?? 0));
    const owner = sample.busy - prev.busy - grid;
    return Math.min(100, Math.max(0, (owner / total) * 100));
  }

  private async sampleCpu(): Promise<CpuSample | null> {
    let stat: { busy: number; total: number } | null;
    try {
      stat = parseProcStat(await readFile(join(this.proc, 'stat'), 'utf8'));
    } catch {
      return null;
    }
    if (!stat) return null;
    const procs = new Map<number, { ppid: number; jiffies: number }>();
    const entries = (await readdir(this.proc).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d));
    await Promise.all(entries.map(async (d) => {
      const p = parsePidStat(await readFile(join(this.proc, d, 'stat'), 'utf8').catch(() => ''));
      if (p) procs.set(Number(d), p);
    }));
    // The grid's processes: the agent and its descendants (launcher, tasks), plus whatever sits in a task cgroup
    // (`setsid`, double-forked children re-parented to init).
    const children = new Map<number, number[]>();
    for (const [pid, p] of procs) {
      let l = children.get(p.ppid);
      if (!l) children.set(p.ppid, (l = []));
      l.push(pid);
    }
    const grid = new Map<number, number>();
    const walk = [this.agentPid];
    while (walk.length > 0) {
      const pid = walk.pop()!;
      const p = procs.get(pid);
      if (!p || grid.has(pid)) continue;
      grid.set(pid, p.jiffies);
      walk.push(...(children.get(pid) ?? []));
    }
    await Promise.all([...procs].filter(([pid]) => !grid.has(pid)).map(async ([pid, p]) => {
      const cg = await readFile(join(this.proc, String(pid), 'cgroup'), 'utf8').catch(() => '');
      if (/\/dsg-\d+-/.test(cg)) grid.set(pid, p.jiffies);
    }));
    return { ...stat, grid };
  }

  /** true on mains; false on battery; true when there is no battery at all (a desktop); null when unreadable. */
  async onAc(): Promise<boolean | null> {
    const dir = join(this.sys, 'class', 'power_supply');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return null;
    }
    const read = (n: string, f: string): Promise<string | null> => readFile(join(dir, n, f), 'utf8').then((t) => t.trim(), () => null);
    let mains = 0;
    let mainsOnline = 0;
    let discharging = false;
    for (const n of names) {
      const type = await read(n, 'type');
      if (type === 'Mains') {
        mains++;
        if ((await read(n, 'online')) === '1') mainsOnline++;
      } else if (type === 'Battery' && (await read(n, 'status')) === 'Discharging') discharging = true;
    }
    if (mains > 0) return mainsOnline > 0;
    return !discharging;
  }

  /** The hottest thermal zone in °C; null when there is none. */
  async temperature(): Promise<number | null> {
    const dir = join(this.sys, 'class', 'thermal');
    const zones = (await readdir(dir).catch(() => [] as string[])).filter((z) => z.startsWith('thermal_zone'));
    let hottest: number | null = null;
    for (const z of zones) {
      const milli = Number((await readFile(join(dir, z, 'temp'), 'utf8').catch(() => '')).trim());
      // Some zones report nonsense (0, negative, or millions) when their sensor is absent.
      if (Number.isFinite(milli) && milli > 0 && milli < 200_000) hottest = Math.max(hottest ?? -Infinity, milli / 1000);
    }
    return hottest;
  }
}

// ─── macOS (written to Apple's documented output; NOT verified on a Mac) ───────────────────────────────────────

/** `ioreg -c IOHIDSystem` → ms since the last input. */
export function parseIoregIdle(text: string): number | null {
  const m = /"HIDIdleTime"\s*=\s*(\d+)/.exec(text);
  return m ? Number(m[1]) / 1e6 : null; // nanoseconds
}

/** `pmset -g batt` → on AC? */
export function parsePmsetBatt(text: string): boolean | null {
  if (/'AC Power'/.test(text)) return true;
  if (/'Battery Power'/.test(text)) return false;
  return null;
}

export class MacPolicyReaders implements PolicyReaders {
  constructor(private readonly run: CommandRunner = runCommand, private readonly clock: () => number = Date.now) {}
  async read(): Promise<PolicyReadings> {
    const now = this.clock();
    const [idle, batt] = await Promise.all([
      this.run('ioreg', ['-c', 'IOHIDSystem', '-d', '4']).then(parseIoregIdle, () => null),
      this.run('pmset', ['-g', 'batt']).then(parsePmsetBatt, () => null),
    ]);
    return { now, local: localTime(now), idleMs: idle, ownerCpuPercent: null, onAc: batt, temperatureC: null };
  }
  async limits(): Promise<string[]> {
    return ['macOS readers are not verified; owner CPU and temperature are not read on macOS (only keyboard/mouse idle and power)'];
  }
}

// ─── Windows (written to Microsoft's documented API; NOT verified on Windows) ─────────────────────────────────

const WIN_IDLE = `Add-Type @'
using System; using System.Runtime.InteropServices;
public static class DsgIdle { [StructLayout(LayoutKind.Sequential)] struct LII { public uint cbSize; public uint dwTime; }
  [DllImport("user32.dll")] static extern bool GetLastInputInfo(ref LII p);
  public static uint Ms() { LII l = new LII(); l.cbSize = (uint)Marshal.SizeOf(l); GetLastInputInfo(ref l); return (uint)Environment.TickCount - l.dwTime; } }
'@; [DsgIdle]::Ms(); (Get-CimInstance Win32_Battery | Select-Object -First 1).BatteryStatus`;

/** Output of WIN_IDLE: the idle ms, then the battery status (2 = on AC; absent: no battery). */
export function parseWindowsReadings(text: string): { idleMs: number | null; onAc: boolean | null } {
  const [idle, batt] = text.trim().split(/\r?\n/).map((l) => l.trim());
  const ms = Number(idle);
  return { idleMs: idle && Number.isFinite(ms) ? ms : null, onAc: batt === undefined || batt === '' ? true : batt === '2' };
}

export class WindowsPolicyReaders implements PolicyReaders {
  constructor(private readonly run: CommandRunner = runCommand, private readonly clock: () => number = Date.now) {}
  async read(): Promise<PolicyReadings> {
    const now = this.clock();
    const r = await this.run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', WIN_IDLE]).then(parseWindowsReadings, () => ({ idleMs: null, onAc: null }));
    return { now, local: localTime(now), ...r, ownerCpuPercent: null, temperatureC: null };
  }
  async limits(): Promise<string[]> {
    return ['Windows readers are not verified; owner CPU and temperature are not read on Windows (only keyboard/mouse idle and power); a service without a desktop session sees no input'];
  }
}

// ─── Fake ──────────────────────────────────────────────────────────────────────────────────────────────────────

/** Readings a test sets by hand. */
export class FakePolicyReaders implements PolicyReaders {
  current: Omit<PolicyReadings, 'now' | 'local'> & { local?: PolicyReadings['local'] } = { idleMs: 3_600_000, ownerCpuPercent: 0, onAc: true, temperatureC: 40 };
  constructor(private readonly clock: () => number = Date.now) {}
  async read(): Promise<PolicyReadings> {
    const now = this.clock();
    return { local: localTime(now), ...this.current, now };
  }
  async limits(): Promise<string[]> {
    return [];
  }
}

/** The adapter for this OS. */
export function systemPolicyReaders(options: LinuxReaderOptions = {}): PolicyReaders {
  if (process.platform === 'darwin') return new MacPolicyReaders();
  if (process.platform === 'win32') return new WindowsPolicyReaders();
  return new LinuxPolicyReaders(options);
}
