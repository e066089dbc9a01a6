/**
 * Which module registers each top-level command, so `dsg X` loads only X's module and what it imports: a client
 * command never loads the coordinator (fastify, the SQLite driver), the agent, the YAML parser or mDNS. Help, an
 * unknown command or none at all load every module (help lists them all; commander suggests the nearest name).
 * The table is checked against what the modules really register (test/command-table.test.ts).
 */
import type { Command } from 'commander';
import type { GlobalFlags } from './context.js';

export type Register = (program: Command, globals: () => GlobalFlags) => void;

export interface CommandEntry {
  /** The top-level command names (and aliases) the module registers. */
  readonly names: readonly string[];
  readonly load: () => Promise<Register>;
  /**
   * The command keeps running after its action returns (servers: their signal handlers stop them). Every other
   * command exits as soon as its action is done and its output is flushed, instead of waiting for idle keep-alive
   * connections and timers to let the event loop end (~60–160 ms after the last request with Node's fetch).
   */
  readonly serves?: true;
  /** The command never talks to a coordinator (so nothing prepares a connection to one before it runs). */
  readonly offline?: true;
}

/** In the order `dsg --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  { names: ['up'], serves: true, load: async () => (await import('./commands/up.js')).registerUp },
  { names: ['coordinator'], serves: true, load: async () => (await import('./commands/coordinator.js')).registerCoordinator },
  {
    names: ['agent'],
    serves: true,
    load: async () => {
      const [{ registerAgent }, { registerAgentService }] = await Promise.all([import('./commands/agent.js'), import('./commands/agent-service.js')]);
      return (program, globals) => {
        registerAgent(program, globals);
        registerAgentService(program.commands.find((c) => c.name() === 'agent')!);
      };
    },
  },
  { names: ['discover'], offline: true, load: async () => (await import('./commands/discover.js')).registerDiscover },
  { names: ['submit'], load: async () => (await import('./commands/job-submit.js')).registerSubmit },
  { names: ['run'], load: async () => (await import('./commands/run.js')).registerRun },
  { names: ['jobs'], load: async () => (await import('./commands/job-list.js')).registerJobs },
  { names: ['job', 'tasks'], load: async () => (await import('./commands/job-show.js')).registerJobShow },
  { names: ['wait'], load: async () => (await import('./commands/wait.js')).registerWait },
  { names: ['logs'], load: async () => (await import('./commands/job-logs.js')).registerLogs },
  { names: ['cancel'], load: async () => (await import('./commands/job-cancel.js')).registerCancel },
  { names: ['outputs'], load: async () => (await import('./commands/job-outputs.js')).registerOutputs },
  { names: ['snakemake'], load: async () => (await import('./commands/snakemake.js')).registerSnakemake },
  { names: ['workflow', 'workflows', 'retry'], load: async () => (await import('./commands/workflow.js')).registerWorkflow },
  { names: ['nodes'], load: async () => (await import('./commands/node-list.js')).registerNodes },
  {
    names: ['node'],
    load: async () => {
      const [{ registerNodeOps }, { registerNodeRevoke }, { registerNodeApproval }] = await Promise.all([
        import('./commands/node-ops.js'), import('./commands/node-revoke.js'), import('./commands/node-approval.js'),
      ]);
      return (program, globals) => {
        registerNodeOps(program, globals);
        registerNodeRevoke(program, globals);
        registerNodeApproval(program, globals);
      };
    },
  },
  { names: ['status', 'gc'], load: async () => (await import('./commands/status.js')).registerStatus },
  { names: ['token'], load: async () => (await import('./commands/token.js')).registerToken },
  { names: ['join-code'], load: async () => (await import('./commands/join-code.js')).registerJoinCode },
  { names: ['audit'], load: async () => (await import('./commands/audit.js')).registerAudit },
  { names: ['ledger'], load: async () => (await import('./commands/ledger.js')).registerLedger },
  { names: ['spec'], offline: true, load: async () => (await import('./commands/spec-check.js')).registerSpec },
  { names: ['openapi'], load: async () => (await import('./commands/openapi.js')).registerOpenApi },
];

/** Global options that take a value: their value is not a command name. */
const GLOBAL_WITH_VALUE = new Set(['--coordinator', '--token', '--tls-fingerprint']);

/** The first word of `args` that is not a global option or its value (the command), or null. */
export function commandWord(args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return null;
    if (GLOBAL_WITH_VALUE.has(a)) { i++; continue; }
    if (a.startsWith('-')) continue;
    return a;
  }
  return null;
}

/** The global options given in `args` (`--coordinator URL` or `--coordinator=URL`, before or after the command), as commander reads them. */
export function globalFlagsIn(args: readonly string[]): GlobalFlags {
  const flags: GlobalFlags = {};
  const key = { '--coordinator': 'coordinator', '--token': 'token', '--tls-fingerprint': 'tlsFingerprint' } as const;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    const eq = a.indexOf('=');
    const name = (eq < 0 ? a : a.slice(0, eq)) as keyof typeof key;
    if (!(name in key)) continue;
    const value = eq < 0 ? args[++i] : a.slice(eq + 1);
    if (value !== undefined) flags[key[name]] = value;
  }
  return flags;
}

/**
 * The modules to load for these arguments: the one that registers the command; none for a bare `--version`
 * (commander answers it before any command); every module otherwise (help, unknown command, no command).
 */
export function commandsFor(args: readonly string[]): readonly CommandEntry[] {
  const word = commandWord(args);
  if (word === null && args.some((a) => a === '-V' || a === '--version') && !args.some((a) => a === '-h' || a === '--help')) return [];
  const entry = word === null ? undefined : COMMANDS.find((c) => c.names.includes(word));
  return entry ? [entry] : COMMANDS;
}
