/**
 * What a process can be started with. A spec can be valid in form and still impossible to run: the operating
 * system refuses to start a program whose one argument (a script is one argument of `/bin/sh -c`) or one
 * environment string exceeds 128 KiB (Linux's MAX_ARG_STRLEN), whose arguments and environment together exceed
 * ARG_MAX (about 2 MiB by default on Linux, pointers included), or that contains a NUL byte (it ends a C string).
 * Such a task would fail on every node, so these are rejected at submit, each with its path and what to do instead.
 *
 * The limits leave a margin under the kernel's: the agent adds its own environment (PATH, HOME, …) and the DSG_*
 * variables to every task.
 */
import type { Issue } from './errors.js';

/** One argument, one `NAME=value` environment string, one array value: a margin under Linux's 128 KiB. */
export const MAX_ARG_BYTES = 127 * 1024;
/** Environment variables a spec may set. */
export const MAX_ENV_VARS = 4096;
/** Arguments and environment together (bytes, with a terminator and a pointer per string): half of Linux's default ARG_MAX. */
export const MAX_EXEC_BYTES = 1024 * 1024;
/** What the kernel counts per string on top of its bytes: the terminating NUL and an 8-byte pointer. */
const PER_STRING = 1 + 8;

/** UTF-8 length without allocating (a lone surrogate counts as the 3-byte replacement character). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const kib = (n: number): string => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`);
const NUL = 'contains a NUL byte (\\0), which cannot be passed to a program; remove it';

export interface SpawnParts {
  readonly run: { readonly kind: 'script'; readonly script: string } | { readonly kind: 'command'; readonly argv: readonly string[] };
  readonly env: Readonly<Record<string, string>>;
  /** List sweep values (each becomes a task's DSG_ARRAY_VALUE), or null. */
  readonly arrayValues: readonly string[] | null;
}

/** Every reason these parts could never be started as a process, each with the spec path to fix. */
export function checkSpawnLimits(p: SpawnParts): Issue[] {
  const issues: Issue[] = [];
  let argvBytes = 0;
  if (p.run.kind === 'script') {
    const s = p.run.script;
    const n = utf8Length(s);
    if (s.includes('\0')) issues.push({ path: 'script', message: NUL });
    if (n > MAX_ARG_BYTES)
      issues.push({
        path: 'script',
        message: `is ${kib(n)}; a script can be at most ${kib(MAX_ARG_BYTES)} (the operating system limits one argument to 128 KiB). Put the code in a file, list it in inputs and run that file, e.g. script: sh run.sh`,
      });
    argvBytes = utf8Length('/bin/sh') + utf8Length('-c') + n + 3 * PER_STRING;
  } else {
    p.run.argv.forEach((a, i) => {
      const n = utf8Length(a);
      if (a.includes('\0')) issues.push({ path: `command[${i}]`, message: NUL });
      if (n > MAX_ARG_BYTES)
        issues.push({ path: `command[${i}]`, message: `is ${kib(n)}; one argument can be at most ${kib(MAX_ARG_BYTES)} (the operating system limits one argument to 128 KiB). Pass large data in an input file instead` });
      argvBytes += n + PER_STRING;
    });
  }

  const names = Object.keys(p.env);
  if (names.length > MAX_ENV_VARS) issues.push({ path: 'env', message: `sets ${names.length} variables; at most ${MAX_ENV_VARS}. Pass large data in an input file instead` });
  let envBytes = 0;
  for (const k of names) {
    const v = p.env[k]!;
    const n = utf8Length(k) + 1 + utf8Length(v);
    if (v.includes('\0')) issues.push({ path: `env.${k}`, message: NUL });
    if (n > MAX_ARG_BYTES)
      issues.push({ path: `env.${k}`, message: `is ${kib(n)}; one environment variable can be at most ${kib(MAX_ARG_BYTES)} (the operating system limits each to 128 KiB). Pass large data in an input file instead` });
    envBytes += n + PER_STRING;
  }

  // Each list value is one task's DSG_ARRAY_VALUE; the largest one is what its task must carry.
  let largestValue = 0;
  p.arrayValues?.forEach((v, i) => {
    const n = utf8Length('DSG_ARRAY_VALUE=') + utf8Length(v);
    if (v.includes('\0')) issues.push({ path: `array[${i}]`, message: NUL });
    if (n > MAX_ARG_BYTES)
      issues.push({ path: `array[${i}]`, message: `is ${kib(n)}; each value becomes its task's DSG_ARRAY_VALUE, which can be at most ${kib(MAX_ARG_BYTES)}. Put large values in input files and list their names instead` });
    largestValue = Math.max(largestValue, n + PER_STRING);
  });

  const total = argvBytes + envBytes + largestValue;
  if (total > MAX_EXEC_BYTES) {
    const runPath = p.run.kind === 'script' ? 'script' : 'command';
    issues.push({
      path: envBytes > argvBytes ? 'env' : runPath,
      message: `the ${runPath} and the environment add up to ${kib(total)}; at most ${kib(MAX_EXEC_BYTES)} can be passed to a task (the operating system limits the total to about 2 MiB on Linux, and the grid adds its own variables). Move large values into input files`,
    });
  }
  return issues;
}
