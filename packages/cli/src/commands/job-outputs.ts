import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { DsgClient } from '@dsg/client';
import { ValidationError } from '@dsg/core/base';
import type { OutputV1 } from '@dsg/core';
import { clientFrom, info, print, printJson, type GlobalFlags } from '../context.js';
import { formatSize, plural, table } from '../format.js';
import { parseIndexFlag } from './parse-flags.js';

/** Where each output goes under DIR; refuses collisions (unless by task) and paths that leave DIR. */
export function planOutputs(outputs: readonly OutputV1[], dir: string, byTask: boolean): Array<{ output: OutputV1; dest: string }> {
  const root = resolve(dir);
  const seen = new Map<string, number>();
  return outputs.map((o) => {
    const dest = resolve(root, byTask ? join(`task-${o.taskIndex}`, o.path) : o.path);
    const rel = relative(root, dest);
    if (rel.startsWith(`..${sep}`) || rel === '..' || rel === '')
      throw new ValidationError([{ path: o.path, message: `output path of task ${o.taskIndex} would leave ${root}; refusing to write it` }]);
    const other = seen.get(dest);
    if (other !== undefined)
      throw new ValidationError([{ path: o.path, message: `tasks ${other} and ${o.taskIndex} both produced "${o.path}": pass --by-task to write DIR/task-<N>/<path>` }]);
    seen.set(dest, o.taskIndex);
    return { output: o, dest };
  });
}

export function registerOutputs(program: Command, globals: () => GlobalFlags): void {
  program
    .command('outputs')
    .description("list or download a job's outputs (the files its spec's `outputs` globs collected)")
    .argument('<id>', 'job id, or workflow id (wf_…: each stage\'s outputs under DIR/<stage>/, or as its publish: section says)')
    .option('--to <dir>', 'download into this directory, keeping each output\'s relative path')
    .option('-t, --task <n>', 'only this task')
    .option('--by-task', 'write DIR/task-<N>/<path> (needed when tasks produce the same path)')
    .option('--json', 'print JSON: { items: OutputV1[] }')
    .addHelpText('after', '\nExamples:\n  dsg outputs job_01jd…                  list\n  dsg outputs job_01jd… --to results/    download')
    .action(async (id: string, opts: { to?: string; task?: string; byTask?: boolean; json?: boolean }) => {
      const client = clientFrom(globals());
      if (id.startsWith('wf_')) return workflowOutputs(client, id, opts);
      let { items } = await client.listOutputs(id);
      if (opts.task !== undefined) {
        const t = parseIndexFlag(opts.task);
        items = items.filter((o) => o.taskIndex === t);
      }
      if (!opts.to) {
        if (opts.json) return printJson({ items });
        if (items.length === 0) return print('no outputs (does the spec declare `outputs:` globs, and have tasks finished?)');
        return print(table(['TASK', 'PATH', 'SIZE', 'SHA256'], items.map((o) => [String(o.taskIndex), o.path, formatSize(o.size), o.sha256.slice(0, 12)])));
      }
      const plan = planOutputs(items, opts.to, Boolean(opts.byTask));
      const total = items.reduce((s, o) => s + o.size, 0);
      let done = 0;
      let bytes = 0;
      const tty = Boolean(process.stderr.isTTY) && !opts.json;
      for (const { output, dest } of plan) {
        await mkdir(dirname(dest), { recursive: true });
        const res = await client.downloadOutput(id, output.taskIndex, output.path);
        const tmp = `${dest}.part`;
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp));
        await rename(tmp, dest);
        done++;
        bytes += output.size;
        if (tty) process.stderr.write(`\r${done}/${plural(plan.length, 'file')}, ${formatSize(bytes)}/${formatSize(total)}`);
      }
      if (tty) process.stderr.write('\n');
      if (opts.json) printJson({ items: plan.map((p) => ({ ...p.output, dest: p.dest })) });
      else info(`${plural(plan.length, 'file')} (${formatSize(total)}) written to ${resolve(opts.to)}`);
    });
}

/** A workflow's outputs: every stage's, under DIR/<stage>/ (or the stage's `publish:` directory). */
async function workflowOutputs(client: DsgClient, id: string, opts: { to?: string; byTask?: boolean; json?: boolean }): Promise<void> {
  const wf = await client.getWorkflow(id);
  const { items } = await client.listWorkflowOutputs(id);
  if (!opts.to) {
    if (opts.json) return printJson({ items });
    if (items.length === 0) return print('no outputs yet (stages declare them with outputs: globs; they appear as tasks succeed)');
    return print(table(['STAGE', 'TASK', 'PATH', 'SIZE', 'SHA256'], items.map((o) => [o.stage, String(o.taskIndex), o.path, formatSize(o.size), o.sha256.slice(0, 12)])));
  }
  const plan: Array<{ output: (typeof items)[number]; dest: string }> = [];
  for (const st of wf.stages) {
    const mine = items.filter((o) => o.stage === st.name);
    if (mine.length === 0) continue;
    const dir = join(opts.to, wf.publish[st.name] ?? st.name);
    for (const p of planOutputs(mine, dir, Boolean(opts.byTask))) plan.push({ output: p.output as (typeof items)[number], dest: p.dest });
  }
  const seen = new Map<string, string>();
  for (const p of plan) {
    const other = seen.get(p.dest);
    if (other) throw new ValidationError([{ path: p.output.path, message: `stages ${other} and ${p.output.stage} would both write ${p.dest}; change publish: or pass --by-task` }]);
    seen.set(p.dest, p.output.stage);
  }
  const total = plan.reduce((n, p) => n + p.output.size, 0);
  for (const { output, dest } of plan) {
    await mkdir(dirname(dest), { recursive: true });
    const res = await client.downloadOutput(output.jobId, output.taskIndex, output.path);
    const tmp = `${dest}.part`;
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp));
    await rename(tmp, dest);
  }
  if (opts.json) printJson({ items: plan.map((p) => ({ ...p.output, dest: p.dest })) });
  else info(`${plan.length} file${plan.length === 1 ? '' : 's'} (${formatSize(total)}) from ${wf.stages.length} stages written under ${resolve(opts.to)}`);
}
