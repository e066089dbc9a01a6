import type { Command } from 'commander';
import { TASK_STATES, formatSize } from '@dsg/core/base';
import type { JobV1, TaskState } from '@dsg/core';
import { clientFrom, print, printJson, type GlobalFlags } from '../context.js';
import { ago, bold, colorState, dim, plural, red, table, taskValue, yellow } from '../format.js';
import { loadNodeNamer } from '../node-names.js';
import { parseIndexFlag, parseState } from './parse-flags.js';

/** "1 core, 512Mi memory, 1 GPU per task". */
export function describeResources(r: JobV1['resources'], g?: JobV1['gpu']): string {
  const gpu = g?.shared
    ? `, ${plural(g.count, 'shared GPU')} (${formatSize(g.memoryBytes ?? 0)} GPU memory each${g.models ? `, ${g.models.join(' or ')}` : ''})`
    : r.gpus ? `, ${plural(r.gpus, 'GPU')}${g && (g.memoryBytes !== null || g.models) ? ` (${[g.memoryBytes !== null ? `${formatSize(g.memoryBytes)}+` : '', g.models?.join(' or ') ?? ''].filter(Boolean).join(', ')})` : ''}` : '';
  return `${plural(r.cpu, 'core')}, ${formatSize(r.memoryBytes)} memory${gpu} per task`;
}

export function registerJobShow(program: Command, globals: () => GlobalFlags): void {
  const jobCmd = program
    .command('job')
    .description('show one job: state, progress, resources, failed tasks')
    .argument('<id>', 'job id')
    .option('--json', 'print the JobV1 as JSON')
    .addHelpText('after', '\nExamples:\n  dsg job job_01jd…\n  dsg job job_01jd… --json | jq .counts\n  dsg job explain job_01jd…       why its tasks wait, node by node\n\nAll tasks: dsg tasks ID · wait for it: dsg wait ID')
    .action(async (id: string, opts: { json?: boolean }) => {
      const client = clientFrom(globals());
      const job = await client.getJob(id);
      if (opts.json) return printJson(job);
      const c = job.counts;
      print(`${bold(job.name)} ${dim(job.id)}`);
      print(`state      ${colorState(job.state)}${job.cancelRequested && job.state !== 'cancelled' ? yellow(' (cancelling)') : ''}`);
      print(`tasks      ${job.taskCount}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.running + c.assigned} running, ${c.queued} queued, ${c.cancelled} cancelled`);
      print(`resources  ${describeResources(job.resources, job.gpu)}`);
      print(`submitted  ${ago(job.createdAt)}${job.submittedBy ? ` by ${job.submittedBy.name} (${job.submittedBy.role}${job.submittedBy.role === 'admin' ? ', the operator' : ''})` : ''}${job.finishedAt ? `, finished ${ago(job.finishedAt)}` : ''}`);
      print(`project    ${job.project}`);
      if (job.waiting && !job.waiting.never) print(`waiting    ${job.waiting.reason}`);
      for (const w of job.warnings) print(yellow(`warning    ${w}`));
      if (c.running + c.assigned > 0 && (job.resources.gpus > 0 || job.gpu)) {
        // Which GPU devices its running tasks hold (the first 10): the scheduler chose them, the agent hands them over.
        const active = [...(await client.listTasks(id, { state: 'running', limit: 10 })).items, ...(await client.listTasks(id, { state: 'assigned', limit: 10 })).items].slice(0, 10);
        const nodeName = await loadNodeNamer(client);
        const rows: string[][] = [];
        for (const t of active) {
          const a = (await client.listAttempts(id, t.index)).items.at(-1);
          rows.push([String(t.index), nodeName(t.nodeId), a?.gpuDevices ? a.gpuDevices.map((g) => (g.memoryBytes === null ? `${g.index}` : `${g.index} (${formatSize(g.memoryBytes)} shared)`)).join(', ') : '?']);
        }
        print(`\nGPU devices of running tasks${c.running + c.assigned > active.length ? ` (first ${active.length})` : ''}:`);
        print(table(['TASK', 'NODE', 'GPUS'], rows));
      }
      if (c.failed > 0) {
        const failed = (await client.listTasks(id, { state: 'failed', limit: 10 })).items;
        const nodeName = await loadNodeNamer(client);
        print(`\n${red('failed tasks')}${c.failed > failed.length ? ` (first ${failed.length} of ${c.failed})` : ''}:`);
        print(table(['TASK', 'VALUE', 'ATTEMPTS', 'NODE', 'WHY'], failed.map((t) => [String(t.index), taskValue(t), String(t.attempts), nodeName(t.nodeId), t.failure?.message ?? ''])));
        print(dim(`\nlogs: dsg logs ${id} --task ${failed[0]?.index ?? 0}`));
      }
    });

  program
    .command('tasks')
    .description('list the tasks of a job: value, state, attempts, exit code, node')
    .argument('<id>', 'job id')
    .option('--state <state>', `only tasks in this state (${TASK_STATES.join(', ')})`)
    .option('--json', 'print JSON: { items: TaskV1[] } (nodeId as in the API)')
    .addHelpText('after', '\nVALUE is what the task sees as DSG_ARRAY_VALUE (its index for `array: N`).\n\nExamples:\n  dsg tasks job_01jd…\n  dsg tasks job_01jd… --state failed\n  dsg tasks job_01jd… --json | jq \'.items[] | select(.exitCode != 0)\'')
    .action(async (id: string, opts: { state?: string; json?: boolean }) => {
      const client = clientFrom(globals());
      const state = opts.state === undefined ? undefined : parseState<TaskState>(opts.state, TASK_STATES, '--state');
      const items = await client.allTasks(id, state ? { state } : {});
      if (opts.json) return printJson({ items });
      if (items.length === 0) return print(state ? `no ${state} tasks in ${id} (\`dsg job ${id}\` shows its counts)` : `${id} has no tasks`);
      const nodeName = await loadNodeNamer(client);
      print(table(['TASK', 'VALUE', 'STATE', 'ATTEMPTS', 'EXIT', 'NODE', 'WHY'], items.map((t) => [
        String(t.index), taskValue(t), colorState(t.state), String(t.attempts), t.exitCode === null ? '' : String(t.exitCode), nodeName(t.nodeId), t.failure?.message ?? '',
      ])));
    });
  registerJobExplain(jobCmd, globals);
}

/** `dsg job explain ID [--task N]`: why a job's tasks wait, filter by filter and node by node. */
export function registerJobExplain(jobCmd: Command, globals: () => GlobalFlags): void {
  jobCmd
    .command('explain')
    .description('why a job (or one task) is waiting: the scheduler\'s filters run now against every online node')
    .argument('<id>', 'job id')
    .option('-t, --task <n>', 'one task (default: the job)')
    .option('--json', 'print the JobExplainV1 as JSON')
    .addHelpText('after', '\nExamples:\n  dsg job explain job_01jd…\n  dsg job explain job_01jd… --task 7 --json | jq .filters')
    .action(async (id: string, opts: { task?: string; json?: boolean }) => {
      const x = await clientFrom(globals()).explainJob(id, opts.task === undefined ? undefined : parseIndexFlag(opts.task));
      // `dsg job explain ID --json`: commander hands --json to `job`, which declares it too.
      if (opts.json || jobCmd.opts<{ json?: boolean }>().json) return printJson(x);
      print(`${bold(x.jobId)}${x.task ? ` task ${x.task.index}` : ''}: ${x.verdict.replace('_', ' ')}`);
      print(x.summary);
      if (x.queue) print(`queue      ${plural(x.queue.tasksAhead, 'task')} of ${plural(x.queue.jobsAhead, 'other job')} ahead of it`);
      if (x.startBy) print(`starts by  ${new Date(x.startBy).toLocaleString()} at the latest, when running tasks' timeouts end on a node that fits it (sooner if they end earlier; work ahead in the queue may go first)`);
      if (x.filters.length > 0)
        print(`filters    ${x.filters.map((f) => `${f.filter}: ${f.rejected} rejected${f.verdict === 'never' ? ' (never)' : ' (not now)'}`).join(' · ')}`);
      if (x.nodes.length > 0)
        print(table(['NODE', 'VERDICT', 'FILTER', 'WHY'], x.nodes.map((n) => [n.name, n.verdict === 'fits' ? 'fits now' : n.verdict === 'never' ? red('never') : yellow('not now'), n.filter ?? '-', n.message ?? ''])));
    });
}
