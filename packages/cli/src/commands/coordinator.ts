import type { Command } from 'commander';
import { info } from '../context.js';
import { bold, cyan, green } from '../format.js';
import { addServeFlags, coordinatorOptions, type ServeFlags } from './serve-flags.js';
import { joinCommand, lanAddress, tlsLines } from './up.js';

export function registerCoordinator(program: Command): void {
  addServeFlags(program.command('coordinator').description('run only the coordinator (API, dashboard, agent endpoint); agents join from other machines'), 'info')
    .addHelpText('after', '\nExample:\n  dsg coordinator --data-dir /var/lib/dsg --port 7070')
    .action(async (flags: ServeFlags) => {
      const opts = coordinatorOptions(flags, 'info');
      const { startCoordinator } = await import('@dsg/coordinator'); // loaded only for this command
      const coord = await startCoordinator(opts);
      const host = opts.host === '0.0.0.0' || !opts.host ? (lanAddress() ?? '127.0.0.1') : opts.host;
      info(`${green('coordinator up')} at ${bold(coord.url)} (credentials: ${coord.credentialsFile})`);
      for (const line of tlsLines(coord)) info(line);
      info(`join a machine: ${cyan(joinCommand(coord, host))}`);
      const stop = async (): Promise<void> => {
        await coord.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
