import { join } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { ValidationError } from '@dsg/core/base';
import { resolveGiveUpAfter } from '../config.js';
import { GIVE_UP_HELP, print, type GlobalFlags } from '../context.js';
import { runSpec, type RunFlags } from '../run-spec.js';
import { loadSpecObject } from '../spec-file.js';
import { submitLoaded } from './job-submit.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

export function registerRun(program: Command, globals: () => GlobalFlags): void {
  program
    .command('run')
    .description('run a command on the grid without writing a spec (like sbatch --wrap): dsg run [flags] -- CMD ARGS…')
    .argument('[command...]', 'the program and its arguments, after --')
    .option('--name <name>', 'job name (default: from the program, e.g. sim-py)')
    .option('-c, --cpus <n>', 'cores per task, e.g. 2 or 0.5 (default 1)')
    .option('-m, --memory <size>', 'memory per task, e.g. 4Gi (default 256Mi)')
    .option('--gpus <n>', 'GPUs per task (default 0; 1 with --gpu-memory, --gpu-model or --gpu-shared)')
    .option('--gpu-memory <size>', 'GPU memory: each GPU has at least this much; with --gpu-shared, what each task uses, e.g. 8Gi')
    .option('--gpu-model <models>', 'acceptable GPU models separated by |, e.g. "RTX 4090|A100"')
    .option('--gpu-shared', 'share GPUs with other tasks, packed by --gpu-memory (default: whole GPUs)')
    .option('-t, --timeout <duration>', 'wall-clock limit per attempt, e.g. 30m (default 1h)')
    .option('--retries <n>', 'runs again a task that fails by itself (default 0)')
    .option('-a, --array <spec>', 'many tasks: a count (10 → DSG_TASK_INDEX 0…9) or Slurm-style indexes (1-10, 0-99:10, 1,3,5-7 → DSG_ARRAY_VALUE), %N caps how many run at once')
    .option('--parallelism <n>', 'at most this many tasks at once')
    .option('-e, --env <NAME=VALUE>', 'environment variable for every task (repeatable)', collect, [] as string[])
    .option('-i, --input <path>', 'file or directory to send along, relative to here (repeatable)', collect, [] as string[])
    .option('-o, --output <glob>', 'files to bring back from each task, e.g. "out/*.csv" (repeatable)', collect, [] as string[])
    .option('--constraint <KEY=VALUE>', 'run only on nodes with this label or fact, e.g. room=lab2 or "memory=>= 16Gi" (repeatable)', collect, [] as string[])
    .option('--project <name>', 'the project it counts against (default "default")')
    .option('--priority <class>', 'urgent, high, normal or low (default normal)')
    .option('--wrap <script>', 'a shell script to run with /bin/sh -c instead of a command')
    .option('-w, --wait', 'wait for it to finish, with progress; exit 1 if a task failed')
    .option('--give-up-after <duration>', `with --wait: ${GIVE_UP_HELP}`)
    .option('--json', 'print the job as JSON (the final state with --wait)')
    .option('-q, --quiet', 'print only the job id')
    .option('--print', 'print the job spec this makes (YAML) and submit nothing: save it as a file to grow it')
    .addHelpText('after', `
Examples:
  dsg run --wait -- python3 -c "print('hello from the grid')"
  dsg run --cpus 2 --memory 4Gi -i sim.py -o "out/*" --wait -- python3 sim.py --seed 7
  dsg run --array 0-99%4 -i sim.py -- python3 sim.py        (sim.py reads DSG_ARRAY_VALUE from its environment)
  dsg run --array 20 --wrap 'echo task $DSG_TASK_INDEX > out.txt' -o out.txt   (--wrap: the shell expands $VARS)
  dsg run --print -- ./analyse.sh > analyse.yaml      then: dsg submit analyse.yaml

Each task runs in its own working directory on some node: send what it reads with -i and name what it writes
with -o (\`dsg outputs ID --to DIR\` fetches it). A command after -- runs without a shell; --wrap runs a shell script.`)
    .action(async (command: string[], f: RunFlags & { wait?: boolean; json?: boolean; quiet?: boolean; giveUpAfter?: string; print?: boolean }) => {
      if (f.giveUpAfter !== undefined && !f.wait) throw new ValidationError([{ path: '--give-up-after', message: 'only used with --wait' }]);
      if (f.wait) resolveGiveUpAfter(f.giveUpAfter);
      const spec = runSpec(command, f);
      // Validated like a spec file (every issue with its field), relative to the current directory for inputs.
      const loaded = loadSpecObject(spec, join(process.cwd(), '<dsg run>'));
      if (f.print) {
        print(stringify(spec).trimEnd());
        return;
      }
      await submitLoaded(loaded, f, globals());
    });
}
