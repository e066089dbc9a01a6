/**
 * Placement constraints and preferences: what a job asks of the machine it runs on, matched against the node's
 * operator labels (`dsg agent --label room=lab2`) and probed facts.
 *
 * In a spec, a map of key → condition:
 *
 *   constraints:                 # hard: a node that does not match never runs the job
 *     room: lab2                 #   equals
 *     arch: [x86_64, aarch64]    #   one of
 *     os: "!windows"             #   not equal
 *     software.lammps: "*"       #   exists (the label is set, whatever its value)
 *     gpu.count: ">= 2"          #   numeric comparison: >, >=, <, <=, = (sizes like 16Gi allowed)
 *   prefer:                      # soft: among nodes that fit, those matching more of these are chosen first
 *     room: lab1
 *
 * Keys name a probed fact when they are one of FACT_KEYS (`os` — linux, darwin, win32 —, `os.version`, `arch` —
 * x64, arm64 —, `hostname`, `cpu.model`, `cpu.cores`,
 * `memory`, `disk`, `gpu.model`, `gpu.count`, `gpu.memory`, `gpu.vendor`, `gpu.driver`, `cuda` — the CUDA version the
 * driver supports, compared as a version: `cuda: ">= 12.2"`); any other key is an operator label. Pure: runs in the
 * browser and in the scheduler.
 */
import type { Issue } from './errors.js';
import type { NodeFacts } from './protocol.js';
import { parseSize } from './units.js';

export const FACT_KEYS = ['os', 'os.version', 'arch', 'hostname', 'cpu.model', 'cpu.cores', 'memory', 'disk', 'gpu.model', 'gpu.count', 'gpu.memory', 'gpu.vendor', 'gpu.driver', 'cuda'] as const;

/** Facts that are versions: compared part by part (`cuda: ">= 12.2"` holds for 12.10), not as decimals. */
const VERSION_KEYS: ReadonlySet<string> = new Set(['cuda', 'gpu.driver']);
const VERSION = /^\d+(\.\d+)*$/;

/** Compare dotted versions part by part: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export type ConstraintOp = 'eq' | 'in' | 'ne' | 'exists' | 'absent' | 'gt' | 'ge' | 'lt' | 'le';

export interface Constraint {
  readonly key: string;
  readonly op: ConstraintOp;
  /** Strings for eq/ne/in; one number for comparisons; empty for exists/absent. */
  readonly values: readonly string[];
  readonly number: number | null;
}

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/;
const COMPARISON = /^\s*(>=|<=|>|<|=)\s*(.+?)\s*$/;

/** Parse a constraints (or prefer) map from a spec; issues carry `prefix` + key. */
export function compileConstraints(raw: Readonly<Record<string, unknown>> | undefined, prefix: string, issues: Issue[]): Constraint[] {
  const out: Constraint[] = [];
  for (const [key, cond] of Object.entries(raw ?? {})) {
    const path = `${prefix}.${key}`;
    if (!KEY_PATTERN.test(key)) {
      issues.push({ path, message: 'expected a label or fact name of letters, digits, ".", "_", "-" or "/"' });
      continue;
    }
    if (Array.isArray(cond)) {
      if (cond.length === 0 || !cond.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
        issues.push({ path, message: 'expected a non-empty list of values (the node must have one of them)' });
      else out.push({ key, op: 'in', values: cond.map(String), number: null });
      continue;
    }
    if (typeof cond === 'number' || typeof cond === 'boolean') {
      out.push({ key, op: 'eq', values: [String(cond)], number: null });
      continue;
    }
    if (typeof cond !== 'string' || cond.length === 0 || cond.length > 200) {
      issues.push({ path, message: 'expected a value, a list of values, "!value", "*" (exists), "!*" (absent) or a comparison like ">= 16Gi"' });
      continue;
    }
    if (cond === '*') out.push({ key, op: 'exists', values: [], number: null });
    else if (cond === '!*') out.push({ key, op: 'absent', values: [], number: null });
    else if (cond.startsWith('!')) out.push({ key, op: 'ne', values: [cond.slice(1)], number: null });
    else {
      const m = COMPARISON.exec(cond);
      if (m && /^[<>=]/.test(cond.trim())) {
        const n = numberOf(m[2]!);
        if (VERSION_KEYS.has(key)) {
          // Versions keep their text: 12.10 is after 12.2.
          if (!VERSION.test(m[2]!.trim())) issues.push({ path, message: `"${m[2]}" is not a version like 12.2` });
          else out.push({ key, op: ({ '>': 'gt', '>=': 'ge', '<': 'lt', '<=': 'le', '=': 'eq' } as const)[m[1] as '>'], values: [m[2]!.trim()], number: n });
        } else if (n === null) issues.push({ path, message: `"${m[2]}" is not a number or a size like 16Gi` });
        else out.push({ key, op: ({ '>': 'gt', '>=': 'ge', '<': 'lt', '<=': 'le', '=': 'eq' } as const)[m[1] as '>'], values: m[1] === '=' ? [m[2]!] : [], number: n });
      } else out.push({ key, op: 'eq', values: [cond], number: null });
    }
  }
  return out;
}

function numberOf(s: string): number | null {
  const t = s.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  return parseSize(t);
}

/** What a node offers to match against: its labels, and its facts under FACT_KEYS. */
export function nodeAttributes(labels: Readonly<Record<string, string>>, facts: NodeFacts | null): Map<string, string> {
  const m = new Map<string, string>(Object.entries(labels));
  if (facts) {
    // Agents report `os` as "<platform> <release>" (linux 6.1.0): match on the platform, the release apart.
    const [platform, ...release] = facts.os.split(' ');
    m.set('os', platform ?? facts.os);
    if (release.length > 0) m.set('os.version', release.join(' '));
    m.set('arch', facts.arch);
    m.set('hostname', facts.hostname);
    m.set('cpu.model', facts.cpuModel);
    m.set('cpu.cores', String(facts.cores));
    m.set('memory', String(facts.memoryBytes));
    m.set('disk', String(facts.diskBytes));
    m.set('gpu.count', String(facts.gpus.length));
    if (facts.gpus.length > 0) {
      m.set('gpu.model', facts.gpus.map((g) => g.model).join(','));
      m.set('gpu.memory', String(Math.max(...facts.gpus.map((g) => g.memoryBytes))));
      m.set('gpu.vendor', facts.gpus[0]!.vendor ?? 'nvidia');
      const driver = facts.gpus.find((g) => g.driverVersion)?.driverVersion;
      if (driver) m.set('gpu.driver', driver);
      // The newest CUDA any of its GPUs' drivers supports (one driver per machine: all the same in practice).
      const cuda = facts.gpus.map((g) => g.cudaVersion).filter((v): v is string => typeof v === 'string' && VERSION.test(v)).sort(compareVersions).at(-1);
      if (cuda) m.set('cuda', cuda);
    }
  }
  return m;
}

/** Does a node with these attributes satisfy the constraint? */
export function matches(c: Constraint, attrs: ReadonlyMap<string, string>): boolean {
  const v = attrs.get(c.key);
  switch (c.op) {
    case 'exists':
      return v !== undefined;
    case 'absent':
      return v === undefined;
    case 'eq':
      if (v === undefined) return false;
      if (VERSION_KEYS.has(c.key) && c.values[0] !== undefined && VERSION.test(c.values[0])) return VERSION.test(v) && compareVersions(v, c.values[0]) === 0;
      if (c.number !== null) return numberOf(v) === c.number;
      // gpu.model lists every GPU's model: equal if one of them is.
      return c.key === 'gpu.model' ? v.split(',').includes(c.values[0]!) : v === c.values[0];
    case 'ne':
      return v === undefined || (c.key === 'gpu.model' ? !v.split(',').includes(c.values[0]!) : v !== c.values[0]);
    case 'in':
      return v !== undefined && (c.key === 'gpu.model' ? v.split(',').some((x) => c.values.includes(x)) : c.values.includes(v));
    case 'gt':
    case 'ge':
    case 'lt':
    case 'le': {
      if (VERSION_KEYS.has(c.key) && c.values[0] !== undefined) {
        if (v === undefined || !VERSION.test(v)) return false;
        const d = compareVersions(v, c.values[0]);
        return c.op === 'gt' ? d > 0 : c.op === 'ge' ? d >= 0 : c.op === 'lt' ? d < 0 : d <= 0;
      }
      const n = v === undefined ? null : numberOf(v);
      if (n === null || c.number === null) return false;
      return c.op === 'gt' ? n > c.number : c.op === 'ge' ? n >= c.number : c.op === 'lt' ? n < c.number : n <= c.number;
    }
  }
}

/** A constraint as a user wrote it, for messages: `room=lab2`, `arch in [x86_64, aarch64]`, `gpu.count>=2`. */
export function describeConstraint(c: Constraint): string {
  switch (c.op) {
    case 'eq':
      return `${c.key}=${c.values[0] ?? c.number}`;
    case 'ne':
      return `${c.key}!=${c.values[0]}`;
    case 'in':
      return `${c.key} in [${c.values.join(', ')}]`;
    case 'exists':
      return `${c.key} set`;
    case 'absent':
      return `${c.key} not set`;
    default:
      return `${c.key}${{ gt: '>', ge: '>=', lt: '<', le: '<=' }[c.op]}${VERSION_KEYS.has(c.key) ? (c.values[0] ?? c.number) : c.number}`;
  }
}

/** A stable key for a constraint list (the scheduler's skip cache keys on it). */
export const constraintsKey = (cs: readonly Constraint[]): string => cs.map(describeConstraint).join('&');
