/**
 * `dsg snakemake submit|status|cancel|profile`: Snakemake 7's `--cluster`, `--cluster-status` and
 * `--cluster-cancel` commands, and a profile that wires them up (`snakemake --profile dsg`).
 *
 * Snakemake calls `submit JOBSCRIPT` once per job and reads the job id from the first line of its output; it then
 * calls `status ID` every few seconds until it prints `success` or `failed` (anything else, or `running`, means
 * wait). `status` downloads the job's outputs into the working directory *before* it says `success`, so Snakemake
 * (which assumes a shared file system) finds them where it looks. How a jobscript becomes a job: ../snakemake.ts.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { DsgError, NotFoundError, ValidationError } from '@dsg/core/base';
import type { JobV1 } from '@dsg/core';
import { resolveGiveUpAfter, snakemakeProfileDir } from '../config.js';
import { clientFrom, info, print, type GlobalFlags } from '../context.js';
import { isUnreachable } from '../reconnect.js';
import { CODE_FOLDERS, MAX_JOBSCRIPT_BYTES, parseJobscript, snakemakeJobSpec } from '../snakemake.js';
import { planOutputs } from './job-outputs.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

interface PlacementFlags {
  send: string[];
  network?: boolean;
  constraint: string[];
  project?: string;
  priority?: string;
}

function constraintsOf(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of list) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new ValidationError([{ path: `--constraint ${v}`, message: 'expected KEY=VALUE, e.g. --constraint software.snakemake=7' }]);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** Where `status` keeps what it must remember between calls (when the coordinator first went unreachable). */
const stateDir = (workdir: string): string => join(workdir, '.snakemake', 'dsg');

export function registerSnakemake(program: Command, globals: () => GlobalFlags): void {
  const smk = program
    .command('snakemake')
    .description('run Snakemake workflows on the grid: the --cluster / --cluster-status / --cluster-cancel commands and a profile')
    .addHelpText('after', `
Examples (Snakemake 7, e.g. Debian's 7.21):
  dsg snakemake profile                 writes the "dsg" profile (~/.config/snakemake/dsg/config.yaml)
  snakemake --profile dsg               run the workflow from its directory: every job runs on the grid

Each job runs on some node in its own working directory, which shares nothing with this machine: DSG sends the
job's input files, the Snakefile, config files and the rules/, scripts/, envs/, schemas/ folders next to the
Snakefile (anything else with --send), and brings its output and log files back here when it succeeds. Nodes
need Snakemake installed (and whatever the rules run).`);

  smk
    .command('submit')
    .description('submit one Snakemake jobscript as a grid job and print its id (the --cluster command)')
    .argument('<jobscript>', 'the jobscript Snakemake passes')
    .option('--send <path>', 'also send this file or folder, relative to the working directory (repeatable)', collect, [] as string[])
    .option('--constraint <KEY=VALUE>', 'run only on nodes with this label or fact (repeatable), e.g. software.snakemake=7', collect, [] as string[])
    .option('--project <name>', 'the project the jobs count against (default "default")')
    .option('--priority <class>', 'urgent, high, normal or low (default normal)')
    .option('--network', 'the jobs need network access (conda:, wrapper:, downloads); default none on a sandboxed node')
    .action(async (file: string, f: PlacementFlags) => {
      const abs = resolve(file);
      let text: string;
      try {
        const st = await stat(abs);
        if (st.size > MAX_JOBSCRIPT_BYTES) throw new ValidationError([{ path: abs, message: `is ${st.size} bytes: not a Snakemake jobscript (they are a few KiB)` }]);
        text = await readFile(abs, 'utf8');
      } catch (e) {
        if (e instanceof ValidationError) throw e;
        throw new ValidationError([{ path: abs, message: `cannot read the jobscript (${(e as NodeJS.ErrnoException).code ?? String(e)})` }]);
      }
      const js = parseJobscript(text, abs);
      const workdir = js.workdir ?? process.cwd();
      if (!existsSync(workdir)) throw new ValidationError([{ path: abs, message: `the jobscript runs in ${workdir}, which does not exist here: submit from the machine that runs snakemake` }]);
      const sfDir = js.snakefile === null ? workdir : dirname(resolve(workdir, js.snakefile));
      const codeFolders: string[] = [];
      for (const d of CODE_FOLDERS) if (existsSync(join(sfDir, d))) codeFolders.push(d);
      const spec = snakemakeJobSpec(js, {
        workdir, send: f.send, codeFolders, constraints: constraintsOf(f.constraint), network: Boolean(f.network),
        ...(f.project !== undefined ? { project: f.project } : {}), ...(f.priority !== undefined ? { priority: f.priority } : {}),
      });
      // Validated like a spec file whose folder is the working directory: inputs are relative to it. Loaded here
      // only: `status`, which Snakemake runs for every job every few seconds, needs none of the submit path.
      const [{ loadSpecObject }, { submitLoaded }] = await Promise.all([import('../spec-file.js'), import('./job-submit.js')]);
      await submitLoaded(loadSpecObject(spec, join(workdir, '<snakemake>')), { quiet: true }, globals());
    });

  smk
    .command('status')
    .description('print success, running or failed for a job (the --cluster-status command); on success its outputs are downloaded here first')
    .argument('<id>', 'the job id submit printed')
    .action(async (id: string) => {
      print(await snakemakeStatus(id, process.cwd(), globals()));
    });

  smk
    .command('cancel')
    .description('cancel jobs (the --cluster-cancel command); finished ones are left as they are')
    .argument('<ids...>', 'job ids')
    .action(async (ids: string[]) => {
      const client = clientFrom(globals());
      for (const id of ids) {
        try {
          await client.cancelJob(id);
        } catch (e) {
          if (e instanceof DsgError && (e.code === 'conflict' || e.code === 'not_found')) continue;
          throw e;
        }
      }
    });

  smk
    .command('profile')
    .description('write a Snakemake profile that runs every job on this grid (use: snakemake --profile dsg)')
    .argument('[dir]', 'where to write config.yaml (default ~/.config/snakemake/dsg, found by `--profile dsg`)')
    .option('--jobs <n>', 'at most this many jobs submitted at once (default 100)', '100')
    .option('--send <path>', 'also send this file or folder with every job (repeatable)', collect, [] as string[])
    .option('--constraint <KEY=VALUE>', 'run the jobs only on nodes with this label or fact (repeatable)', collect, [] as string[])
    .option('--project <name>', 'the project the jobs count against')
    .option('--priority <class>', 'urgent, high, normal or low')
    .option('--network', 'the jobs need network access (conda:, wrapper:, downloads)')
    .action(async (dir: string | undefined, f: PlacementFlags & { jobs: string }) => {
      const jobs = Number(f.jobs);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 100_000) throw new ValidationError([{ path: '--jobs', message: `expected a whole number from 1 to 100000, got "${f.jobs}"` }]);
      constraintsOf(f.constraint);
      const target = resolve(dir ?? snakemakeProfileDir());
      const file = join(target, 'config.yaml');
      if (existsSync(file) && !(await readFile(file, 'utf8')).startsWith(PROFILE_HEADER))
        throw new ValidationError([{ path: file, message: 'exists and was not written by dsg: move it away or give another directory' }]);
      await mkdir(target, { recursive: true });
      await writeFile(file, profileYaml(f, jobs));
      info(`wrote ${file}`);
      info(dir === undefined ? 'run a workflow on the grid: snakemake --profile dsg' : `run a workflow on the grid: snakemake --profile ${target}`);
    });
}

const PROFILE_HEADER = '# Snakemake profile written by `dsg snakemake profile`';

/** Shell-quote for the commands Snakemake runs; `{` and `}` would be read by Snakemake's own formatting. */
function word(s: string): string {
  if (/[{}]/.test(s)) throw new ValidationError([{ path: s, message: 'has { or }, which Snakemake would read as a placeholder in the cluster command; use another path' }]);
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function profileYaml(f: PlacementFlags, jobs: number): string {
  // This very dsg (its Node and script), by absolute path: works whether or not `dsg` is on the PATH.
  const dsg = `${word(process.execPath)} ${word(process.argv[1]!)}`;
  const placement = [
    ...f.send.map((s) => `--send ${word(s)}`), ...f.constraint.map((c) => `--constraint ${word(c)}`),
    ...(f.network ? ['--network'] : []), ...(f.project !== undefined ? [`--project ${word(f.project)}`] : []), ...(f.priority !== undefined ? [`--priority ${word(f.priority)}`] : []),
  ].join(' ');
  const yamlString = (s: string): string => JSON.stringify(s);
  return [
    `${PROFILE_HEADER}. Use: snakemake --profile dsg`,
    '# (or --profile DIR). Each job runs on the grid; its outputs come back here when it succeeds.',
    '# The grid and token are the dsg CLI\'s: DSG_COORDINATOR / DSG_TOKEN, or ~/.config/dsg/config.json.',
    `cluster: ${yamlString(`${dsg} snakemake submit${placement ? ` ${placement}` : ''}`)}`,
    `cluster-status: ${yamlString(`${dsg} snakemake status`)}`,
    `cluster-cancel: ${yamlString(`${dsg} snakemake cancel`)}`,
    `jobs: ${jobs}`,
    '# status downloads the outputs before it says success: no file-system latency to wait for',
    'latency-wait: 5',
    'max-status-checks-per-second: 10',
    'max-jobs-per-second: 10',
    '',
  ].join('\n');
}

/** The file that remembers since when the coordinator has been unreachable for this job's status checks. */
const unreachableFile = (id: string, workdir: string): string => join(stateDir(workdir), `${id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100)}.unreachable`);

/** The coordinator did not answer: `running` until it has been unreachable for the give-up time, then `failed`. */
async function unreachableVerdict(id: string, workdir: string, e: DsgError): Promise<'running' | 'failed'> {
  const file = unreachableFile(id, workdir);
  let since = Date.now();
  try {
    since = Number(await readFile(file, 'utf8')) || since;
  } catch {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, String(since));
  }
  const g = resolveGiveUpAfter(undefined);
  const waited = Date.now() - since;
  if (waited >= g.ms) {
    info(`dsg: the coordinator has been unreachable for ${Math.round(waited / 1000)} s (give-up time ${Math.round(g.ms / 1000)} s, ${g.source}): reporting job ${id} as failed. ${e.message}`);
    return 'failed';
  }
  info(`dsg: cannot reach the coordinator (${e.message}); reporting job ${id} as running and trying again at the next check`);
  return 'running';
}

/**
 * `success`, `running` or `failed` for a job. On success its outputs are written into `workdir` first (each via a
 * `.part` file, renamed when complete); on failure stderr says why and how to see the task's log.
 */
export async function snakemakeStatus(id: string, workdir: string, flags: GlobalFlags): Promise<'success' | 'running' | 'failed'> {
  const client = clientFrom(flags);
  let job: JobV1;
  try {
    job = await client.getJob(id);
  } catch (e) {
    if (isUnreachable(e)) return unreachableVerdict(id, workdir, e);
    if (e instanceof NotFoundError || (e instanceof DsgError && e.code === 'not_found')) {
      info(`dsg: job ${id} is not on this grid (removed by garbage collection, or submitted to another grid): reporting it as failed`);
      return 'failed';
    }
    throw e;
  }
  await rm(unreachableFile(id, workdir), { force: true });
  switch (job.state) {
    case 'waiting':
    case 'queued':
    case 'running':
      return 'running';
    case 'succeeded': {
      // Snakemake runs this in the workflow's directory, which always holds its .snakemake/ folder; anywhere else
      // (a status check by hand) the outputs would land in the wrong place.
      if (!existsSync(join(workdir, '.snakemake')))
        throw new ValidationError([{ path: workdir, message: `job ${id} succeeded, but this is not a Snakemake working directory (no .snakemake/ here): its outputs are written where status runs, so run it from the workflow's directory (Snakemake does), or fetch them with dsg outputs ${id} --to DIR` }]);
      const { items } = await client.listOutputs(id);
      for (const { output, dest } of planOutputs(items, workdir, false)) {
        await mkdir(dirname(dest), { recursive: true });
        const res = await client.downloadOutput(id, output.taskIndex, output.path);
        const tmp = `${dest}.part`;
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp));
        await rename(tmp, dest);
      }
      return 'success';
    }
    case 'failed':
    case 'skipped':
    case 'cancelled': {
      let why: string = job.state;
      try {
        const [task] = (await client.listTasks(id, { limit: 1 })).items;
        if (task?.failure) why = task.failure.message;
        else if (task?.exitCode != null) why = `exit code ${task.exitCode}`;
      } catch {
        /* the reason is a courtesy; the verdict stands */
      }
      info(`dsg: job ${id} (${job.name}) ${job.state}: ${why}. Its output: dsg logs ${id}`);
      return 'failed';
    }
  }
}
