/**
 * `dsg up`: a whole grid on this machine. The coordinator runs in this process; one agent runs as a child process
 * (its own event loop and core for spawning tasks), restarted with backoff if it dies, stopped on shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parseSize, ValidationError } from '@dsg/core/base';
// The coordinator (fastify, SQLite) is loaded only when this command runs, so client commands start fast.
import type { RunningCoordinator } from '@dsg/coordinator';
import { processEnv, writeClientConfig } from '../config.js';
import { info } from '../context.js';
import { bold, cyan, dim, green } from '../format.js';
import { parsePositiveNumber } from './parse-flags.js';
import { addServeFlags, coordinatorOptions, type ServeFlags } from './serve-flags.js';

/**
 * The `dsg` launcher this process was started with (bin/dsg.js in a checkout, the installed package's when installed
 * with npm): the local agent runs from the same code. This module may be a chunk of the CLI's bundle, so its own
 * location says nothing about where the launcher is.
 */
const BIN = process.argv[1] ? resolve(process.argv[1]) : fileURLToPath(new URL('../../../bin/dsg.js', import.meta.url));

export function lanAddress(): string | null {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return null;
}

/**
 * The command that joins another machine to this grid: the join token in the environment (not on a command line any
 * process could read), the coordinator's LAN address, and the certificate fingerprint to pin when it serves TLS.
 */
export function joinCommand(coord: RunningCoordinator, host: string): string {
  const scheme = coord.tlsFingerprint ? 'https' : 'http';
  const pin = coord.tlsFingerprint && coord.tlsSelfSigned ? ` --tls-fingerprint ${coord.tlsFingerprint}` : '';
  return `DSG_JOIN_TOKEN=${coord.joinToken} dsg agent --coordinator ${scheme}://${host.includes(':') ? `[${host}]` : host}:${coord.port}${pin}`;
}

/** Lines about TLS for the start-up banner. */
export function tlsLines(coord: RunningCoordinator): string[] {
  if (!coord.tlsFingerprint) return [];
  if (!coord.tlsSelfSigned) return [`  TLS        ${dim('your certificate,')} ${coord.tlsFingerprint}`];
  return [
    `  TLS        ${bold(coord.tlsFingerprint)} ${dim('(self-signed, made for this grid: agents and the CLI pin it)')}`,
    `             ${dim('a browser warns about it once: check the fingerprint it shows is this one, then accept')}`,
  ];
}

export function registerUp(program: Command): void {
  addServeFlags(
    program.command('up').description('start a whole grid on this machine: coordinator, dashboard and a local agent'),
    'warn',
  )
    .option('--cpus <n>', "cores the local agent offers (default: all)")
    .option('--memory <size>', 'memory the local agent offers, e.g. 8Gi (default: most of it)')
    .option('--no-agent', 'start only the coordinator')
    .option('--isolation <level>', 'task isolation of the local agent: sandbox, cgroups or none (default: the strongest available; see dsg agent --help)')
    .addHelpText('after', '\nExamples:\n  dsg up\n  dsg up --cpus 2 --port 8080\n\nThen, in another terminal: dsg submit examples/pi/pi.yaml --wait')
    .action(async (flags: ServeFlags & { cpus?: string; memory?: string; agent: boolean; isolation?: string }) => {
      const opts = coordinatorOptions(flags, 'warn');
      if (flags.cpus !== undefined) parsePositiveNumber(flags.cpus, '--cpus');
      if (flags.memory !== undefined && parseSize(flags.memory) === null) throw new ValidationError([{ path: '--memory', message: 'expected a size like 8Gi' }]);
      if (flags.isolation !== undefined && !['none', 'cgroups', 'sandbox'].includes(flags.isolation))
        throw new ValidationError([{ path: '--isolation', message: `expected none, cgroups or sandbox, got "${flags.isolation}"` }]);
      const { startCoordinator } = await import('@dsg/coordinator');
      const coord = await startCoordinator(opts);
      const configPath = writeClientConfig({ coordinator: coord.url, token: coord.adminToken, ...(coord.tlsFingerprint && coord.tlsSelfSigned ? { tlsFingerprint: coord.tlsFingerprint } : {}), ...(coord.localSocket ? { socket: coord.localSocket } : {}) });
      const lan = opts.host === '0.0.0.0' ? lanAddress() : null;
      info(`${green('DSG grid is up')} ${dim(`(data in ${opts.dataDir})`)}`);
      info(`  API        ${bold(coord.url)}/api/v1`);
      info(`  dashboard  ${bold(`${coord.url}/#token=${coord.adminToken}`)}`);
      info(`  credentials ${coord.credentialsFile} ${dim('(admin token, node join token)')}`);
      info(`  CLI config ${configPath} ${dim(`(dsg commands find this grid without flags${coord.localSocket ? `; on this machine through ${coord.localSocket}` : ''})`)}`);
      for (const line of tlsLines(coord)) info(line);
      info(coord.advertised
        ? `  on the LAN advertised as "${coord.gridName}" ${dim('(mDNS: `dsg discover` lists it; `dsg agent` with a join token finds it without --coordinator)')}`
        : `  on the LAN not advertised ${dim(opts.advertise === false ? '(--no-advertise)' : '(listening on loopback only)')}`);
      if (lan) info(`  add a machine: ${cyan(joinCommand(coord, lan))}`);
      // The same command without the token: the agent then asks, and waits for `dsg node approve`.
      if (lan) info(`  or without a secret: ${cyan(coord.advertised ? 'dsg agent' : joinCommand(coord, lan).replace(/^DSG_JOIN_TOKEN=\S+ /, ''))} there, then ${cyan('dsg node approve ID')} here; a classroom: ${cyan('dsg join-code create')}`);
      info(`  share it:   ${cyan('dsg token create --role submitter --project NAME')} ${dim('(a token per person, limited to their projects)')}`);
      info(`\nnext: ${cyan('npx dsg submit examples/pi/pi.yaml --wait')}   ·   Ctrl-C stops the grid (jobs are kept)`);
      const agent = flags.agent ? superviseAgent(coord, opts.dataDir, flags) : null;
      const shutdown = async (): Promise<void> => {
        info('\nstopping…');
        await agent?.stop();
        await coord.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown());
      process.once('SIGTERM', () => void shutdown());
    });
}

function superviseAgent(coord: RunningCoordinator, dataDir: string, flags: { cpus?: string; memory?: string; logLevel?: string; isolation?: string }): { stop(): Promise<void> } {
  let child: ChildProcess | null = null;
  let stopping = false;
  let backoff = 1000;
  let startedAt = 0;
  const start = (): void => {
    // The join token goes in the environment, not on the command line, where any process (a task too) could read it
    // with ps. The coordinator's data dir is hidden from sandboxed tasks.
    const args = [BIN, 'agent', '--coordinator', coord.url, '--state-dir', `${dataDir}/agent`, '--hide', dataDir];
    if (coord.tlsFingerprint && coord.tlsSelfSigned) args.push('--tls-fingerprint', coord.tlsFingerprint);
    if (flags.cpus) args.push('--cpus', flags.cpus);
    if (flags.memory) args.push('--memory', flags.memory);
    if (flags.isolation) args.push('--isolation', flags.isolation);
    startedAt = Date.now();
    child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...processEnv, DSG_JOIN_TOKEN: coord.joinToken } });
    const prefix = (d: Buffer): void => {
      for (const line of String(d).split('\n')) if (line) process.stderr.write(`${dim('[agent]')} ${line}\n`);
    };
    child.stdout!.on('data', prefix);
    child.stderr!.on('data', prefix);
    child.on('exit', (code, signal) => {
      child = null;
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) backoff = 1000;
      info(`${dim('[agent]')} exited (${signal ?? code}); restarting in ${backoff / 1000}s`);
      setTimeout(start, backoff);
      backoff = Math.min(backoff * 2, 30_000);
    });
  };
  start();
  return {
    stop: async () => {
      stopping = true;
      const c = child as ChildProcess | null;
      if (!c) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
