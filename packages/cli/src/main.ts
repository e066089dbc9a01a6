/**
 * `dsg`: the command-line interface. Each command lives in its own file under commands/; this file wires them
 * into commander and turns errors into messages and exit codes (0 ok, 1 failed, 2 bad input, 3 unreachable,
 * 130 interrupted).
 */
import { Command, CommanderError } from 'commander';
import { DSG_VERSION, isDsgError, ValidationError } from '@dsg/core/base';
import { debugEnabled } from './config.js';
import { activeClientConfig, Exit, ExitCode, exitQuietlyOnClosedOutput, preloadTls, type GlobalFlags } from './context.js';
import { explainClientError } from './explain.js';
import { commandsFor, globalFlagsIn } from './command-table.js';
const program = new Command()
  .name('dsg')
  .description('Distributed Science Grid: run science jobs on the machines you already have')
  .version(DSG_VERSION)
  .option('--coordinator <url>', 'coordinator URL, e.g. http://127.0.0.1:7070; host:port means http:// (default: env DSG_COORDINATOR, then ~/.config/dsg/config.json)')
  .option('--token <token>', 'API token (default: env DSG_TOKEN, then the config file)')
  .option('--tls-fingerprint <sha256>', "the coordinator certificate's fingerprint to trust, as `dsg up` prints it (default: env DSG_TLS_FINGERPRINT, then the file the URL came from)")
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .addHelpText('after', `
Start here:
  npm start                                  (or: dsg up) a grid on this machine
  dsg submit examples/pi/pi.yaml --wait      run a 20-task Monte Carlo sweep
  dsg jobs · dsg job ID · dsg wait ID · dsg logs ID · dsg outputs ID --to DIR · dsg nodes
  dsg status · dsg gc --dry-run · dsg node drain NAME    operate the grid
  dsg token create --role submitter --project NAME         give someone their own token
  dsg audit list · dsg audit verify                        who did what, and proof nobody edited it
  dsg ledger --by node|project|user [--csv]                 what each machine gave, and each project used

Every read command takes --json. Exit codes: 0 ok · 1 a job failed or a runtime error · 2 bad input ·
3 cannot reach the coordinator (waiting commands keep trying for 5m first: --give-up-after) · 130 interrupted.`);

const globals = (): GlobalFlags => program.opts<GlobalFlags>();
const args = process.argv.slice(2);
const commands = commandsFor(args);
// A command that will talk to the coordinator: start loading TLS before the command's code (see preloadTls).
if (commands.length === 1 && !commands[0]!.serves && !commands[0]!.offline && !args.some((a) => a === '-h' || a === '--help')) preloadTls(globalFlagsIn(args));
for (const command of commands) (await command.load())(program, globals);

function fail(code: number, message: string): never {
  process.stderr.write(`dsg: ${message}\n`);
  process.exit(code);
}

/** Exit once what was written to stdout and stderr has been handed to the OS. */
function exitWhenFlushed(code: number): Promise<never> {
  return new Promise(() => {
    let pending = 2;
    const done = (): void => { if (--pending === 0) process.exit(code); };
    process.stdout.write('', done);
    process.stderr.write('', done);
  });
}

exitQuietlyOnClosedOutput();

try {
  await program.parseAsync(process.argv);
  if (!commands.some((c) => c.serves)) await exitWhenFlushed(typeof process.exitCode === 'number' ? process.exitCode : 0);
} catch (e) {
  if (e instanceof ExitCode) process.exit(e.code);
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : Exit.usage);
  if (debugEnabled() && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  if (e instanceof ValidationError) fail(Exit.usage, e.message);
  if (isDsgError(e) && e.code === 'over_limit') {
    const after = e.details?.['retryAfterSeconds'];
    fail(Exit.overLimit, `${e.message}${typeof after === 'number' ? ` (the coordinator suggests again in ${after}s)` : ''}`);
  }
  // A refused certificate (pin mismatch, untrusted): its message says what to do; no token advice applies.
  if (isDsgError(e) && e.details?.['tls']) fail(Exit.failed, e.message);
  if (isDsgError(e)) fail(e.code === 'unavailable' ? Exit.unavailable : e.code === 'validation' ? Exit.usage : Exit.failed, explainClientError(e, activeClientConfig()));
  fail(Exit.failed, e instanceof Error ? `${e.message} (DSG_DEBUG=1 shows the stack)` : String(e));
}
