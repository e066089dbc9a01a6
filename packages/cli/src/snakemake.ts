/**
 * Snakemake's `--cluster` jobscripts as DSG jobs (`dsg snakemake submit JOBSCRIPT`). Pure: jobscript text → a job
 * spec; the command around it reads files and talks to the coordinator.
 *
 * Snakemake (7.x, `--cluster CMD`) writes one shell script per job and runs `CMD JOBSCRIPT`. The script's second
 * line is `# properties = {JSON}` (rule, input, output, log, threads, resources, jobid), and its body runs
 * Snakemake itself for that one job, after `cd`-ing into the workflow's working directory. Snakemake assumes that
 * directory is shared by every machine; a DSG node shares nothing with the submitter, so:
 *  - what the job reads is sent as the task's inputs, at the same paths relative to the working directory: the
 *    job's `input` files, the Snakefile, the config files named on the command line, and the `rules/`, `scripts/`,
 *    `envs/` and `schemas/` folders next to the Snakefile (Snakemake's recommended layout), plus `--send PATH`;
 *  - what it writes (`output`, with every file under it for a `directory()` output, and `log` files as optional
 *    outputs) is declared as the task's outputs, which
 *    `dsg snakemake status` downloads into the working directory once the job has succeeded, before it says
 *    `success`, so Snakemake finds them where it expects;
 *  - the body is rewritten to run in the task's own working directory: the absolute working directory becomes
 *    `$DSG_WORK_DIR` (and paths under it relative), and the Python that runs Snakemake is the submitter's when the
 *    node has it at the same path, otherwise `python3`; a node without Snakemake fails the task at once with a
 *    message saying so (exit 127), rather than a Python traceback.
 * Resources: `threads` → `resources.cpu`; `mem_mib`/`mem_mb`/`mem_gb` → `resources.memory`; `disk_mib`/`disk_mb`
 * → `resources.disk`; `runtime` (minutes; `time_min` in older profiles) → `timeout`; `gpu`/`gpus`/`nvidia_gpu` →
 * `resources.gpus`. Paths outside the working directory, `..` and glob characters in outputs are refused, naming
 * the path, because the grid could not put or collect them where Snakemake looks.
 */
import { posix } from 'node:path';
import { ValidationError } from '@dsg/core/base';
import type { Issue } from '@dsg/core';

/** A jobscript is a few kilobytes; a job with thousands of input files makes it bigger, but never this big. */
export const MAX_JOBSCRIPT_BYTES = 1024 * 1024;
/** Most input or output paths one Snakemake job may declare (each is a file the grid moves). */
export const MAX_JOB_PATHS = 10_000;
/** Folders next to the Snakefile that hold workflow code (Snakemake's documented layout); sent when they exist. */
export const CODE_FOLDERS = ['rules', 'scripts', 'envs', 'schemas'] as const;

export interface SnakemakeJobProperties {
  /** `single` or `group` (a group job runs several rules in one submission). */
  readonly type: string;
  /** The rule (for a group job, the group id). */
  readonly rule: string;
  readonly jobid: string;
  readonly input: readonly string[];
  readonly output: readonly string[];
  readonly log: readonly string[];
  readonly threads: number;
  readonly resources: Readonly<Record<string, number | string>>;
}

export interface Jobscript {
  readonly properties: SnakemakeJobProperties;
  /** The directory the body `cd`s into (Snakemake's working directory), or null when it names none. */
  readonly workdir: string | null;
  /** `--snakefile PATH` of the body, as written (absolute in Snakemake 7). */
  readonly snakefile: string | null;
  /** `--configfiles A B …` of the body. */
  readonly configfiles: readonly string[];
  /** The Python that runs Snakemake in the body (`/usr/bin/python3` in `/usr/bin/python3 -m snakemake …`). */
  readonly python: string | null;
  /** The script after the properties line. */
  readonly body: string;
}

const bad = (shownName: string, message: string): ValidationError =>
  new ValidationError([{ path: shownName, message }]);

/**
 * Read a Snakemake jobscript. Throws a ValidationError saying what is wrong and what to do (not a jobscript, no
 * or broken properties, wrong field types) rather than guessing.
 */
export function parseJobscript(text: string, shownName: string): Jobscript {
  if (Buffer.byteLength(text) > MAX_JOBSCRIPT_BYTES)
    throw bad(shownName, `is over ${MAX_JOBSCRIPT_BYTES} bytes: not a Snakemake jobscript (they are a few KiB)`);
  if (text.includes('\0')) throw bad(shownName, 'contains a NUL byte: not a Snakemake jobscript');
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^#\s*properties\s*=/.test(l));
  if (at < 0)
    throw bad(shownName, 'has no "# properties = {…}" line: `dsg snakemake submit` takes the jobscript Snakemake passes to its --cluster command (use the profile from `dsg snakemake profile`), not a Snakefile or a shell script');
  const json = lines[at]!.replace(/^#\s*properties\s*=\s*/, '');
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw bad(`${shownName}:${at + 1}`, `the properties are not valid JSON (${(e as Error).message}); was the jobscript cut short or edited?`);
  }
  const properties = readProperties(raw, `${shownName}:${at + 1}`);
  const body = lines.slice(at + 1).join('\n');
  const words = shellWords(body);
  const cd = words.indexOf('cd');
  const workdir = cd >= 0 && words[cd + 1] !== undefined && words[cd + 1]!.startsWith('/') ? stripSlash(words[cd + 1]!) : null;
  const sf = words.indexOf('--snakefile');
  const snakefile = sf >= 0 ? (words[sf + 1] ?? null) : null;
  const configfiles: string[] = [];
  const cf = words.findIndex((w) => w === '--configfiles' || w === '--configfile');
  if (cf >= 0) for (let i = cf + 1; i < words.length && !words[i]!.startsWith('-') && words[i] !== '&&'; i++) configfiles.push(words[i]!);
  const m = words.findIndex((w, i) => w === '-m' && words[i + 1] === 'snakemake');
  const python = m > 0 ? words[m - 1]! : null;
  return { properties, workdir, snakefile, configfiles, python, body };
}

function stripSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

function readProperties(raw: unknown, where: string): SnakemakeJobProperties {
  const issues: Issue[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ValidationError([{ path: where, message: 'the properties must be a JSON object ({"rule": …, "input": […], …})' }]);
  const o = raw as Record<string, unknown>;
  const type = typeof o['type'] === 'string' ? o['type'] : 'single';
  if (type !== 'single' && type !== 'group') issues.push({ path: `${where} type`, message: `expected "single" or "group", got ${JSON.stringify(o['type'])}` });
  const ruleField = type === 'group' ? 'groupid' : 'rule';
  const rule = o[ruleField] ?? o['rule'];
  if (typeof rule !== 'string' || rule === '') issues.push({ path: `${where} ${ruleField}`, message: 'expected the rule name as a string' });
  const jobid = o['jobid'];
  if (!(typeof jobid === 'number' || (typeof jobid === 'string' && jobid !== ''))) issues.push({ path: `${where} jobid`, message: 'expected a job number or id' });
  const list = (field: string): string[] => {
    const v = o[field];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) {
      issues.push({ path: `${where} ${field}`, message: 'expected a list of file paths' });
      return [];
    }
    if (v.length > MAX_JOB_PATHS) {
      issues.push({ path: `${where} ${field}`, message: `${v.length} paths; one job may have at most ${MAX_JOB_PATHS} (group the files in a directory() output)` });
      return [];
    }
    return v as string[];
  };
  const input = list('input');
  const output = list('output');
  const log = list('log');
  const threads = o['threads'] ?? 1;
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1) issues.push({ path: `${where} threads`, message: `expected a whole number of threads, at least 1, got ${JSON.stringify(threads)}` });
  const res = o['resources'] ?? {};
  const resources: Record<string, number | string> = {};
  if (res === null || typeof res !== 'object' || Array.isArray(res)) issues.push({ path: `${where} resources`, message: 'expected an object of named resources' });
  else for (const [k, v] of Object.entries(res)) {
    if (typeof v === 'number' || typeof v === 'string') resources[k] = v;
    else issues.push({ path: `${where} resources.${k}`, message: `expected a number or a string, got ${JSON.stringify(v)}` });
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid Snakemake jobscript');
  return { type, rule: rule as string, jobid: String(jobid), input, output, log, threads: threads as number, resources };
}

/**
 * Split a shell command into words the way /bin/sh would for the plain forms Snakemake writes (single and double
 * quotes, backslash-newline continuations); enough to find `cd DIR`, `--snakefile F` and `--configfiles …`.
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '\n') { i++; continue; }
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      cur = (cur ?? '') + text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        s += text[j];
      }
      cur = (cur ?? '') + s;
      i = j;
    } else if (/\s/.test(c) || c === ';') {
      if (cur !== null) words.push(cur);
      cur = null;
    } else if (c === '#' && cur === null) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== null) words.push(cur);
  return words;
}

/**
 * `p` (absolute, or relative to `workdir`) as a normalised path relative to `workdir`, or an error message when
 * it lies outside it (the grid could not place it where Snakemake looks).
 */
export function relativeToWorkdir(p: string, workdir: string): { path: string } | { error: string } {
  const abs = posix.resolve(workdir, p);
  const rel = posix.relative(workdir, abs);
  if (rel === '') return { error: `"${p}" is the working directory itself` };
  if (rel === '..' || rel.startsWith('../') || posix.isAbsolute(rel))
    return { error: `"${p}" is outside the Snakemake working directory ${workdir}: a grid node has only what is sent to it, at paths relative to that directory; copy or move it under ${workdir} (a link that leads outside is refused too)` };
  return { path: rel };
}

export interface SnakemakeSpecOptions {
  /** The working directory on this machine (the jobscript's `cd`, else the current directory). */
  readonly workdir: string;
  /** Extra files or folders to send (`--send`), relative to the working directory. */
  readonly send: readonly string[];
  /** Folders of workflow code next to the Snakefile that exist here (relative paths; see CODE_FOLDERS). */
  readonly codeFolders: readonly string[];
  readonly constraints?: Readonly<Record<string, string>>;
  readonly project?: string;
  readonly priority?: string;
  /** The job needs network access (`network: true`: conda environments, wrappers, downloads). Default false. */
  readonly network?: boolean;
}

const GLOB_CHARS = /[*?[\]{}]/;
/** Job names: letters, digits, ".", "_", "-", starting with a letter or digit, at most 100. */
const jobName = (rule: string, jobid: string): string =>
  `smk-${rule}-${jobid}`.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100);

/** Snakemake resource values are numbers, or numeric strings when set with --set-resources. */
function numeric(v: number | string | undefined): number | null {
  if (v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return typeof v === 'string' && v.trim() === '' ? null : Number.isFinite(n) ? n : null;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The DSG job spec for one Snakemake job (see the module comment). Throws a ValidationError listing every path or
 * resource that cannot be honoured.
 */
export function snakemakeJobSpec(js: Jobscript, o: SnakemakeSpecOptions): Record<string, unknown> {
  const issues: Issue[] = [];
  const p = js.properties;
  const wd = o.workdir;
  const rel = (path: string, field: string): string | null => {
    const r = relativeToWorkdir(path, wd);
    if ('error' in r) {
      issues.push({ path: field, message: r.error });
      return null;
    }
    return r.path;
  };
  const inputs = new Set<string>();
  for (const i of p.input) {
    const r = rel(i, `input ${i}`);
    if (r !== null) inputs.add(r);
  }
  if (js.snakefile === null) issues.push({ path: 'jobscript', message: 'names no --snakefile: not a jobscript of Snakemake 7 --cluster mode' });
  else {
    const r = rel(js.snakefile, `--snakefile ${js.snakefile}`);
    if (r !== null) {
      inputs.add(r);
      const dir = posix.dirname(r);
      for (const f of o.codeFolders) inputs.add(dir === '.' ? f : `${dir}/${f}`);
    }
  }
  for (const c of js.configfiles) {
    const r = rel(c, `--configfiles ${c}`);
    if (r !== null) inputs.add(r);
  }
  for (const s of o.send) {
    const r = rel(s, `--send ${s}`);
    if (r !== null) inputs.add(r);
  }
  const outputs: Array<{ path: string; optional: true }> = [];
  const outPath = (path: string, field: string): string | null => {
    const r = rel(path, `${field} ${path}`);
    if (r === null) return null;
    if (GLOB_CHARS.test(r)) {
      issues.push({ path: `${field} ${path}`, message: 'has a glob character (* ? [ ] { }): the grid collects outputs by glob, so it could not collect exactly this file; rename it' });
      return null;
    }
    if (r.split('/').some((seg) => seg.startsWith('.'))) {
      issues.push({ path: `${field} ${path}`, message: 'is hidden (a path part starts with "."): the grid does not collect hidden files; rename it' });
      return null;
    }
    return r;
  };
  for (const out of p.output) {
    const r = outPath(out, 'output');
    // The jobscript does not say which outputs are directory() outputs, so each path is collected as a file and
    // as a folder (`PATH/**`, nothing for a file). Both are optional for the grid: Snakemake in the task already
    // fails the job when an output is missing, and the grid counts only files as a match.
    if (r !== null) outputs.push({ path: r, optional: true }, { path: `${r}/**`, optional: true });
  }
  for (const l of p.log) {
    const r = outPath(l, 'log');
    if (r !== null) outputs.push({ path: r, optional: true });
  }

  const resources: Record<string, unknown> = { cpu: p.threads };
  const res = p.resources;
  const num = (k: string): number | null => {
    const n = numeric(res[k]);
    if (res[k] !== undefined && (n === null || n < 0)) issues.push({ path: `resources.${k}`, message: `expected a number, at least 0, got ${JSON.stringify(res[k])}` });
    return n !== null && n >= 0 ? n : null;
  };
  const memMib = num('mem_mib');
  const memMb = num('mem_mb');
  const memGb = num('mem_gb');
  if (memMib !== null && memMib > 0) resources['memory'] = `${Math.ceil(memMib)}Mi`;
  else if (memMb !== null && memMb > 0) resources['memory'] = `${Math.ceil(memMb)}M`;
  else if (memGb !== null && memGb > 0) resources['memory'] = `${memGb}G`;
  const diskMib = num('disk_mib');
  const diskMb = num('disk_mb');
  if (diskMib !== null && diskMib > 0) resources['disk'] = `${Math.ceil(diskMib)}Mi`;
  else if (diskMb !== null && diskMb > 0) resources['disk'] = `${Math.ceil(diskMb)}M`;
  let gpus: number | null = null;
  for (const k of ['gpus', 'gpu', 'nvidia_gpu']) {
    const n = num(k);
    if (n === null) continue;
    if (!Number.isInteger(n)) issues.push({ path: `resources.${k}`, message: `expected a whole number of GPUs, got ${n}` });
    else gpus = Math.max(gpus ?? 0, n);
  }
  if (gpus !== null && gpus > 0) resources['gpus'] = gpus;
  const runtime = num('runtime') ?? num('time_min');
  if (issues.length > 0) throw new ValidationError(issues, `cannot run Snakemake job ${p.rule} (jobid ${p.jobid}) on the grid`);

  return {
    name: jobName(p.rule, p.jobid),
    script: taskScript(js, wd),
    resources,
    ...(runtime !== null && runtime > 0 ? { timeout: `${Math.ceil(runtime)}m` } : {}),
    inputs: [...inputs],
    ...(outputs.length > 0 ? { outputs } : {}),
    ...(o.constraints && Object.keys(o.constraints).length > 0 ? { constraints: o.constraints } : {}),
    ...(o.network ? { network: true } : {}),
    ...(o.project !== undefined ? { project: o.project } : {}),
    ...(o.priority !== undefined ? { priority: o.priority } : {}),
  };
}

/**
 * The shell script a task runs: checks that the node has Snakemake, then the jobscript's body with the submitter's
 * working directory replaced by the task's own (`$DSG_WORK_DIR`), so every path in it lands among the files the
 * grid placed there.
 */
export function taskScript(js: Jobscript, workdir: string): string {
  let body = js.body;
  // `cd '/abs/wd'` (quoted or not) → the task's working directory; other paths under it → relative paths.
  const q = shellQuote(workdir);
  body = body.split(`cd ${q} `).join('cd "$DSG_WORK_DIR" ').split(`cd ${workdir} `).join('cd "$DSG_WORK_DIR" ');
  body = body.split(`'${workdir}/`).join("'").split(` ${workdir}/`).join(' ');
  const py = js.python ?? 'python3';
  if (js.python !== null) {
    body = body.split(`${shellQuote(py)} -m snakemake`).join('"$DSG_SNAKEMAKE_PY" -m snakemake').split(`${py} -m snakemake`).join('"$DSG_SNAKEMAKE_PY" -m snakemake');
  }
  return [
    '# dsg: one Snakemake job, run in this task\'s working directory (see `dsg snakemake --help`).',
    `DSG_SNAKEMAKE_PY=${shellQuote(py)}`,
    '[ -x "$DSG_SNAKEMAKE_PY" ] || DSG_SNAKEMAKE_PY=python3',
    'if ! "$DSG_SNAKEMAKE_PY" -c "import snakemake" >/dev/null 2>&1; then',
    `  echo "dsg: Snakemake is not installed on node $(hostname) (tried $DSG_SNAKEMAKE_PY -m snakemake; the workflow was started with ${py.replace(/["$`\\]/g, '')}). Install it there (Debian: apt-get install snakemake), or send these jobs only to nodes that have it: start those agents with --label software.snakemake=7 and write the profile with dsg snakemake profile --constraint software.snakemake=7" >&2`,
    '  exit 127',
    'fi',
    // Snakemake writes caches under $HOME/.cache, which a sandboxed task cannot write: keep them in the task.
    'export XDG_CACHE_HOME="$DSG_WORK_DIR/.cache" HOME="${HOME:-$DSG_WORK_DIR}"',
    `mkdir -p ${js.body.match(/\.snakemake\/tmp\.[A-Za-z0-9_]+/)?.[0] ?? '.snakemake'}`,
    body.trim(),
    '',
  ].join('\n');
}
