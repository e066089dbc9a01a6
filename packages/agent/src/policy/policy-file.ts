/**
 * The volunteer policy file (YAML, per node): what the machine's owner lets the grid use, and when. Parsed once,
 * validated with zod; every error names the field path and, from a file, its line. Flags override the file
 * (`dsg agent --idle-minutes 5 …`), which overrides the defaults below.
 *
 * ```yaml
 * share:                    # at most this much of the machine
 *   cpus: 4
 *   memory: 8Gi
 *   gpus: [0]               # GPU indexes or UUIDs; [] shares none; absent: all
 * idle:                     # run only while nobody uses the machine (absent: whether or not they do)
 *   minutes: 10             # no keyboard or mouse input for this long
 *   ownerCpuPercent: 25     # and the owner's own programs use less CPU than this (% of the whole machine)
 * windows:                  # only at these local times (absent: any time)
 *   - days: [sat, sun]      # all day
 *   - days: weekdays
 *     from: "19:00"
 *     to: "07:00"           # earlier than `from`: ends the next morning
 * acPowerOnly: true         # never on battery
 * maxTemperature: 80        # °C, hottest thermal zone, where the OS reports one
 * gracePeriodMinutes: 5     # suspended this long: stop the tasks, they run elsewhere
 * ```
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { parseSize, ValidationError, type Issue } from '@dsg/core';
import { WEEKDAYS, type TimeWindow, type VolunteerPolicy, type Weekday } from './policy-engine.js';

const Time = z.string().regex(/^([01]?\d|2[0-4]):[0-5]\d$/, 'expected a time like "19:00" (24-hour clock)');
const Day = z.enum(WEEKDAYS);
const Days = z.union([z.literal('weekdays'), z.literal('weekend'), z.literal('every day'), z.array(Day).min(1)]);

export const PolicyFileSchema = z.strictObject({
  share: z.strictObject({
    cpus: z.number().positive().optional(),
    memory: z.union([z.string(), z.number().int().positive()]).optional(),
    gpus: z.array(z.union([z.number().int().min(0), z.string().min(1)])).optional(),
  }).optional(),
  idle: z.strictObject({
    minutes: z.number().min(0).default(10),
    ownerCpuPercent: z.number().min(1).max(100).nullable().default(25),
  }).optional(),
  windows: z.array(z.strictObject({ days: Days.default('every day'), from: Time.default('00:00'), to: Time.default('24:00') })).optional(),
  acPowerOnly: z.boolean().optional(),
  maxTemperature: z.number().min(20).max(150).optional(),
  gracePeriodMinutes: z.number().min(0).optional(),
  resumeAfterSeconds: z.number().min(0).optional(),
  cpuSpikeSeconds: z.number().min(0).optional(),
  cpuHysteresisPercent: z.number().min(0).max(100).optional(),
  temperatureHysteresis: z.number().min(0).max(50).optional(),
  checkEverySeconds: z.number().min(0.05).max(600).optional(),
});
export type PolicyFile = z.input<typeof PolicyFileSchema>;

/** The policy plus the share limits and how often to look. */
export interface CompiledPolicy {
  readonly policy: VolunteerPolicy;
  readonly share: { readonly cpus?: number; readonly memoryBytes?: number; readonly gpus?: ReadonlyArray<number | string> };
  /** How often the machine is read. */
  readonly checkEveryMs: number;
  /** Whether there is anything to watch at all (no idle, window, power or temperature rule: the agent always works). */
  readonly watches: boolean;
}

/** Flags that override the file (`dsg agent`). */
export interface PolicyOverrides {
  readonly idleMinutes?: number;
  readonly ownerCpuPercent?: number;
  readonly windows?: readonly string[];
  readonly acPowerOnly?: boolean;
  readonly maxTemperature?: number;
  readonly gracePeriodMinutes?: number;
  readonly gpus?: ReadonlyArray<number | string>;
}

export const POLICY_DEFAULTS = {
  gracePeriodMinutes: 5,
  resumeAfterSeconds: 30,
  cpuSpikeSeconds: 10,
  cpuHysteresisPercent: 10,
  temperatureHysteresis: 5,
  checkEverySeconds: 5,
} as const;

const minutesOf = (t: string): number => {
  const [h, m] = t.split(':').map(Number);
  return h! * 60 + m!;
};
const daysOf = (d: z.infer<typeof Days>): Weekday[] =>
  d === 'weekdays' ? ['mon', 'tue', 'wed', 'thu', 'fri'] : d === 'weekend' ? ['sat', 'sun'] : d === 'every day' ? [...WEEKDAYS] : [...new Set(d)];

/**
 * A window from a flag: `sat,sun` (all day), `mon-fri 19:00-07:00`, `weekdays 19:00-07:00`, `19:00-07:00` (every day).
 * Throws a ValidationError naming `path`.
 */
export function parseWindowFlag(text: string, path = '--window'): { days: z.infer<typeof Days>; from: string; to: string } {
  const bad = (): never => { throw new ValidationError([{ path, message: `expected days and/or hours like "sat,sun", "mon-fri 19:00-07:00" or "22:00-06:00", got "${text}"` }]); };
  let days: z.infer<typeof Days> = 'every day';
  let from = '00:00';
  let to = '24:00';
  const tokens = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (tokens.length === 0 || tokens.length > 2) return bad();
  for (const tok of tokens) {
    const hours = /^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/.exec(tok);
    if (hours) {
      if (!Time.safeParse(hours[1]).success || !Time.safeParse(hours[2]).success) return bad();
      [from, to] = [hours[1]!, hours[2]!];
    } else if (tok === 'weekdays' || tok === 'weekend') days = tok;
    else {
      const out: Weekday[] = [];
      for (const part of tok.split(',')) {
        const range = part.split('-');
        const idx = range.map((x) => WEEKDAYS.indexOf(x.slice(0, 3) as Weekday));
        if (idx.some((i) => i < 0) || range.length > 2) return bad();
        if (idx.length === 1) out.push(WEEKDAYS[idx[0]!]!);
        else for (let i = idx[0]!; ; i = (i + 1) % 7) {
          out.push(WEEKDAYS[i]!); // mon-fri; fri-mon wraps over the weekend
          if (i === idx[1]) break;
        }
      }
      days = out;
    }
  }
  return { days, from, to };
}

/** Validates a parsed policy (from a file or built in code), applies the overrides; throws a ValidationError. */
export function compilePolicy(raw: unknown, overrides: PolicyOverrides = {}, source = 'policy'): CompiledPolicy {
  const parsed = PolicyFileSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ValidationError(parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(top)', message: i.message })), source);
  const f = parsed.data;
  const issues: Issue[] = [];
  let memoryBytes: number | undefined;
  if (f.share?.memory !== undefined) {
    const m = typeof f.share.memory === 'number' ? f.share.memory : parseSize(f.share.memory);
    if (m === null || m <= 0) issues.push({ path: 'share.memory', message: `expected a size like 8Gi, got "${String(f.share.memory)}"` });
    else memoryBytes = m;
  }
  const windowsRaw = overrides.windows ? overrides.windows.map((w, i) => parseWindowFlag(w, `--window[${i}]`)) : f.windows ?? [];
  const windows: TimeWindow[] = windowsRaw.map((w) => ({ days: daysOf(w.days), fromMinute: minutesOf(w.from), toMinute: minutesOf(w.to) }));
  windows.forEach((w, i) => {
    if (w.fromMinute >= 1440) issues.push({ path: `windows.${i}.from`, message: 'a window cannot start at 24:00; use 00:00' });
  });
  if (issues.length > 0) throw new ValidationError(issues, source);
  const idleOn = overrides.idleMinutes !== undefined || overrides.ownerCpuPercent !== undefined || f.idle !== undefined;
  const idle = idleOn
    ? {
        idleMs: (overrides.idleMinutes ?? f.idle?.minutes ?? 10) * 60_000,
        ownerCpuPercent: overrides.ownerCpuPercent ?? (f.idle ? f.idle.ownerCpuPercent : 25),
      }
    : null;
  const maxTemperatureC = overrides.maxTemperature ?? f.maxTemperature ?? null;
  const acPowerOnly = overrides.acPowerOnly ?? f.acPowerOnly ?? false;
  const gpus = overrides.gpus ?? f.share?.gpus;
  const policy: VolunteerPolicy = {
    idle,
    windows,
    acPowerOnly,
    maxTemperatureC,
    graceMs: (overrides.gracePeriodMinutes ?? f.gracePeriodMinutes ?? POLICY_DEFAULTS.gracePeriodMinutes) * 60_000,
    resumeAfterMs: (f.resumeAfterSeconds ?? POLICY_DEFAULTS.resumeAfterSeconds) * 1000,
    cpuSpikeMs: (f.cpuSpikeSeconds ?? POLICY_DEFAULTS.cpuSpikeSeconds) * 1000,
    cpuHysteresisPercent: f.cpuHysteresisPercent ?? POLICY_DEFAULTS.cpuHysteresisPercent,
    temperatureHysteresisC: f.temperatureHysteresis ?? POLICY_DEFAULTS.temperatureHysteresis,
  };
  return {
    policy,
    share: { ...(f.share?.cpus !== undefined ? { cpus: f.share.cpus } : {}), ...(memoryBytes !== undefined ? { memoryBytes } : {}), ...(gpus ? { gpus } : {}) },
    checkEveryMs: (f.checkEverySeconds ?? POLICY_DEFAULTS.checkEverySeconds) * 1000,
    watches: idle !== null || windows.length > 0 || acPowerOnly || maxTemperatureC !== null,
  };
}

/** Parses YAML text; errors name the field path and its line (`idle.minutes (line 4): expected number…`). */
export function parsePolicyText(text: string, source: string, overrides: PolicyOverrides = {}): CompiledPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0)
    throw new ValidationError(doc.errors.map((e) => ({ path: `line ${lines.linePos(e.pos[0]).line}`, message: e.message.split('\n')[0]! })), `${source} is not valid YAML`);
  try {
    return compilePolicy(doc.toJS(), overrides, source);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    // Point at the line of each bad field (or of its parent, for a missing one).
    const withLines = e.issues.map((i) => {
      const path = i.path.split('.').filter((p) => p && p !== '(top)' && !p.startsWith('--')).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return { path: `${i.path} (line ${lines.linePos(node.range[0]).line})`, message: i.message };
      }
      return i;
    });
    throw new ValidationError(withLines, source);
  }
}

/** Reads and compiles a policy file. */
export function loadPolicyFile(file: string, overrides: PolicyOverrides = {}): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ValidationError([{ path: '--policy', message: `cannot read the policy file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  return parsePolicyText(text, file, overrides);
}
