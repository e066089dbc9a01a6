/**
 * `dsg agent install | uninstall`: set the agent up as a service of this machine (systemd on Linux; launchd plist
 * on macOS and a Task Scheduler task on Windows, both written but unverified), with its environment file (the
 * coordinator and join token, mode 0600), an optional policy file, and a record of what was written so that
 * `uninstall` removes exactly that.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core/base';
import { envFileText, launchdPlist, SERVICE_NAME, systemdUnit, windowsInstallCommand, windowsTaskXml, type ServicePlan, type ServiceScope } from '../agent-service.js';
import { info, print } from '../context.js';

interface Layout { readonly configDir: string; readonly stateDir: string; readonly serviceFile: string }

function layoutFor(platform: NodeJS.Platform, scope: ServiceScope): Layout {
  const home = homedir();
  if (platform === 'darwin') return scope === 'system'
    ? { configDir: '/Library/Application Support/dsg', stateDir: '/Library/Application Support/dsg/agent', serviceFile: '/Library/LaunchDaemons/org.dsg.agent.plist' }
    : { configDir: join(home, 'Library/Application Support/dsg'), stateDir: join(home, 'Library/Application Support/dsg/agent'), serviceFile: join(home, 'Library/LaunchAgents/org.dsg.agent.plist') };
  if (platform === 'win32') {
    const base = scope === 'system' ? (process.env['ProgramData'] ?? 'C:\\ProgramData') : (process.env['APPDATA'] ?? join(home, 'AppData/Roaming'));
    return { configDir: join(base, 'dsg'), stateDir: join(base, 'dsg', 'agent'), serviceFile: join(base, 'dsg', `${SERVICE_NAME}.xml`) };
  }
  return scope === 'system'
    ? { configDir: '/etc/dsg', stateDir: '/var/lib/dsg/agent', serviceFile: `/etc/systemd/system/${SERVICE_NAME}.service` }
    : { configDir: join(home, '.config/dsg'), stateDir: join(home, '.local/share/dsg/agent'), serviceFile: join(home, `.config/systemd/user/${SERVICE_NAME}.service`) };
}

/** systemd is running (not merely installed); a user service also needs the user's manager (its runtime dir). */
function systemdRunning(scope: ServiceScope): boolean {
  if (!existsSync('/run/systemd/system')) return false;
  const runtime = process.env['XDG_RUNTIME_DIR'];
  return scope === 'system' || (runtime !== undefined && existsSync(join(runtime, 'systemd')));
}

export function registerAgentService(agent: Command): void {
  agent
    .command('install')
    .description('run the agent as a service of this machine (systemd on Linux; launchd/Task Scheduler files on macOS/Windows)')
    .option('--user', 'a service of your user, started when you log in (default)')
    .option('--system', 'a system service, started at boot (run as root)')
    .option('--policy <file>', 'a volunteer policy file, copied beside the service and passed to the agent')
    .option('--coordinator <url>', 'the coordinator to join (default: env DSG_COORDINATOR)')
    .option('--join-token <token>', 'the node join token (default: env DSG_JOIN_TOKEN); stored in a file only its owner can read')
    .option('--name <name>', 'node name (default: hostname)')
    .option('--cpus <n>', 'cores to offer (default: all)')
    .addHelpText('after', `
Writes the service definition, an environment file (mode 0600) with the coordinator and token, and a record of
what it wrote (install.json) so that \`dsg agent uninstall\` removes exactly that. Where systemd is running it is
enabled and started; otherwise the commands to run are printed. macOS and Windows files are written but were not
verified on those systems.`)
    .action((opts: { user?: boolean; system?: boolean; policy?: string; coordinator?: string; joinToken?: string; name?: string; cpus?: string }) => {
      // --name, --cpus (and --policy, where `dsg agent` has it) are options of `dsg agent` too: commander gives them to it.
      const parent = agent.opts<{ name?: string; cpus?: string; policy?: string }>();
      opts = { ...opts, name: opts.name ?? parent.name, cpus: opts.cpus ?? parent.cpus, policy: opts.policy ?? parent.policy } as typeof opts;
      if (opts.user && opts.system) throw new ValidationError([{ path: '--system', message: 'choose one of --user and --system' }]);
      const scope: ServiceScope = opts.system ? 'system' : 'user';
      const coordinator = opts.coordinator ?? agent.parent?.opts<{ coordinator?: string }>().coordinator ?? process.env['DSG_COORDINATOR'];
      const joinToken = opts.joinToken ?? process.env['DSG_JOIN_TOKEN'];
      const issues: Array<{ path: string; message: string }> = [];
      if (!coordinator) issues.push({ path: '--coordinator', message: 'which coordinator the service joins, e.g. http://192.168.1.10:7070 (or env DSG_COORDINATOR)' });
      if (!joinToken) issues.push({ path: '--join-token', message: 'the node join token (joinToken in the coordinator\'s credentials.json; or env DSG_JOIN_TOKEN)' });
      if (opts.policy && !existsSync(opts.policy)) issues.push({ path: '--policy', message: `no such file: ${opts.policy}` });
      if (opts.cpus !== undefined && !(Number(opts.cpus) > 0)) issues.push({ path: '--cpus', message: `expected a positive number; got "${opts.cpus}"` });
      if (issues.length) throw new ValidationError(issues);
      if (scope === 'system' && process.platform !== 'win32' && process.getuid?.() !== 0) throw new ValidationError([{ path: '--system', message: 'a system service is installed by root: run with sudo, or use --user' }]);

      const l = layoutFor(process.platform, scope);
      const envFile = join(l.configDir, 'agent.env');
      const policyFile = opts.policy ? join(l.configDir, 'agent-policy.yaml') : null;
      const argv = [process.execPath, resolve(process.argv[1]!), 'agent', '--state-dir', l.stateDir,
        ...(opts.name ? ['--name', opts.name] : []), ...(opts.cpus ? ['--cpus', opts.cpus] : []), ...(policyFile ? ['--policy', policyFile] : [])];
      const plan: ServicePlan = { scope, argv, envFile, stateDir: l.stateDir };
      for (const d of [l.configDir, l.stateDir, dirname(l.serviceFile)]) mkdirSync(d, { recursive: true });
      writeFileSync(envFile, envFileText(coordinator, joinToken), { mode: 0o600 });
      chmodSync(envFile, 0o600);
      if (policyFile) copyFileSync(opts.policy!, policyFile);
      const text = process.platform === 'darwin' ? launchdPlist(plan, l.configDir) : process.platform === 'win32' ? windowsTaskXml(plan) : systemdUnit(plan);
      writeFileSync(l.serviceFile, text);
      const written = [l.serviceFile, envFile, ...(policyFile ? [policyFile] : [])];
      writeFileSync(join(l.configDir, 'install.json'), `${JSON.stringify({ scope, platform: process.platform, files: written, stateDir: l.stateDir, installedAt: new Date().toISOString() }, null, 2)}\n`);
      print(`wrote ${l.serviceFile}\nwrote ${envFile} (mode 0600)${policyFile ? `\nwrote ${policyFile}` : ''}`);

      const sc = scope === 'user' ? ['--user'] : [];
      if (process.platform === 'linux') {
        if (systemdRunning(scope)) {
          execFileSync('systemctl', [...sc, 'daemon-reload'], { stdio: 'inherit' });
          execFileSync('systemctl', [...sc, 'enable', '--now', SERVICE_NAME], { stdio: 'inherit' });
          print(`started: systemctl ${sc.join(' ')} status ${SERVICE_NAME}`.replace('  ', ' '));
        } else {
          print(`systemd is not running here, so nothing was started. Where it runs, start the service with:\n  systemctl ${[...sc, 'daemon-reload'].join(' ')}\n  systemctl ${[...sc, 'enable', '--now', SERVICE_NAME].join(' ')}`);
          if (scope === 'user') print(`  loginctl enable-linger $USER   # keep it running while you are logged out`);
        }
      } else if (process.platform === 'darwin') print(`load it with: launchctl load -w ${l.serviceFile}`);
      else if (process.platform === 'win32') print(`register it with: ${windowsInstallCommand(l.serviceFile)}`);
      info('remove it with: dsg agent uninstall' + (scope === 'system' ? ' --system' : ''));
    });

  agent
    .command('uninstall')
    .description('stop and remove the service `dsg agent install` set up (keeps the agent\'s state dir unless --purge)')
    .option('--user', 'the user service (default)')
    .option('--system', 'the system service')
    .option('--purge', 'also remove the agent\'s state dir (its node identity and cache)')
    .action((opts: { user?: boolean; system?: boolean; purge?: boolean }) => {
      const scope: ServiceScope = opts.system ? 'system' : 'user';
      const l = layoutFor(process.platform, scope);
      const record = join(l.configDir, 'install.json');
      if (!existsSync(record)) return print(`no ${scope} agent service installed here (no ${record}); nothing to remove`);
      const r = JSON.parse(readFileSync(record, 'utf8')) as { files: string[]; stateDir: string };
      const sc = scope === 'user' ? ['--user'] : [];
      if (process.platform === 'linux' && systemdRunning(scope)) {
        try { execFileSync('systemctl', [...sc, 'disable', '--now', SERVICE_NAME], { stdio: 'inherit' }); } catch { /* already stopped or unknown */ }
      } else if (process.platform === 'linux') print(`systemd is not running here; if the service runs elsewhere, stop it with: systemctl ${[...sc, 'disable', '--now', SERVICE_NAME].join(' ')}`);
      else if (process.platform === 'darwin') print(`unload it first if loaded: launchctl unload -w ${l.serviceFile}`);
      else if (process.platform === 'win32') print(`remove the task: schtasks /Delete /TN "${SERVICE_NAME}" /F`);
      for (const f of r.files) { rmSync(f, { force: true }); print(`removed ${f}`); }
      rmSync(record, { force: true });
      if (opts.purge) { rmSync(r.stateDir, { recursive: true, force: true }); print(`removed ${r.stateDir}`); }
      if (process.platform === 'linux' && systemdRunning(scope)) execFileSync('systemctl', [...sc, 'daemon-reload'], { stdio: 'inherit' });
    });
}
