/**
 * Slurm batch scripts as DSG jobs (`dsg submit job.sbatch`). Pure: script text → a job spec plus what was ignored.
 *
 * Read: `--job-name/-J`, `--cpus-per-task/-c`, `--mem` (Slurm units: K, M, G, T; a bare number is MB),
 * `--mem-per-cpu`, `--gres=gpu[:type]:N`, `--gpus/-G`, `--time/-t` (every Slurm form: M, M:S, H:M:S, D-H,
 * D-H:M, D-H:M:S), `--array/-a` (ranges, steps, lists, `%N` throttle), `--output/-o` and `--error/-e` (with `%a %A
 * %j %x %%`; the task's stdout/stderr go to that file, which is collected as an output). Slurm assumes a shared file
 * system; DSG moves files instead, so a script names what it needs with `#DSG --input PATH` and what it produces with
 * `#DSG --output GLOB` (the script itself is always sent).
 * Reported, never silently dropped: directives that mean nothing on a grid of single machines (partition, account,
 * qos, mail, …) are listed as ignored; multi-node or multi-task requests (`--nodes` > 1, `--ntasks` > 1) and unknown
 * directives are errors naming the line.
 * The task runs the script with its own interpreter (the `#!` line, default /bin/bash) and sees SLURM_JOB_ID,
 * SLURM_JOB_NAME, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT/MIN/MAX, SLURM_CPUS_PER_TASK,
 * SLURM_NTASKS, SLURM_MEM_PER_NODE, SLURM_SUBMIT_DIR (its working directory) and SLURM_GPUS.
 */
import { basename } from 'node:path';
import { ValidationError } from '@dsg/core/base';
import type { Issue } from '@dsg/core';
import { parseArrayFlag } from './run-spec.js';

export interface SbatchJob {
  readonly spec: Record<string, unknown>;
  /** Directives read but meaningless here, each with its line: printed as warnings at submit. */
  readonly ignored: readonly string[];
}

/** Does this file look like a batch script rather than a YAML/JSON spec? */
export function isSbatchScript(file: string, text: string): boolean {
  if (/\.(sbatch|slurm)$/i.test(file)) return true;
  if (/\.(ya?ml|json)$/i.test(file)) return false;
  return /^#!/.test(text) && /^#SBATCH\s/m.test(text);
}

const IGNORED = new Set(['partition', 'account', 'qos', 'mail-type', 'mail-user', 'export', 'chdir', 'constraint', 'exclusive', 'requeue', 'no-requeue',
  'reservation', 'comment', 'begin', 'hint', 'distribution', 'open-mode', 'parsable', 'wckey', 'licenses', 'signal', 'nice', 'propagate', 'get-user-env', 'profile']);
const SHORT: Record<string, string> = { J: 'job-name', c: 'cpus-per-task', t: 'time', a: 'array', o: 'output', e: 'error', p: 'partition', A: 'account', n: 'ntasks', N: 'nodes', G: 'gpus', q: 'qos', D: 'chdir' };
const TAKES_NO_VALUE = new Set(['exclusive', 'requeue', 'no-requeue', 'parsable', 'get-user-env']);

/** Slurm memory: a number with an optional K/M/G/T suffix; a bare number is megabytes. → a DSG size (Mi/Gi). */
export function slurmMemory(text: string): string | null {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)B?$/i.exec(text.trim());
  if (!m) return null;
  const mib = Number(m[1]) * ({ K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024, '': 1 } as Record<string, number>)[m[2]!.toUpperCase()]!;
  return mib >= 1024 && Number.isInteger(mib / 1024) ? `${mib / 1024}Gi` : `${Math.max(1, Math.ceil(mib))}Mi`;
}

/** Slurm time limits (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) → seconds; null when unreadable. */
export function slurmTime(text: string): number | null {
  const t = text.trim();
  if (t === 'UNLIMITED' || t === 'INFINITE') return null;
  let m = /^(\d+)-(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (m) return Number(m[1]) * 86400 + Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  m = /^(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t);
  if (!m) return null;
  if (m[3] !== undefined) return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  if (m[2] !== undefined) return Number(m[1]) * 60 + Number(m[2]);
  return Number(m[1]) * 60;
}

/** `%a %A %j %x %%` in an output file name → shell syntax the task expands. */
function filePattern(p: string): string {
  return p.replace(/%(%|a|A|j|x|J|N|n|u)/g, (_, c: string) =>
    c === '%' ? '%' : c === 'a' ? '${SLURM_ARRAY_TASK_ID}' : c === 'A' ? '${SLURM_ARRAY_JOB_ID}' : c === 'j' || c === 'J' ? '${SLURM_JOB_ID}' : c === 'x' ? '${SLURM_JOB_NAME}' : c === 'u' ? '${USER:-dsg}' : '0');
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function parseSbatch(text: string, fileName: string): SbatchJob {
  const issues: Issue[] = [];
  const ignored: string[] = [];
  const opts = new Map<string, { value: string; line: number }>();
  const inputs: string[] = [];
  const outputs: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const at = `${fileName}:${i + 1}`;
    const dsg = /^#DSG\s+(.*)$/.exec(line);
    if (dsg) {
      const m = /^--(input|output)[=\s]\s*(\S.*)$/.exec(dsg[1]!.trim());
      if (!m) issues.push({ path: at, message: `expected #DSG --input PATH or #DSG --output GLOB, got "${line}"` });
      else (m[1] === 'input' ? inputs : outputs).push(m[2]!.trim());
      continue;
    }
    const sb = /^#SBATCH\s+(.*)$/.exec(line);
    if (!sb) {
      // Slurm stops reading directives at the first command line.
      if (line !== '' && !line.startsWith('#')) break;
      continue;
    }
    const words = sb[1]!.replace(/\s+#.*$/, '').trim().split(/\s+/);
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!;
      let name: string;
      let value: string | undefined;
      let m = /^--([a-z-]+)(?:=(.*))?$/.exec(word);
      if (m) {
        name = m[1]!;
        value = m[2];
      } else if ((m = /^-([A-Za-z])(.*)$/.exec(word))) {
        name = SHORT[m[1]!] ?? `-${m[1]}`;
        value = m[2] || undefined;
      } else {
        issues.push({ path: at, message: `cannot read "${word}" as a directive` });
        continue;
      }
      if (value === undefined && !TAKES_NO_VALUE.has(name)) value = words[++w];
      if (IGNORED.has(name)) {
        ignored.push(`${at}: --${name}${value !== undefined ? `=${value}` : ''} (no meaning on a grid of single machines; ignored)`);
        continue;
      }
      const known = ['job-name', 'cpus-per-task', 'mem', 'mem-per-cpu', 'gres', 'gpus', 'time', 'array', 'output', 'error', 'ntasks', 'nodes', 'ntasks-per-node'];
      if (!known.includes(name)) {
        issues.push({ path: at, message: `#SBATCH ${name.startsWith('-') ? name : `--${name}`} is not supported by DSG; remove it or ask for it (supported: ${known.map((k) => `--${k}`).join(', ')})` });
        continue;
      }
      if (value === undefined || value === '') {
        issues.push({ path: at, message: `--${name} needs a value` });
        continue;
      }
      opts.set(name, { value, line: i + 1 });
    }
  }
  const get = (k: string): string | undefined => opts.get(k)?.value;
  const where = (k: string): string => `${fileName}:${opts.get(k)?.line ?? '?'}`;
  for (const k of ['ntasks', 'nodes', 'ntasks-per-node']) {
    const v = get(k);
    if (v !== undefined && !/^1(-1)?$/.test(v))
      issues.push({ path: where(k), message: `--${k}=${v}: a DSG task runs on one machine as one process tree (MPI across nodes is not supported); use --cpus-per-task for threads, or --array for many independent tasks` });
  }
  const cpus = get('cpus-per-task') === undefined ? 1 : Number(get('cpus-per-task'));
  if (!Number.isInteger(cpus) || cpus < 1) issues.push({ path: where('cpus-per-task'), message: `--cpus-per-task: expected a whole number, got "${get('cpus-per-task')}"` });
  let memory: string | null = null;
  if (get('mem') !== undefined) {
    memory = slurmMemory(get('mem')!);
    if (memory === null) issues.push({ path: where('mem'), message: `--mem: expected a size like 4G or 500M, got "${get('mem')}"` });
  } else if (get('mem-per-cpu') !== undefined) {
    const per = slurmMemory(get('mem-per-cpu')!);
    if (per === null) issues.push({ path: where('mem-per-cpu'), message: `--mem-per-cpu: expected a size like 2G, got "${get('mem-per-cpu')}"` });
    else memory = per.endsWith('Gi') ? `${Number(per.slice(0, -2)) * cpus}Gi` : `${Number(per.slice(0, -2)) * cpus}Mi`;
  }
  let gpus = 0;
  let gpuModel: string | null = null;
  const gres = get('gres');
  if (gres !== undefined) {
    const m = /^gpu(?::([A-Za-z0-9_.-]+))?(?::(\d+))?$/.exec(gres);
    if (!m) issues.push({ path: where('gres'), message: `--gres: only gpu[:type]:N is supported, got "${gres}"` });
    else {
      gpus = m[2] === undefined ? (m[1] !== undefined && /^\d+$/.test(m[1]) ? Number(m[1]) : 1) : Number(m[2]);
      gpuModel = m[1] !== undefined && !/^\d+$/.test(m[1]) ? m[1] : null;
    }
  }
  if (get('gpus') !== undefined) {
    const m = /^(?:([A-Za-z0-9_.-]+):)?(\d+)$/.exec(get('gpus')!);
    if (!m) issues.push({ path: where('gpus'), message: `--gpus: expected N or type:N, got "${get('gpus')}"` });
    else {
      gpus = Number(m[2]);
      gpuModel = m[1] ?? gpuModel;
    }
  }
  let timeoutSeconds: number | null = null;
  if (get('time') !== undefined) {
    timeoutSeconds = slurmTime(get('time')!);
    if (timeoutSeconds === null && !/^(UNLIMITED|INFINITE)$/.test(get('time')!)) issues.push({ path: where('time'), message: `--time: expected minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, got "${get('time')}"` });
  }
  let array: ReturnType<typeof parseArrayFlag> | null = null;
  if (get('array') !== undefined) {
    try {
      array = parseArrayFlag(get('array')!);
    } catch (e) {
      if (e instanceof ValidationError) issues.push(...e.issues.map((x) => ({ ...x, path: where('array') })));
      else throw e;
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);

  const name = (get('job-name') ?? basename(fileName).replace(/\.[^.]+$/, '')).replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'sbatch';
  const shebang = /^#!\s*(\S+)(?:\s+(.*))?$/.exec(lines[0] ?? '');
  const interpreter = shebang ? [shebang[1]!, ...(shebang[2] ? shebang[2].trim().split(/\s+/) : [])] : ['/bin/bash'];
  const script = basename(fileName);
  const count = array === null ? 1 : typeof array.array === 'number' ? array.array : array.array.length;
  const ids = array === null ? [0] : typeof array.array === 'number' ? [0, array.array - 1] : array.array;
  const out = get('output');
  const err = get('error');
  const redirect = [
    ...(out ? [`> "${filePattern(out)}"`] : []),
    ...(err ? [`2> "${filePattern(err)}"`] : out ? ['2>&1'] : []),
  ].join(' ');
  const prelude = [
    'export SLURM_JOB_ID="$DSG_JOB_ID" SLURM_JOBID="$DSG_JOB_ID" SLURM_ARRAY_JOB_ID="$DSG_JOB_ID"',
    `export SLURM_JOB_NAME=${shellQuote(name)} SLURM_CPUS_PER_TASK=${cpus} SLURM_NTASKS=1 SLURM_NNODES=1 SLURM_SUBMIT_DIR="$PWD"`,
    array !== null ? `export SLURM_ARRAY_TASK_ID="$DSG_ARRAY_VALUE" SLURM_ARRAY_TASK_COUNT=${count} SLURM_ARRAY_TASK_MIN=${Math.min(...ids)} SLURM_ARRAY_TASK_MAX=${Math.max(...ids)}` : '',
    memory ? `export SLURM_MEM_PER_NODE=${memory.endsWith('Gi') ? Number(memory.slice(0, -2)) * 1024 : Number(memory.slice(0, -2))}` : '',
    gpus > 0 ? `export SLURM_GPUS=${gpus}` : '',
    `exec ${interpreter.map(shellQuote).join(' ')} ${shellQuote(`./${script}`)} ${redirect}`.trim(),
  ].filter(Boolean).join('\n');
  const outFiles = [out, err].filter((x): x is string => Boolean(x)).map((p) => p.replace(/%(%|a|A|j|x|J|N|n|u)/g, (_, c: string) => (c === '%' ? '%' : '*')));
  const spec: Record<string, unknown> = {
    name,
    script: prelude,
    ...(array ? { array: array.array } : {}),
    ...(array?.parallelism != null ? { parallelism: array.parallelism } : {}),
    resources: {
      cpu: cpus,
      ...(memory ? { memory } : {}),
      ...(gpus > 0 ? (gpuModel ? { gpu: { count: gpus, model: gpuModel } } : { gpus }) : {}),
    },
    inputs: [script, ...inputs],
    ...(outputs.length + outFiles.length > 0 ? { outputs: [...outputs, ...outFiles.map((p) => ({ path: p, optional: true }))] } : {}),
    ...(timeoutSeconds !== null ? { timeout: `${timeoutSeconds}s` } : {}),
  };
  return { spec, ignored };
}
