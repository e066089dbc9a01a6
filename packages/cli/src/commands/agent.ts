import { resolve } from 'node:path';
import type { Command } from 'commander';
import { looksLikeJoinCode, normalizeJoinCode, parseSize, ValidationError, type Issue } from '@dsg/core';
import { normalizeCoordinatorUrl, policyReaderOptions, processEnv, stateDirDefault, taskBaseEnv } from '../config.js';
import { Exit, ExitCode, info, type GlobalFlags } from '../context.js';
import { parsePositiveNumber } from './parse-flags.js';

interface PolicyFlags { policy?: string; idleMinutes?: string; ownerCpu?: string; window?: string[]; acOnly?: boolean; maxTemperature?: string; graceMinutes?: string; gpus?: string }

/** The policy flags that override the file; bad values become issues naming the flag. */
function policyOverrides(f: PolicyFlags, issues: Issue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const num = (v: string | undefined, flag: string, key: string, ok: (n: number) => boolean, what: string): void => {
    if (v === undefined) return;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) issues.push({ path: flag, message: `expected ${what}, got "${v}"` });
    else out[key] = n;
  };
  num(f.idleMinutes, '--idle-minutes', 'idleMinutes', (n) => n >= 0, 'a number of minutes (0 or more)');
  num(f.ownerCpu, '--owner-cpu', 'ownerCpuPercent', (n) => n >= 1 && n <= 100, 'a percentage from 1 to 100');
  num(f.maxTemperature, '--max-temperature', 'maxTemperature', (n) => n >= 20 && n <= 150, 'degrees Celsius from 20 to 150');
  num(f.graceMinutes, '--grace-minutes', 'gracePeriodMinutes', (n) => n >= 0, 'a number of minutes (0 or more)');
  if (f.window) out['windows'] = f.window;
  if (f.acOnly) out['acPowerOnly'] = true;
  if (f.gpus !== undefined) out['gpus'] = f.gpus.trim() === 'none' ? [] : f.gpus.split(',').map((g) => g.trim()).filter(Boolean).map((g) => (/^\d+$/.test(g) ? Number(g) : g));
  return out;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export function registerAgent(program: Command, globals: () => GlobalFlags): void {
  program
    .command('agent')
    .description('run an agent: offer this machine to a coordinator and run the tasks it sends')
    .option('--state-dir <dir>', 'where the agent keeps its node id, input cache and working dirs')
    .option('--name <name>', 'node name (default: hostname)')
    .option('--cpus <n>', 'cores to offer (default: all)')
    .option('--memory <size>', 'memory to offer, e.g. 8Gi (default: total minus 10%)')
    .option('--label <key=value...>', 'labels for placement constraints (repeatable)')
    .option('--keep-work-dirs', 'keep task working directories after they finish (debugging)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--isolation <level>', 'the strongest task isolation to use: sandbox (bubblewrap + cgroup limits), cgroups (limits only) or none (default: sandbox, as available)')
    .option('--max-processes <n>', 'most processes and threads one task may have (default 1024)')
    .option('--no-network', 'never give tasks network access, even when their job asks for it (network: true)')
    .option('--grid <name>', 'without --coordinator: join the grid of this name (or id) among those found on the LAN')
    .option('--allow-unisolated-jobs', "run anyone's jobs even if this machine cannot isolate tasks (by default a node without isolation runs only the grid operator's jobs)")
    .option('--hide <dir...>', 'more directories sandboxed tasks must not see (the agent\'s own state dir is always hidden)')
    .option('--policy <file>', 'volunteer policy file (YAML): share limits, idle-only, time windows, AC only, temperature ceiling (see README "Volunteering a machine")')
    .option('--idle-minutes <n>', 'run only after this many minutes without keyboard or mouse input (turns idle-only on)')
    .option('--owner-cpu <percent>', 'idle-only: and only while the owner\'s programs use less CPU than this (% of the machine; default 25)')
    .option('--window <spec...>', 'only at these local times, e.g. "sat,sun" "mon-fri 19:00-07:00" (repeatable; replaces the file\'s windows)')
    .option('--ac-only', 'never run on battery power')
    .option('--max-temperature <celsius>', 'suspend tasks while the hottest thermal zone is at or above this')
    .option('--grace-minutes <n>', 'suspended this long: stop the tasks and let them run elsewhere (default 5)')
    .option('--gpus <list>', 'GPUs to share, by index or UUID, comma-separated; "none" shares none (default: all)')
    .option('--join <code>', 'join with a four-word join code instead of a token, e.g. apple-river-cannon-ozone (made by `dsg join-code create`; env DSG_JOIN_CODE)')
    .addHelpText('after', `
Without --coordinator <url> (env DSG_COORDINATOR) the agent looks for a coordinator on the LAN (mDNS, as
\`dsg discover\` does), waiting until one appears. A new agent is let in by one of:
  --join CODE     a four-word join code the grid's admin read out (\`dsg join-code create\`; env DSG_JOIN_CODE)
  --token TOKEN   the node join token (env DSG_JOIN_TOKEN or DSG_TOKEN; joinToken in the coordinator's
                  credentials.json). Prefer the environment variable: a --token on the command line is visible to
                  every process of the machine (ps).
  neither         the agent asks to join and waits, showing a request id, until an admin runs
                  \`dsg node approve ID\` (or \`dsg node reject ID\`: the agent then exits with code 5).
After its first connection the agent keeps its own credential in its state dir and needs neither again.
A coordinator serving TLS with its own certificate is pinned by fingerprint: --tls-fingerprint sha256:… (env
DSG_TLS_FINGERPRINT), as \`dsg up\` prints it (found on the LAN, the advertised one is used: compare it with what the
coordinator printed); it is saved with the node's identity after the first connection.

Examples:
  dsg agent --join apple-river-cannon-ozone                 in a classroom: finds the grid on the LAN
  DSG_JOIN_TOKEN=dsg_node_… dsg agent --coordinator https://192.168.1.10:7070 --tls-fingerprint sha256:3f9a… --cpus 4 --label gpu=rtx3090`)
    .action(async (f: { stateDir?: string; name?: string; cpus?: string; memory?: string; label?: string[]; keepWorkDirs?: boolean; logLevel: string; isolation?: string; maxProcesses?: string; network: boolean; hide?: string[]; allowUnisolatedJobs?: boolean; grid?: string; join?: string } & PolicyFlags) => {
      const g = globals();
      const [rawUrl, urlSource] = g.coordinator ? [g.coordinator, '--coordinator'] : [processEnv['DSG_COORDINATOR'], 'DSG_COORDINATOR'];
      const issues: Issue[] = [];
      const [codeText, codeSource] = f.join !== undefined ? [f.join, '--join'] : [processEnv['DSG_JOIN_CODE'], 'DSG_JOIN_CODE'];
      const tokenText = g.token ?? processEnv['DSG_JOIN_TOKEN'] ?? processEnv['DSG_TOKEN'];
      let token = tokenText;
      if (codeText !== undefined) {
        if (g.token !== undefined) issues.push({ path: '--join', message: 'give a join code or a token, not both' });
        try {
          token = normalizeJoinCode(codeText, codeSource);
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          issues.push(...e.issues);
        }
      } else if (tokenText !== undefined && looksLikeJoinCode(tokenText)) token = normalizeJoinCode(tokenText, '--token'); // a code passed as a token
      let coordinatorUrl: string | undefined;
      if (rawUrl && f.grid) issues.push({ path: '--grid', message: 'picks among grids found on the LAN: drop it, or drop --coordinator' });
      if (rawUrl) {
        try {
          coordinatorUrl = normalizeCoordinatorUrl(rawUrl, urlSource); // host:port reads as http://host:port
        } catch (e) {
          if (!(e instanceof ValidationError)) throw e;
          issues.push(...e.issues);
        }
      }
      const pinText = g.tlsFingerprint ?? processEnv['DSG_TLS_FINGERPRINT'];
      // The same check as @dsg/client/tls parseFingerprint, here so a typo is reported before anything loads.
      if (pinText !== undefined && !/^(sha-?256[:=])?([0-9a-f]{2}:?){32}$/i.test(pinText.trim()))
        issues.push({ path: g.tlsFingerprint ? '--tls-fingerprint' : 'DSG_TLS_FINGERPRINT', message: `expected a SHA-256 certificate fingerprint like sha256:3f9a… (64 hex digits), as \`dsg up\` prints it; got "${pinText}"` });
      const memoryBytes = f.memory === undefined ? undefined : parseSize(f.memory);
      if (memoryBytes === null) issues.push({ path: '--memory', message: 'expected a size like 8Gi' });
      const labels: Record<string, string> = {};
      for (const l of f.label ?? []) {
        const m = /^([A-Za-z0-9_.\-/]+)=(.*)$/.exec(l);
        if (!m) issues.push({ path: '--label', message: `expected key=value, got "${l}"` });
        else labels[m[1]!] = m[2]!;
      }
      if (!LEVELS.includes(f.logLevel as (typeof LEVELS)[number])) issues.push({ path: '--log-level', message: `expected one of ${LEVELS.join(', ')}` });
      if (f.isolation !== undefined && !['none', 'cgroups', 'sandbox'].includes(f.isolation)) issues.push({ path: '--isolation', message: `expected none, cgroups or sandbox, got "${f.isolation}"` });
      const maxProcesses = f.maxProcesses === undefined ? undefined : Number(f.maxProcesses);
      if (maxProcesses !== undefined && !(Number.isInteger(maxProcesses) && maxProcesses >= 16)) issues.push({ path: '--max-processes', message: 'expected a whole number, at least 16 (a Node or Python program alone needs about 10)' });
      const overrides = policyOverrides(f, issues);
      if (issues.length > 0) throw new ValidationError(issues);
      const min = LEVELS.indexOf(f.logLevel as (typeof LEVELS)[number]);
      let discoveredPin: string | null = null;
      if (!coordinatorUrl) {
        const { waitForGrid, describe } = await import('../discovery.js');
        const g = await waitForGrid({ ...(f.grid ? { gridName: f.grid } : {}), say: info });
        info(`found ${describe(g)}`);
        if ((codeText !== undefined || !token) && g.tlsFingerprint)
          info(`its certificate is ${g.tlsFingerprint.slice(0, 'sha256:'.length + 16)}…, trusted on first use: if the grid's admin shows another, stop this agent (Ctrl-C) and tell them`);
        coordinatorUrl = g.url;
        // Pinning what the advertisement says is trust on first use: see docs/SECURITY.md. An explicit pin wins.
        discoveredPin = g.tlsFingerprint;
      }
      const { startAgent, loadPolicyFile, compilePolicy, parseFakeGpus } = await import('@dsg/agent'); // loaded only for this command
      // Policy: defaults < file < flags. Any flag alone makes a policy (e.g. `--ac-only`).
      const policy = f.policy ? loadPolicyFile(f.policy, overrides) : Object.keys(overrides).length > 0 ? compilePolicy({}, overrides, 'flags') : undefined;
      const fakeGpus = processEnv['DSG_FAKE_GPUS'];
      if (fakeGpus) {
        try {
          parseFakeGpus(fakeGpus);
        } catch (e) {
          throw new ValidationError([{ path: 'DSG_FAKE_GPUS', message: (e as Error).message.replace(/^DSG_FAKE_GPUS: /, '') }]);
        }
      }
      let agent: Awaited<ReturnType<typeof startAgent>>;
      try {
        agent = await startAgent({
        ...(fakeGpus ? { fakeGpus } : {}),
        coordinatorUrl: coordinatorUrl!,
        ...(token ? { token } : {}),
        ...(pinText ? { tlsFingerprint: pinText.trim() } : discoveredPin ? { tlsFingerprint: discoveredPin } : {}),
        // Absolute: working dirs under it are bind-mounted into the sandbox, which needs full paths.
        stateDir: resolve(f.stateDir ?? stateDirDefault(processEnv)),
        ...(f.name ? { name: f.name } : {}),
        ...(f.cpus !== undefined ? { cpus: parsePositiveNumber(f.cpus, '--cpus') } : {}),
        ...(memoryBytes ? { memoryBytes } : {}),
        labels,
        keepWorkDirs: Boolean(f.keepWorkDirs),
        baseEnv: taskBaseEnv(processEnv),
        ...(f.isolation ? { isolation: f.isolation as 'none' | 'cgroups' | 'sandbox' } : {}),
        ...(maxProcesses !== undefined ? { maxProcesses } : {}),
        allowNetwork: f.network,
        ...(f.allowUnisolatedJobs ? { allowUnisolatedJobs: true } : {}),
        ...(f.hide ? { hidePaths: f.hide.map((p) => resolve(p)) } : {}),
        ...(policy ? { policy, policyReaders: policyReaderOptions(processEnv) } : {}),
        log: (level, message) => {
          if (LEVELS.indexOf(level) >= min) info(`${new Date().toISOString().slice(11, 19)} ${level.toUpperCase().padEnd(5)} ${message}`);
        },
      });
      } catch (e) {
        // Rejected by the grid's admin (joining by approval): say so and exit with its own code.
        if ((e as { rejected?: boolean }).rejected) {
          process.stderr.write(`dsg: ${(e as Error).message}\n`);
          throw new ExitCode(Exit.rejected);
        }
        throw e;
      }
      const stop = async (): Promise<void> => {
        await agent.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
    });
}
