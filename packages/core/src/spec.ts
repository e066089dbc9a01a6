/**
 * Job spec v1: what a user writes (YAML or JSON), its schema, and its compilation.
 *
 * `JobSpecInput` (user input) → `compileJobSpec()` → `CompiledJobSpec` (defaults applied, sizes in bytes,
 * durations in ms, the run normalised). The schema is strict: unknown fields, wrong types, bad sizes or durations
 * and empty commands are rejected with every problem listed by path. The published JSON Schema
 * (`schema/job-spec-v1.json` at the repository root) is generated from `JobSpecSchema` and a test keeps it in step.
 */
import { z } from 'zod';
import { ValidationError, type Issue } from './errors.js';
import type { Resources } from './resources.js';
import { checkSpawnLimits } from './spawn-limits.js';
import { parseDuration, parseSize } from './units.js';

export const SPEC_VERSION = 1 as const;
export const MAX_ARRAY = 100_000;
export const DEFAULTS = {
  cpu: 1,
  memory: '256Mi',
  timeout: '1h',
  retries: 0,
} as const;

const SIZE_PATTERN = /^\s*\d+(\.\d+)?\s*([KMGT]i?B?|B)\s*$/;
const DURATION_PATTERN = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const size = (example: string) =>
  z
    .string({ error: `expected a size like ${example}` })
    .regex(SIZE_PATTERN, { error: `expected a size like ${example}` })
    .meta({ description: 'A size: a number with a unit, B, K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024).', examples: [example] });

const duration = z
  .string({ error: 'expected a duration like 30s, 5m or 1h30m' })
  .regex(DURATION_PATTERN, { error: 'expected a duration like 30s, 5m or 1h30m' })
  .meta({ description: 'A duration: numbers with units ms, s, m, h, d, e.g. 90s or 1h30m.', examples: ['5m'] });

/** A relative path inside the task's working directory: no absolute paths, no `..`. */
function isSafeRelative(p: string): boolean {
  if (p.length === 0 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '..');
}

/** A normalised relative file path (as uploaded inputs must be): no `..`, `.` or empty segments. */
export function isPlainRelativePath(p: string): boolean {
  return isSafeRelative(p) && p.split('/').every((seg) => seg !== '.' && seg !== '');
}
const relPath = (what: string) =>
  z
    .string({ error: `expected a ${what} as a string` })
    .min(1, { error: `expected a non-empty ${what}` })
    .refine(isSafeRelative, { error: `expected a ${what} relative to the spec, without '..' or a leading '/'` });

export const ResourcesSchema = z
  .strictObject({
    cpu: z
      .number({ error: 'expected a number of cores like 1 or 0.5' })
      .positive({ error: 'expected a number of cores greater than 0' })
      .max(1024, { error: 'expected at most 1024 cores' })
      .optional()
      .meta({ description: `CPU cores per task (fractions allowed). Default ${DEFAULTS.cpu}.` }),
    memory: size('512Mi').optional().meta({ description: `Memory per task. Default ${DEFAULTS.memory}.` }),
    disk: size('1Gi').optional().meta({ description: 'Scratch disk per task. Default 0 (not reserved).' }),
    gpus: z
      .number({ error: 'expected a whole number of GPUs' })
      .int({ error: 'expected a whole number of GPUs' })
      .min(0, { error: 'expected 0 or more GPUs' })
      .max(64, { error: 'expected at most 64 GPUs' })
      .optional()
      .meta({ description: 'GPUs per task. Default 0.' }),
  })
  .meta({ description: 'What each task needs; it is scheduled only onto a node with this much free.' });

const arrayValue = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected each array value to be a string, number or boolean',
});

export const JobSpecSchema = z
  .strictObject({
    version: z
      .literal(SPEC_VERSION, { error: `expected version: ${SPEC_VERSION} (the only spec version this grid reads)` })
      .optional()
      .meta({ description: 'Spec version. Default 1.' }),
    name: z
      .string({ error: 'expected a job name as a string' })
      .regex(NAME_PATTERN, {
        error: 'expected a name of letters, digits, ".", "_" or "-" (at most 100, starting with a letter or digit)',
      })
      .meta({ description: 'A short name for the job.', examples: ['pi-sweep'] }),
    description: z.string({ error: 'expected a string' }).max(2000).optional(),
    script: z
      .string({ error: 'expected a shell script as a string' })
      .refine((s) => s.trim().length > 0, { error: 'expected a non-empty script' })
      .optional()
      .meta({ description: 'A shell script run with /bin/sh -c in the task\'s working directory. Use this or `command`.' }),
    command: z
      .array(z.string({ error: 'expected each argument to be a string' }), { error: 'expected a list of arguments like ["python3", "sim.py"]' })
      .min(1, { error: 'expected a non-empty command' })
      .refine((a) => (a[0] ?? '').trim().length > 0, { error: 'expected the program (first element) to be non-empty' })
      .optional()
      .meta({ description: 'A program and its arguments, run without a shell. Use this or `script`.' }),
    array: z
      .union(
        [
          z
            .number()
            .int({ error: 'expected a whole task count' })
            .min(1, { error: `expected a task count from 1 to ${MAX_ARRAY}` })
            .max(MAX_ARRAY, { error: `expected a task count from 1 to ${MAX_ARRAY}` }),
          z.array(arrayValue).min(1).max(MAX_ARRAY),
        ],
        { error: `expected a task count from 1 to ${MAX_ARRAY} or a non-empty list of values` },
      )
      .optional()
      .meta({
        description:
          'A parameter sweep: a task count, or a list of values (one task each). Each task sees DSG_TASK_INDEX and DSG_ARRAY_VALUE. Default: one task.',
      }),
    resources: ResourcesSchema.optional(),
    inputs: z
      .array(relPath('input path'), { error: 'expected a list of file or directory paths' })
      .max(10_000)
      .optional()
      .meta({ description: 'Files or directories next to the spec, uploaded at submit and placed in each task\'s working directory.' }),
    outputs: z
      .array(relPath('output glob'), { error: 'expected a list of globs like "out/*.json"' })
      .max(1000)
      .optional()
      .meta({ description: 'Globs, relative to the working directory, of files collected after each task.' }),
    timeout: duration.optional().meta({ description: `Wall-clock limit per attempt. Default ${DEFAULTS.timeout}.` }),
    retries: z
      .number({ error: 'expected a whole number of retries' })
      .int({ error: 'expected a whole number of retries' })
      .min(0, { error: 'expected 0 or more retries' })
      .max(20, { error: 'expected at most 20 retries' })
      .optional()
      .meta({ description: 'How many times a task that fails by itself (exit code, signal, timeout) is run again. Default 0. Node losses are retried regardless.' }),
    env: z
      .record(
        z.string().regex(ENV_NAME_PATTERN, { error: 'expected environment variable names like MY_VAR' }),
        z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' }),
        { error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of environment variables' : undefined) },
      )
      .optional()
      .meta({ description: 'Environment variables for every task.' }),
  })
  .meta({ title: 'DSG job spec v1', description: 'A job for the Distributed Science Grid.' });

export type JobSpecInput = z.input<typeof JobSpecSchema>;

export type RunSpec =
  | { readonly kind: 'script'; readonly script: string }
  | { readonly kind: 'command'; readonly argv: readonly string[] };

export interface CompiledJobSpec {
  readonly version: typeof SPEC_VERSION;
  readonly name: string;
  readonly description: string | null;
  readonly run: RunSpec;
  readonly taskCount: number;
  /** One value per task for list sweeps; null for a plain count. */
  readonly arrayValues: readonly string[] | null;
  readonly resources: Resources;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly timeoutMs: number;
  readonly retries: number;
  readonly env: Readonly<Record<string, string>>;
}

/** Known fields per object, for "did you mean" hints on unknown fields. */
const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': Object.keys(JobSpecSchema.shape),
  resources: Object.keys(ResourcesSchema.shape),
};

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** Turn zod's issues into ours: one per problem, with a path users can find in their file. */
export function issuesFromZod(error: z.ZodError): Issue[] {
  const out: Issue[] = [];
  for (const issue of error.issues) {
    const base = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const known = KNOWN_FIELDS[base];
      for (const key of issue.keys) {
        const guess = known ? closest(key, known) : null;
        const hint = guess ? ` (did you mean "${guess}"?)` : known ? ` (known fields: ${known.join(', ')})` : '';
        out.push({ path: base ? `${base}.${key}` : key, message: `unknown field${hint}` });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      // A bad key in a map (e.g. an env var name): report the key's own problem, not "Invalid key in record".
      const inner = issue.issues[0]?.message ?? 'invalid key';
      out.push({ path: base, message: inner });
      continue;
    }
    const message = issue.message.replace(/^Invalid input: /, '');
    out.push({ path: base, message });
  }
  return out;
}

/** Validate and normalise a spec. Throws ValidationError listing every problem. */
export function compileJobSpec(input: unknown): CompiledJobSpec {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError([{ path: '', message: 'expected a job spec object (a YAML or JSON mapping)' }]);
  }
  const parsed = JobSpecSchema.safeParse(input);
  const issues: Issue[] = parsed.success ? [] : issuesFromZod(parsed.error);
  const raw = input as Record<string, unknown>;
  if (raw['script'] !== undefined && raw['command'] !== undefined) {
    issues.push({ path: 'command', message: 'give either script or command, not both' });
  } else if (raw['script'] === undefined && raw['command'] === undefined) {
    issues.push({ path: 'script', message: 'expected a script (shell) or a command (argv list) to run' });
  }
  if (!parsed.success || issues.length > 0) throw new ValidationError(issues, 'invalid job spec');
  const spec = parsed.data;

  const memoryBytes = parseSize(spec.resources?.memory ?? DEFAULTS.memory);
  const diskBytes = spec.resources?.disk === undefined ? 0 : parseSize(spec.resources.disk);
  const timeoutMs = parseDuration(spec.timeout ?? DEFAULTS.timeout);
  const late: Issue[] = [];
  if (memoryBytes === null || memoryBytes <= 0) late.push({ path: 'resources.memory', message: 'expected a size like 512Mi, greater than 0' });
  if (diskBytes === null) late.push({ path: 'resources.disk', message: 'expected a size like 1Gi' });
  if (timeoutMs === null || timeoutMs <= 0) late.push({ path: 'timeout', message: 'expected a duration like 30s, 5m or 1h30m, greater than 0' });
  if (late.length > 0) throw new ValidationError(late, 'invalid job spec');

  const arrayValues = Array.isArray(spec.array) ? spec.array.map((v) => String(v)) : null;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.env ?? {})) env[k] = String(v);
  const reserved = Object.keys(env).filter((k) => k.startsWith('DSG_'));
  if (reserved.length > 0) {
    throw new ValidationError(
      reserved.map((k) => ({ path: `env.${k}`, message: 'names starting with DSG_ are set by the grid' })),
      'invalid job spec',
    );
  }
  const run: RunSpec = spec.script !== undefined ? { kind: 'script', script: spec.script } : { kind: 'command', argv: spec.command! };
  // Valid in form but impossible to start (too big for the OS, a NUL byte): refused here, not on every node.
  const unstartable = checkSpawnLimits({ run, env, arrayValues });
  if (unstartable.length > 0) throw new ValidationError(unstartable, 'invalid job spec');
  return {
    version: SPEC_VERSION,
    name: spec.name,
    description: spec.description ?? null,
    run,
    taskCount: arrayValues ? arrayValues.length : typeof spec.array === 'number' ? spec.array : 1,
    arrayValues,
    resources: {
      cpuMillis: Math.round((spec.resources?.cpu ?? DEFAULTS.cpu) * 1000),
      memoryBytes: memoryBytes!,
      gpus: spec.resources?.gpus ?? 0,
      diskBytes: diskBytes!,
    },
    inputs: spec.inputs ?? [],
    outputs: spec.outputs ?? [],
    timeoutMs: timeoutMs!,
    retries: spec.retries ?? DEFAULTS.retries,
    env,
  };
}

/** The user-facing JSON Schema of the spec, for editors (published as schema/job-spec-v1.json). */
export function jobSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(JobSpecSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return {
    $schema: schema['$schema'],
    $id: 'https://dsg.dev/schema/job-spec-v1.json',
    ...schema,
    // Exactly one of script/command; zod refinements do not reach JSON Schema, so say it here.
    oneOf: [{ required: ['script'] }, { required: ['command'] }],
  };
}
