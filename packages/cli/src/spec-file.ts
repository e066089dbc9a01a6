/**
 * Reading a spec file as `dsg submit` does: parse YAML or JSON (syntax errors with line:column), validate with
 * core's compileJobSpec (every issue with its path), then expand `inputs` relative to the spec's directory (files,
 * or directories recursively) and hash each file. Any problem is a ValidationError and nothing is uploaded.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { isSbatchScript, parseSbatch } from './sbatch.js';
import { parseDocument } from 'yaml';
import {
  compileJobSpec,
  compileWorkflowSpec,
  isWorkflowSpec,
  ValidationError,
  type CompiledJobSpec,
  type CompiledWorkflow,
  type InputFileV1,
  type Issue,
  type LocalInputSpec,
} from '@dsg/core';

export interface LoadedSpec {
  readonly file: string;
  readonly spec: Record<string, unknown>;
  /** The job, or for a workflow null (see `workflow`). */
  readonly compiled: CompiledJobSpec | null;
  readonly workflow: CompiledWorkflow | null;
  /** Parameter values given with --set. */
  readonly params: Readonly<Record<string, string>>;
  /** Said to the user at submit (an #SBATCH directive ignored, …). */
  readonly notes?: readonly string[];
}

export interface LocalInput extends InputFileV1 {
  /** Absolute path on this machine. */
  readonly source: string;
  readonly mode: number;
}

/** `--set NAME=VALUE` flags → a map; a flag without `=` is an error naming it. */
export function parseSetFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const issues: Issue[] = [];
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) issues.push({ path: `--set ${v}`, message: 'expected NAME=VALUE, e.g. --set SAMPLES=1000000' });
    else out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return out;
}

/** The most a spec may be, read from a file or standard input (a spec is small; inputs are separate files). */
export const MAX_SPEC_BYTES = 4 * 1024 * 1024;

export async function loadSpecFile(file: string, params: Readonly<Record<string, string>> = {}): Promise<LoadedSpec> {
  const abs = resolve(file);
  let text: string;
  try {
    const st = await stat(abs);
    if (st.size > MAX_SPEC_BYTES) throw new ValidationError([{ path: '', message: `${abs} is ${st.size} bytes; a spec may be at most ${MAX_SPEC_BYTES} (put data in inputs:, not in the spec)` }]);
    text = await readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ValidationError([{ path: '', message: code === 'ENOENT' ? `no such file: ${abs}` : `cannot read ${abs}: ${code ?? String(e)}` }]);
  }
  if (isSbatchScript(abs, text)) {
    // A Slurm batch script (sbatch.ts): its directives make the spec; the script runs as the task.
    const { spec, ignored } = parseSbatch(text, basename(abs));
    return { ...loadSpecObject(spec, abs, params), notes: ignored };
  }
  return loadSpecObject(parseSpecText(text, extname(abs).toLowerCase(), file), abs, params);
}

/**
 * A spec from standard input (`dsg submit -`): YAML or JSON (JSON is YAML). Its inputs are relative to the current
 * directory. Refused at once when standard input is a terminal (nothing would arrive).
 */
export async function loadSpecStdin(params: Readonly<Record<string, string>> = {}, stdin: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<LoadedSpec> {
  if (stdin.isTTY)
    throw new ValidationError([{ path: '<file>', message: '"-" reads the spec from standard input, which is a terminal here: pipe one in, e.g. `cat job.yaml | dsg submit -`' }]);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    size += b.length;
    if (size > MAX_SPEC_BYTES) throw new ValidationError([{ path: '<stdin>', message: `the spec on standard input is over ${MAX_SPEC_BYTES} bytes; put data in inputs:, not in the spec` }]);
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new ValidationError([{ path: '<stdin>', message: 'standard input was empty: expected a job or workflow spec' }]);
  return loadSpecObject(parseSpecText(text, '.yaml', '<stdin>'), join(process.cwd(), '<stdin>'), params);
}

/** Validate a parsed spec; `file` is where it came from (its folder is what inputs are relative to). */
export function loadSpecObject(spec: Record<string, unknown>, file: string, params: Readonly<Record<string, string>> = {}): LoadedSpec {
  if (isWorkflowSpec(spec)) return { file, spec, compiled: null, workflow: compileWorkflowSpec(spec, { params }), params };
  return { file, spec, compiled: compileJobSpec(spec, { params }), workflow: null, params };
}

export function parseSpecText(text: string, ext: string, shownName: string): Record<string, unknown> {
  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new ValidationError([{ path: '', message: `${shownName} is not valid JSON: ${(e as Error).message}` }]);
    }
  } else {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ValidationError(
        doc.errors.map((err) => {
          const pos = err.linePos?.[0];
          return { path: '', message: `${shownName}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML syntax error: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` };
        }),
      );
    }
    value = doc.toJS();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ValidationError([{ path: '', message: `${shownName} must hold a job spec mapping (name:, script: …)` }]);
  return value as Record<string, unknown>;
}

/** Expand and hash the spec's inputs (every stage's, for a workflow), relative to the spec's directory. */
export async function collectInputs(loaded: LoadedSpec): Promise<LocalInput[]> {
  const base = dirname(loaded.file);
  const issues: Issue[] = [];
  const out = new Map<string, LocalInput>();
  const lists: Array<{ prefix: string; inputs: readonly LocalInputSpec[] }> = loaded.workflow
    ? loaded.workflow.stages.map((s) => ({ prefix: `stages.${s.name}.`, inputs: s.job.inputs }))
    : [{ prefix: '', inputs: loaded.compiled!.inputs }];
  for (const { prefix, inputs } of lists) {
    for (const [i, input] of inputs.entries()) {
      const abs = resolve(base, input.source);
      let st;
      try {
        st = await stat(abs);
      } catch {
        issues.push({ path: `${prefix}inputs[${i}]`, message: `"${input.source}" does not exist (looked for ${abs})` });
        continue;
      }
      // A path the spec names is the user's choice, even outside its folder (`../scripts/x.sh`). A *link* inside the
      // folder that leads out of it is not: it may point anywhere (a key, a data dir) without the spec saying so.
      const real = await realpath(abs);
      const realBase = await realpath(base);
      if (isInside(abs, base) && !isInside(real, realBase)) {
        issues.push({ path: `${prefix}inputs[${i}]`, message: `"${input.source}" is a link to ${real}, outside the spec's folder; if you mean to send it, name it in the spec itself (inputs: [${real}])` });
        continue;
      }
      let files: string[];
      if (st.isDirectory()) {
        const walked = await walk(abs, real);
        for (const bad of walked.refused) issues.push({ path: `${prefix}inputs[${i}]`, message: bad });
        files = walked.files;
      } else files = [abs];
      if (files.length === 0) issues.push({ path: `${prefix}inputs[${i}]`, message: `directory "${input.source}" is empty` });
      for (const f of files) {
        const rel = st.isDirectory() ? `${input.path.replace(/\/+$/, '')}/${relative(abs, f).split(sep).join('/')}` : input.path;
        const prev = out.get(rel);
        if (prev) {
          if (prev.source !== f) issues.push({ path: `${prefix}inputs[${i}]`, message: `"${input.source}" and ${prev.source} would both be placed at ${rel}; rename one` });
          continue;
        }
        const s = await stat(f);
        out.set(rel, { path: rel, source: f, size: s.size, mode: s.mode & 0o777, sha256: await sha256Of(f) });
      }
    }
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid inputs');
  return [...out.values()];
}

const isInside = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/**
 * Every file under an input directory, links included when they lead to a file inside it (its real path `root`);
 * a link that leads outside it, or nowhere, is refused with its path, never dropped silently.
 */
async function walk(dir: string, root: string): Promise<{ files: string[]; refused: string[] }> {
  const files: string[] = [];
  const refused: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = await walk(p, root);
      files.push(...sub.files);
      refused.push(...sub.refused);
    } else if (e.isFile()) files.push(p);
    else if (e.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(p);
      } catch {
        refused.push(`${p} is a link to nothing (broken): remove it or fix it`);
        continue;
      }
      if (!isInside(target, root)) refused.push(`${p} is a link to ${target}, outside the input directory; copy the file in, or name it as an input of its own`);
      else if ((await stat(target)).isFile()) files.push(p);
      else refused.push(`${p} is a link to a directory; links to directories are not followed (name the directory as an input)`);
    }
  }
  return { files: files.sort(), refused };
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}
