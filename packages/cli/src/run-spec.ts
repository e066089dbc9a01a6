/**
 * `dsg run` flags → a job spec (pure; the spec is then validated by core like any other). Slurm users know
 * `sbatch --wrap "CMD"` and `--array=0-99%4`; this is that, with DSG's spec as the one source of truth: `--print`
 * shows the spec so it can be saved as a file and grown.
 */
import { ValidationError } from '@dsg/core/base';
import type { Issue } from '@dsg/core';

export interface RunFlags {
  readonly name?: string;
  readonly cpus?: string;
  readonly memory?: string;
  readonly gpus?: string;
  /** `--gpu-memory 8Gi`: exclusive: the least memory each GPU must have; with --gpu-shared: the GPU memory each task uses. */
  readonly gpuMemory?: string;
  /** `--gpu-model "RTX 4090|A100"`. */
  readonly gpuModel?: string;
  /** `--gpu-shared`: share GPUs with other tasks, packed by --gpu-memory. */
  readonly gpuShared?: boolean;
  readonly timeout?: string;
  readonly retries?: string;
  readonly array?: string;
  readonly parallelism?: string;
  readonly project?: string;
  readonly priority?: string;
  readonly env: readonly string[];
  readonly input: readonly string[];
  readonly output: readonly string[];
  readonly constraint: readonly string[];
  readonly wrap?: string;
}

/** Most values a `--array` list or range may expand to (the spec's own limit applies after). */
const MAX_ARRAY_VALUES = 100_000;

export interface ParsedArray {
  /** A task count (indexes 0…N-1) or the values each task sees as DSG_ARRAY_VALUE. */
  readonly array: number | number[];
  /** From a `%N` suffix. */
  readonly parallelism: number | null;
}

/**
 * `--array` as Slurm writes it, or a count: `10` → 10 tasks (DSG_TASK_INDEX 0…9); `1-10`, `0-99:10`, `1,3,5-7`
 * → those values (DSG_ARRAY_VALUE); a `%4` suffix caps how many run at once.
 */
export function parseArrayFlag(text: string): ParsedArray {
  const bad = (why: string): never => {
    throw new ValidationError([{ path: '--array', message: `${why}; expected a task count like 10, or indexes like 1-10, 0-99:10 or 1,3,5-7, optionally with %N (at most N at once); got "${text}"` }]);
  };
  const m = /^([^%]+)(?:%(\d+))?$/.exec(text.trim());
  if (!m) return bad('cannot read it');
  const parallelism = m[2] === undefined ? null : Number(m[2]);
  if (parallelism !== null && parallelism < 1) bad('%N must be at least 1');
  const body = m[1]!;
  if (/^\d+$/.test(body)) {
    const n = Number(body);
    if (n < 1) bad('a task count must be at least 1');
    return { array: n, parallelism };
  }
  const values: number[] = [];
  for (const part of body.split(',')) {
    const r = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part);
    if (!r) return bad(`"${part}" is not an index or a range`);
    const from = Number(r[1]);
    const to = r[2] === undefined ? from : Number(r[2]);
    const step = r[3] === undefined ? 1 : Number(r[3]);
    if (to < from) bad(`the range ${part} runs backwards`);
    if (step < 1) bad(`the step in ${part} must be at least 1`);
    for (let v = from; v <= to; v += step) {
      values.push(v);
      if (values.length > MAX_ARRAY_VALUES) bad(`more than ${MAX_ARRAY_VALUES} tasks`);
    }
  }
  return { array: values, parallelism };
}

function keyValues(list: readonly string[], flag: string, example: string, issues: Issue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of list) {
    const eq = v.indexOf('=');
    if (eq <= 0) issues.push({ path: `${flag} ${v}`, message: `expected NAME=VALUE, e.g. ${flag} ${example}` });
    else out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function number(text: string | undefined, flag: string, issues: Issue[], integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    issues.push({ path: flag, message: `expected ${integer ? 'a whole number' : 'a number'}, got "${text}"` });
    return undefined;
  }
  return n;
}

/** A job name from the program: `python3 sim.py` → "sim-py", `./run.sh` → "run-sh". */
export function nameFor(command: readonly string[], wrap: string | undefined): string {
  const interpreters = /^(python[\d.]*|node|bash|sh|zsh|Rscript|julia|perl|ruby|env)$/;
  const word = wrap !== undefined ? (wrap.trim().split(/\s+/)[0] ?? 'run') : (command.find((a) => !a.startsWith('-') && !interpreters.test(a.split('/').pop() ?? a)) ?? command[0] ?? 'run');
  const base = (word.split('/').pop() ?? word).replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[^A-Za-z0-9]+|[-_]+$/g, '').slice(0, 60);
  return base || 'run';
}

/**
 * The job spec for `dsg run [flags] -- CMD ARGS…` (or `--wrap "shell script"`). Throws a ValidationError naming
 * every bad flag; the spec itself is validated by core's compileJobSpec afterwards, like a file would be.
 */
export function runSpec(command: readonly string[], f: RunFlags): Record<string, unknown> {
  const issues: Issue[] = [];
  if (f.wrap !== undefined && command.length > 0)
    issues.push({ path: '--wrap', message: 'give either --wrap "SCRIPT" or a command after --, not both' });
  if (f.wrap === undefined && command.length === 0)
    issues.push({ path: '<command>', message: 'nothing to run: put the command after --, e.g. `dsg run --cpus 2 -- python3 sim.py`, or a shell script with --wrap "…"' });
  const env = keyValues(f.env, '--env', 'SEED=42', issues);
  const constraints = keyValues(f.constraint, '--constraint', 'room=lab2', issues);
  const cpu = number(f.cpus, '--cpus', issues, false);
  const gpus = number(f.gpus, '--gpus', issues, true);
  const retries = number(f.retries, '--retries', issues, true);
  let parallelism = number(f.parallelism, '--parallelism', issues, true);
  let array: ParsedArray | null = null;
  if (f.array !== undefined) {
    try {
      array = parseArrayFlag(f.array);
    } catch (e) {
      if (e instanceof ValidationError) issues.push(...e.issues);
      else throw e;
    }
  }
  if (array?.parallelism != null) {
    if (parallelism !== undefined && parallelism !== array.parallelism) issues.push({ path: '--parallelism', message: `--array says %${array.parallelism} and --parallelism ${parallelism}: give one` });
    parallelism = array.parallelism;
  }
  const gpuConditions = f.gpuMemory !== undefined || f.gpuModel !== undefined || f.gpuShared === true;
  if (gpuConditions && gpus === 0) issues.push({ path: '--gpus', message: '--gpu-memory, --gpu-model and --gpu-shared describe GPUs: --gpus 0 asks for none' });
  if (f.gpuShared && f.gpuMemory === undefined) issues.push({ path: '--gpu-shared', message: 'a shared GPU needs --gpu-memory: the GPU memory each task uses (tasks are packed onto a GPU by it), e.g. --gpu-memory 8Gi' });
  if (issues.length > 0) throw new ValidationError(issues);

  const resources: Record<string, unknown> = {};
  if (cpu !== undefined) resources['cpu'] = cpu;
  if (f.memory !== undefined) resources['memory'] = f.memory;
  if (gpuConditions) {
    resources['gpu'] = {
      ...(gpus !== undefined ? { count: gpus } : {}), ...(f.gpuMemory !== undefined ? { memory: f.gpuMemory } : {}),
      ...(f.gpuModel !== undefined ? { model: f.gpuModel } : {}), ...(f.gpuShared ? { shared: true } : {}),
    };
  } else if (gpus !== undefined) resources['gpus'] = gpus;
  return {
    name: f.name ?? nameFor(command, f.wrap),
    ...(f.project !== undefined ? { project: f.project } : {}),
    ...(f.wrap !== undefined ? { script: f.wrap } : { command: [...command] }),
    ...(array ? { array: array.array } : {}),
    ...(parallelism !== undefined ? { parallelism } : {}),
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    ...(f.input.length > 0 ? { inputs: [...f.input] } : {}),
    ...(f.output.length > 0 ? { outputs: [...f.output] } : {}),
    ...(f.timeout !== undefined ? { timeout: f.timeout } : {}),
    ...(retries !== undefined ? { retries } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(f.priority !== undefined ? { priority: f.priority } : {}),
    ...(Object.keys(constraints).length > 0 ? { constraints } : {}),
  };
}
