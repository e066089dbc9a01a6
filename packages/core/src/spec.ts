/**
 * Job spec v1: what a user writes (YAML or JSON), its schema, and its compilation.
 *
 * `JobSpecInput` (user input) → `compileJobSpec()` → `CompiledJobSpec` (defaults applied, sizes in bytes,
 * durations in ms, the run normalised). The schema is strict: unknown fields, wrong types, bad sizes or durations
 * and empty commands are rejected with every problem listed by path. The published JSON Schema
 * (`schema/job-spec-v1.json` at the repository root) is generated from `JobSpecSchema` and a test keeps it in step.
 */
import { z } from 'zod';
import { MAX_REPORTED_ISSUES, ValidationError, type Issue } from './errors.js';
import type { Resources } from './resources.js';
import { checkSpawnLimits, MAX_ENV_VARS } from './spawn-limits.js';
import { parseDuration, parseSize } from './units.js';
import { compileConstraints, type Constraint } from './constraints.js';

/** What a job may require of a node's task isolation (see `isolationSatisfies`). */
export const ISOLATION_REQUIREMENTS = ['none', 'cgroups', 'sandbox', 'sandbox+cgroups'] as const;
export type IsolationRequirement = (typeof ISOLATION_REQUIREMENTS)[number];

/**
 * Whether a node's isolation level (what its agent reports: `sandbox+cgroups`, `sandbox`, `cgroups`, `none`, or
 * nothing from an older agent, read as none) gives everything a requirement names. The levels are sets of two
 * features, not a ladder: `sandbox` does not give `cgroups`.
 */
export function isolationSatisfies(nodeLevel: string | undefined, required: IsolationRequirement | undefined): boolean {
  if (!required || required === 'none') return true;
  const has = new Set((nodeLevel ?? 'none').split('+'));
  return required.split('+').every((f) => has.has(f));
}

export const SPEC_VERSION = 1 as const;
/** Most tasks in one job (array count, list of values, matrix combinations, lines of a file). */
export const MAX_ARRAY = 1_000_000;
/**
 * Placement conditions a spec may hold (constraints, prefer): each is matched against every candidate node on every
 * dispatch pass. Script, command and environment sizes are bounded in spawn-limits.ts.
 */
export const SPEC_LIMITS = { conditions: 100 } as const;
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

/**
 * Where a local input lands in the task's working directory. Inputs may live outside the spec's folder
 * (`../scripts/align.sh`): the path is normalised and its leading `../` segments dropped, so that file is placed at
 * `scripts/align.sh`. Null when nothing is left (`..`, `.`), or the path is absolute.
 */
export function inputPlacement(p: string): string | null {
  if (p.length === 0 || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return null;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    // A leading `..` climbs out of the spec's folder: dropped (the file keeps the rest of its path).
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return out.length === 0 ? null : out.join('/');
}

const relPath = (what: string) =>
  z
    .string({ error: `expected a ${what} as a string` })
    .min(1, { error: `expected a non-empty ${what}` })
    .refine(isSafeRelative, { error: `expected a ${what} relative to the working directory, without '..' or a leading '/'` });

const inputPath = z
  .string({ error: 'expected an input path as a string' })
  .min(1, { error: 'expected a non-empty input path' })
  .refine((p) => inputPlacement(p) !== null, { error: 'expected a file or directory path relative to the spec (it may start with ../), not an absolute path' });

const STAGE_REF = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const stageRef = z
  .string({ error: 'expected a stage name' })
  .regex(STAGE_REF, { error: 'expected a stage name of letters, digits, "_" or "-"' });

/** `${DSG_TASK_INDEX}` and `${DSG_ARRAY_VALUE}` may appear in an artifact path; nothing else in `${…}`. */
export const ARTIFACT_VARIABLES = ['DSG_TASK_INDEX', 'DSG_ARRAY_VALUE'] as const;
const artifactGlob = z
  .string({ error: 'expected a path or glob as a string' })
  .min(1, { error: 'expected a non-empty path or glob' })
  .refine(isSafeRelative, { error: "expected a path or glob relative to the stage's outputs, without '..' or a leading '/'" })
  .refine((p) => [...p.matchAll(/\$\{([^}]*)\}/g)].every((m) => (ARTIFACT_VARIABLES as readonly string[]).includes(m[1]!)), {
    error: `only \${DSG_TASK_INDEX} and \${DSG_ARRAY_VALUE} may appear in \${…}`,
  });

const ArtifactInputSchema = z
  .strictObject({
    from: stageRef.meta({ description: 'An earlier stage (listed in needs, directly or through other stages).' }),
    path: artifactGlob
      .optional()
      .meta({ description: 'Only the outputs matching this glob; ${DSG_TASK_INDEX} and ${DSG_ARRAY_VALUE} pick this task\'s own piece. Default: every output of the stage.' }),
  })
  .meta({ description: 'Outputs of an earlier stage, placed in the working directory at the same relative paths (workflows only).' });

const OutputEntrySchema = z.union(
  [
    relPath('output glob'),
    z.strictObject({
      path: relPath('output glob'),
      optional: z.boolean({ error: 'expected true or false' }).optional().meta({ description: 'May match nothing. Default false: a pattern that matches no file fails the task.' }),
    }),
  ],
  { error: 'expected a glob like "out/*.json" or { path: GLOB, optional: true }' },
);

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
      .meta({ description: 'GPUs per task, whole and exclusive (the task sees only its own through CUDA_VISIBLE_DEVICES). Default 0. Use this or gpu.' }),
    gpu: z
      .strictObject({
        count: z.number({ error: 'expected a whole number of GPUs' }).int({ error: 'expected a whole number of GPUs' }).min(1, { error: 'expected at least 1 GPU' }).max(64, { error: 'expected at most 64 GPUs' }).optional()
          .meta({ description: 'How many GPUs. Default 1.' }),
        memory: size('24Gi').optional().meta({ description: 'Exclusive: the memory each of its GPUs must have, e.g. 16Gi. Shared (required): the GPU memory the task uses on each device; tasks share a GPU while their memory fits in it.' }),
        model: z.string({ error: 'expected GPU models like "RTX 4090|A100"' }).trim().min(1).max(500)
          .refine((m) => m.split('|').every((x) => x.trim().length > 0), { error: 'expected models separated by |, none empty, like "RTX 4090|A100"' })
          // Plain names, not patterns: a model matches as a substring, so "A100.*" would never match anything.
          .refine((m) => !/[*?^$()[\]{}\\+]/.test(m), { error: 'expected plain model names separated by | (no *, ?, ^, $, brackets: a GPU matches when its name contains one), like "RTX 4090|A100"' })
          .optional()
          .meta({ description: 'Acceptable GPU models, separated by | ("RTX 4090|A100"): a GPU qualifies when its name contains one of them (any case).' }),
        shared: z.boolean({ error: 'expected shared: true or false' }).optional()
          .meta({ description: 'true: the task shares each GPU with other sharing tasks, packed by the GPU memory they declare (memory is then required); the program must keep to its declared memory (nothing enforces it on the device). Default false: whole GPUs no other task sees.' }),
      })
      .refine((g) => !g.shared || g.memory !== undefined, { error: 'a shared GPU needs memory: the GPU memory each task uses, like memory: 8Gi (tasks are packed onto a GPU by it)', path: ['memory'] })
      .optional()
      .meta({ description: 'GPUs with conditions: { count: 1, memory: 16Gi, model: "RTX 4090|A100", shared: false }. Exclusive by default: each task gets whole GPUs no other task sees. Use this or gpus.' }),
  })
  .refine((r) => !(r.gpus !== undefined && r.gpu !== undefined), { error: 'give gpus (a count) or gpu ({ count, memory, model }), not both', path: ['gpu'] })
  .meta({ description: 'What each task needs; it is scheduled only onto a node with this much free.' });

const arrayValue = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected each array value to be a string, number or boolean',
});

const scalar = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' });
const ENV_NAME = z.string().regex(ENV_NAME_PATTERN, { error: 'expected environment variable names like MY_VAR' });
const MATRIX_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

const ArraySchema = z
  .union(
    [
      z
        .number()
        .int({ error: 'expected a whole task count' })
        .min(1, { error: `expected a task count from 1 to ${MAX_ARRAY}` })
        .max(MAX_ARRAY, { error: `expected a task count from 1 to ${MAX_ARRAY}` }),
      z.array(arrayValue).min(1).max(MAX_ARRAY),
      z.strictObject({
        lines: inputPath.meta({ description: 'A text file next to the spec: one task per non-empty line (lines starting with # are skipped).' }),
      }),
      z.strictObject({
        from: stageRef,
        path: artifactGlob.optional().meta({ description: 'Only output files matching this glob. Default: every output.' }),
      }),
    ],
    {
      error: `expected a task count from 1 to ${MAX_ARRAY}, a non-empty list of values, { lines: FILE } or { from: STAGE, path: GLOB }`,
    },
  )
  .optional()
  .meta({
    description:
      'A parameter sweep: a task count, a list of values (one task each), { lines: FILE } (one task per line of a file) or, in a workflow, { from: STAGE, path: GLOB } (one task per output file of an earlier stage, placed in its working directory). Each task sees DSG_TASK_INDEX and DSG_ARRAY_VALUE. Default: one task.',
  });

const MatrixSchema = z
  .record(
    z.string().regex(MATRIX_KEY_PATTERN, { error: 'expected parameter names like temperature or seed' }),
    z.array(arrayValue, { error: 'expected a list of values' }).min(1, { error: 'expected a non-empty list of values' }).max(MAX_ARRAY),
    { error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of parameter → list of values' : undefined) },
  )
  .optional()
  .meta({
    description:
      'A sweep over every combination: { temperature: [280, 300], seed: [1, 2, 3] } → 6 tasks, each seeing DSG_MATRIX_TEMPERATURE and DSG_MATRIX_SEED. Use this or array.',
  });

/** The fields that say what a task runs and with what: shared by a job and a workflow stage. */
const taskFields = {
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
  array: ArraySchema,
  matrix: MatrixSchema,
  resources: ResourcesSchema.optional(),
  inputs: z
    .array(z.union([inputPath, ArtifactInputSchema], { error: 'expected a path (string) or { from: STAGE, path: GLOB }' }), {
      error: 'expected a list of file or directory paths',
    })
    .max(10_000)
    .optional()
    .meta({
      description:
        "Files or directories relative to the spec (they may be outside its folder: ../scripts/run.sh is placed at scripts/run.sh), uploaded at submit and placed in each task's working directory; in a workflow also { from: STAGE } for an earlier stage's outputs.",
    }),
  outputs: z
    .array(OutputEntrySchema, { error: 'expected a list of globs like "out/*.json"' })
    .max(1000)
    .optional()
    .meta({
      description:
        'Globs, relative to the working directory, of files collected after each task. A pattern that matches no file fails the task, unless written { path: GLOB, optional: true }.',
    }),
  timeout: duration.optional().meta({ description: `Wall-clock limit per attempt. Default ${DEFAULTS.timeout}.` }),
  retries: z
    .number({ error: 'expected a whole number of retries' })
    .int({ error: 'expected a whole number of retries' })
    .min(0, { error: 'expected 0 or more retries' })
    .max(20, { error: 'expected at most 20 retries' })
    .optional()
    .meta({ description: 'How many times a task that fails by itself (exit code, signal, timeout, missing output) is run again. Default 0. Node losses are retried regardless.' }),
  env: z
    .record(ENV_NAME, scalar, { error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of environment variables' : undefined) })
    .optional()
    .meta({ description: 'Environment variables for every task.' }),
  priority: z
    .enum(['urgent', 'high', 'normal', 'low'], { error: 'expected a priority class: urgent, high, normal or low' })
    .optional()
    .meta({ description: 'Priority class: jobs of a higher class are placed first; within a class, first come first served. Default normal.' }),
  parallelism: z
    .number({ error: 'expected a whole number of tasks' })
    .int({ error: 'expected a whole number of tasks' })
    .min(1, { error: 'expected at least 1' })
    .max(100_000, { error: 'expected at most 100000' })
    .optional()
    .meta({ description: 'At most this many of the job\'s tasks run at once, however many nodes are free (like Slurm\'s --array=0-99%4). Default: no cap.' }),
  constraints: z
    .record(z.string(), z.unknown(), { error: 'expected a map of label or fact → condition, like { room: lab2, arch: [x86_64, aarch64] }' })
    .refine((c) => Object.keys(c).length <= SPEC_LIMITS.conditions, { error: `expected at most ${SPEC_LIMITS.conditions} conditions` })
    .optional()
    .meta({
      description:
        'Where the tasks may run: label or fact (os: linux/darwin/win32, os.version, arch: x64/arm64, hostname, cpu.model, cpu.cores, memory, disk, gpu.model, gpu.count, gpu.memory) → a value, a list of values, "!value", "*" (set), "!*" (not set) or a comparison like ">= 16Gi". A node that does not match never runs them.',
    }),
  prefer: z
    .record(z.string(), z.unknown(), { error: 'expected a map of label or fact → condition, like { room: lab1 }' })
    .refine((c) => Object.keys(c).length <= SPEC_LIMITS.conditions, { error: `expected at most ${SPEC_LIMITS.conditions} preferences` })
    .optional()
    .meta({ description: 'Soft preferences, same syntax as constraints: among the nodes that fit, those matching more of these are chosen first.' }),
  network: z
    .boolean({ error: 'expected true or false' })
    .optional()
    .meta({ description: 'The tasks need network access (downloads, APIs). Default false: on a sandboxed node a task has no network at all. A node may refuse network access; the task then runs without it.' }),
  isolation: z
    .enum(ISOLATION_REQUIREMENTS, { error: `expected ${ISOLATION_REQUIREMENTS.join(', ')}` })
    .optional()
    .meta({
      description:
        'The least isolation a node must give the tasks: sandbox (private namespaces, no view of other tasks or the agent), cgroups (enforced memory, CPU and process limits), sandbox+cgroups (both), none (any node; the default). Nodes that give less never run them.',
    }),
};

const ParamsSchema = z
  .record(ENV_NAME, scalar, { error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of parameter names to default values' : undefined) })
  .optional()
  .meta({
    description: 'Parameters with their defaults, changed at submit with `dsg submit FILE --set NAME=VALUE`. Every task sees each as an environment variable.',
  });

const versionField = z
  .literal(SPEC_VERSION, { error: `expected version: ${SPEC_VERSION} (the only spec version this grid reads)` })
  .optional()
  .meta({ description: 'Spec version. Default 1.' });

const nameField = z
  .string({ error: 'expected a name as a string' })
  .regex(NAME_PATTERN, {
    error: 'expected a name of letters, digits, ".", "_" or "-" (at most 100, starting with a letter or digit)',
  });

export const JobSpecSchema = z
  .strictObject({
    version: versionField,
    name: nameField.meta({ description: 'A short name for the job.', examples: ['pi-sweep'] }),
    project: nameField.optional().meta({ description: 'The project the job belongs to (limits and sharing are per project). Default "default".' }),
    params: ParamsSchema,
    ...taskFields,
  })
  .meta({ title: 'DSG job spec v1', description: 'A job for the Distributed Science Grid.' });

export type JobSpecInput = z.input<typeof JobSpecSchema>;

/** One stage of a workflow: a job spec without a name, plus what it waits for. */
export const StageSpecSchema = z
  .strictObject({
    needs: z
      .array(stageRef, { error: 'expected a list of stage names' })
      .max(100)
      .optional()
      .meta({ description: 'Stages that must succeed before this one starts.' }),
    each: stageRef
      .optional()
      .meta({
        description:
          'Per-item chaining: take the tasks of this earlier stage (listed in needs) and start task k as soon as its task k succeeded, instead of waiting for the whole stage.',
      }),
    ...taskFields,
  })
  .meta({ description: 'A stage: a job spec (script or command, array or matrix, resources, inputs, outputs, …) plus needs.' });

export type RunSpec =
  | { readonly kind: 'script'; readonly script: string }
  | { readonly kind: 'command'; readonly argv: readonly string[] };

/** A file or directory from the submitting machine, as written in the spec and where it lands in the task's dir. */
export interface LocalInputSpec {
  /** As written, relative to the spec's folder (may start with ../). */
  readonly source: string;
  /** Where it is placed in the working directory (and the path it is uploaded under). */
  readonly path: string;
}

/** Outputs of an earlier stage of the same workflow. */
export interface ArtifactInputSpec {
  readonly from: string;
  /** Glob over the stage's output paths, possibly with ${DSG_TASK_INDEX}/${DSG_ARRAY_VALUE}; null = all. */
  readonly path: string | null;
  /** Position in the spec's `inputs`, for messages. */
  readonly at: number;
}

/** How a job's tasks are made. */
export type FanOut =
  | { readonly kind: 'single' }
  | { readonly kind: 'count' }
  | { readonly kind: 'values' }
  | { readonly kind: 'matrix'; readonly keys: readonly string[]; readonly values: readonly (readonly string[])[] }
  /** One task per line of an uploaded file; resolved at submit into `arrayValues`. */
  | { readonly kind: 'lines'; readonly path: string; readonly resolved: boolean }
  /** One task per output file of an earlier stage; resolved when the stage is released. */
  | { readonly kind: 'files'; readonly from: string; readonly path: string | null }
  /** Per-item chaining: the tasks of stage `from`, task k released when its task k succeeded. */
  | { readonly kind: 'each'; readonly from: string; readonly inherits: FanOut };

export interface CompiledJobSpec {
  readonly version: typeof SPEC_VERSION;
  readonly name: string;
  readonly description: string | null;
  readonly run: RunSpec;
  /** Number of tasks; 0 while it depends on something not known yet (`lines` before submit, `files` before release). */
  readonly taskCount: number;
  /** One value per task for list sweeps, matrices, lines and files; null for a plain count. */
  readonly arrayValues: readonly string[] | null;
  readonly fanOut: FanOut;
  readonly resources: Resources;
  /** What each of its GPUs must be (`resources.gpu` with memory or model); absent: any GPU. */
  readonly gpu?: GpuNeeds;
  readonly inputs: readonly LocalInputSpec[];
  readonly artifacts: readonly ArtifactInputSpec[];
  /** Output globs that must each match at least one file. */
  readonly outputs: readonly string[];
  /** Output globs that may match nothing. */
  readonly optionalOutputs: readonly string[];
  readonly timeoutMs: number;
  /** The tasks asked for network access (`network: true`); absent means no. */
  readonly network?: boolean;
  /** The least isolation a node must give them (`isolation:`); absent means any. */
  readonly isolation?: IsolationRequirement;
  readonly retries: number;
  /** Environment of every task: the parameters' values, then the spec's env. */
  readonly env: Readonly<Record<string, string>>;
  /** Declared parameters with the values in force (defaults overridden at submit). */
  readonly params: Readonly<Record<string, string>>;
  /** Hard placement conditions on node labels and facts. */
  readonly constraints: readonly Constraint[];
  /** Soft placement preferences. */
  readonly prefer: readonly Constraint[];
  /** At most this many tasks on nodes at once; null = no cap. */
  readonly parallelism: number | null;
  /** Priority class; higher classes are placed first. */
  readonly priority: PriorityClass;
  /** The project it belongs to (limits are per project). */
  readonly project: string;
}

/** Conditions on each GPU a task gets: at least this much memory, a name containing one of these models. */
export interface GpuNeeds {
  /** Exclusive: the least memory each GPU must have. Shared: the GPU memory the task uses on each (required). */
  readonly memoryBytes: number | null;
  readonly models: readonly string[] | null;
  /** The task shares its GPUs by declared memory (then `resources.gpus` is 0 and `count` says how many). Absent: exclusive. */
  readonly shared?: true;
  /** Shared: how many devices (1..64). Exclusive tasks count in `resources.gpus`. */
  readonly count?: number;
}

/** Does this GPU satisfy the conditions? Models match as case-insensitive substrings ("RTX 4090" in "NVIDIA GeForce RTX 4090"). */
export function gpuQualifies(gpu: { readonly model: string; readonly memoryBytes: number }, needs: GpuNeeds | null | undefined): boolean {
  if (!needs) return true;
  if (needs.memoryBytes !== null && gpu.memoryBytes < needs.memoryBytes) return false;
  if (needs.models !== null) {
    const name = gpu.model.toLowerCase();
    if (!needs.models.some((m) => name.includes(m.toLowerCase()))) return false;
  }
  return true;
}

/** In words, for reasons and logs: "16Gi, RTX 4090 or A100". */
export function describeGpuNeeds(needs: GpuNeeds): string {
  const parts: string[] = [];
  if (needs.memoryBytes !== null) parts.push(`at least ${formatSizeShort(needs.memoryBytes)} of memory`);
  if (needs.models !== null) parts.push(needs.models.join(' or '));
  return parts.join(', ');
}

const formatSizeShort = (b: number): string => (b >= 2 ** 30 ? `${+(b / 2 ** 30).toFixed(1)}Gi` : `${Math.round(b / 2 ** 20)}Mi`);

export const PRIORITY_CLASSES = { urgent: 3, high: 2, normal: 1, low: 0 } as const;
export type PriorityClass = keyof typeof PRIORITY_CLASSES;

/** Options of compilation: parameter values given at submit (`--set NAME=VALUE`). */
export interface CompileOptions {
  readonly params?: Readonly<Record<string, string>>;
}

/** Known fields per object, for "did you mean" hints on unknown fields. */
const JOB_FIELDS: readonly string[] = Object.keys(JobSpecSchema.shape);
const STAGE_FIELDS: readonly string[] = Object.keys(StageSpecSchema.shape);
const RESOURCE_FIELDS: readonly string[] = Object.keys(ResourcesSchema.shape);
const WORKFLOW_FIELDS: readonly string[] = ['version', 'name', 'description', 'project', 'params', 'stages', 'publish'];

/** The fields allowed at a path of a job or workflow spec, for "did you mean" hints. */
function knownFieldsAt(path: string): readonly string[] | undefined {
  if (path === '') return undefined;
  if (path === '<job>') return JOB_FIELDS;
  if (path === '<workflow>') return WORKFLOW_FIELDS;
  if (path === 'resources' || /^stages\.[^.]+\.resources$/.test(path)) return RESOURCE_FIELDS;
  if (/^stages\.[^.]+$/.test(path)) return STAGE_FIELDS;
  return undefined;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * The candidate a misspelt word most likely meant: at most 2 edits away, and fewer than half the word's length
 * (so `zz` does not "mean" `a`).
 */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD && d * 2 < Math.max(word.length, c.length)) {
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
export function issuesFromZod(error: z.ZodError, root: '<job>' | '<workflow>' = '<job>'): Issue[] {
  const out: Issue[] = [];
  for (const issue of error.issues) {
    const base = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const known = knownFieldsAt(base || root);
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

/** Lists at least this long are checked by `bigListIssues` before zod sees them. */
const BIG_LIST = 1000;

/**
 * A fast first look at the spec's long lists (array values, matrix values, command): their elements' types, and
 * lists longer than allowed. Zod reports every bad element of a list, and with 100,000 of them spends about a second
 * building issues nobody reads; this loop finds them in milliseconds, keeps the first MAX_REPORTED_ISSUES and counts
 * the rest. Null when the long lists look right (zod then checks everything as usual).
 */
export function bigListIssues(raw: Record<string, unknown>, prefix: string): { issues: Issue[]; count: number } | null {
  const issues: Issue[] = [];
  let count = 0;
  const note = (path: string, message: string): void => {
    count++;
    if (issues.length < MAX_REPORTED_ISSUES) issues.push({ path: `${prefix}${path}`, message });
  };
  const scalarList = (list: unknown, path: string, max: number, what: string): void => {
    if (!Array.isArray(list) || list.length < BIG_LIST) return;
    if (list.length > max) note(path, `${list.length} ${what}; at most ${max}`);
    for (let i = 0; i < list.length; i++) {
      const t = typeof list[i];
      if (t !== 'string' && t !== 'number' && t !== 'boolean') note(`${path}[${i}]`, 'expected each array value to be a string, number or boolean');
    }
  };
  scalarList(raw['array'], 'array', MAX_ARRAY, 'values (one task each)');
  const matrix = raw['matrix'];
  if (matrix !== null && typeof matrix === 'object' && !Array.isArray(matrix)) {
    for (const [k, v] of Object.entries(matrix)) scalarList(v, `matrix.${k}`, MAX_ARRAY, 'values');
  }
  const command = raw['command'];
  if (Array.isArray(command) && command.length >= BIG_LIST) {
    for (let i = 0; i < command.length; i++) if (typeof command[i] !== 'string') note(`command[${i}]`, 'expected each argument to be a string');
  }
  const env = raw['env'];
  if (env !== null && typeof env === 'object' && !Array.isArray(env)) {
    const n = Object.keys(env).length;
    if (n > MAX_ENV_VARS) note('env', `${n} environment variables; at most ${MAX_ENV_VARS}`);
  }
  return count > 0 ? { issues, count } : null;
}

/** Validate and normalise a job spec. Throws ValidationError listing every problem. */
export function compileJobSpec(input: unknown, options: CompileOptions = {}): CompiledJobSpec {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError([{ path: '', message: 'expected a job spec object (a YAML or JSON mapping)' }]);
  }
  const raw = input as Record<string, unknown>;
  if (raw['stages'] !== undefined && raw['script'] === undefined && raw['command'] === undefined) {
    throw new ValidationError([{ path: 'stages', message: 'this is a workflow (it has stages:); submit it as a workflow (`dsg submit` does so by itself)' }]);
  }
  const big = bigListIssues(raw, '');
  if (big) throw new ValidationError(big.issues, 'invalid job spec', { issueCount: big.count });
  const parsed = JobSpecSchema.safeParse(input);
  const issues: Issue[] = parsed.success ? [] : issuesFromZod(parsed.error, '<job>');
  issues.push(...runIssues(raw, ''));
  if (!parsed.success || issues.length > 0) throw new ValidationError(issues, 'invalid job spec');
  const spec = parsed.data;
  const params = resolveParams(spec.params, options.params, '');
  const compiled = { ...compileTaskFields(spec, spec.name, '', params), project: spec.project ?? 'default' };
  const stageOnly: Issue[] = [];
  compiled.artifacts.forEach((a) => stageOnly.push({ path: `inputs[${a.at}]`, message: `{ from: ${a.from} } takes the outputs of a workflow stage; a plain job has no stages` }));
  if (compiled.fanOut.kind === 'files') stageOnly.push({ path: 'array.from', message: 'one task per output file of an earlier stage works only in a workflow stage' });
  if (stageOnly.length > 0) throw new ValidationError(stageOnly, 'invalid job spec');
  return compiled;
}

/** `script` xor `command`, checked on the raw object (zod refinements cannot see two fields at once here). */
export function runIssues(raw: Record<string, unknown>, prefix: string): Issue[] {
  if (raw['script'] !== undefined && raw['command'] !== undefined) return [{ path: `${prefix}command`, message: 'give either script or command, not both' }];
  if (raw['script'] === undefined && raw['command'] === undefined) return [{ path: `${prefix}script`, message: 'expected a script (shell) or a command (argv list) to run' }];
  if (raw['array'] !== undefined && raw['matrix'] !== undefined) return [{ path: `${prefix}matrix`, message: 'give either array or matrix, not both' }];
  return [];
}

type ParsedTaskFields = z.output<typeof JobSpecSchema> | z.output<typeof StageSpecSchema>;

/** Declared parameters with the values given at submit; an undeclared name is an error naming the declared ones. */
export function resolveParams(
  declared: Readonly<Record<string, string | number | boolean>> | undefined,
  given: Readonly<Record<string, string>> | undefined,
  prefix: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(declared ?? {})) out[k] = String(v);
  const issues: Issue[] = [];
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!(k in out)) {
      const names = Object.keys(out);
      const guess = closest(k, names);
      issues.push({
        path: `--set ${k}`,
        message: `no such parameter${guess ? ` (did you mean "${guess}"?)` : ''}; ${names.length ? `the spec declares ${names.join(', ')}` : 'the spec declares none (add them under params: with a default)'}`,
      });
      continue;
    }
    if (v.includes('\0')) issues.push({ path: `--set ${k}`, message: 'a value may not contain a NUL byte' });
    out[k] = v;
  }
  for (const k of Object.keys(out)) if (k.startsWith('DSG_')) issues.push({ path: `${prefix}params.${k}`, message: 'names starting with DSG_ are set by the grid' });
  if (issues.length > 0) throw new ValidationError(issues, 'invalid parameters');
  return out;
}

/** Compile the fields shared by jobs and stages. `prefix` locates messages (`stages.align.`). */
export function compileTaskFields(spec: ParsedTaskFields, name: string, prefix: string, params: Readonly<Record<string, string>>): CompiledJobSpec {
  const memoryBytes = parseSize(spec.resources?.memory ?? DEFAULTS.memory);
  const diskBytes = spec.resources?.disk === undefined ? 0 : parseSize(spec.resources.disk);
  const timeoutMs = parseDuration(spec.timeout ?? DEFAULTS.timeout);
  const late: Issue[] = [];
  if (memoryBytes === null || memoryBytes <= 0) late.push({ path: `${prefix}resources.memory`, message: 'expected a size like 512Mi, greater than 0' });
  const g = spec.resources?.gpu;
  const gpuMemory = g?.memory === undefined ? null : parseSize(g.memory);
  if (g?.memory !== undefined && (gpuMemory === null || gpuMemory <= 0)) late.push({ path: `${prefix}resources.gpu.memory`, message: 'expected a size like 16Gi, greater than 0' });
  const gpuModels = g?.model === undefined ? null : g.model.split('|').map((m) => m.trim());
  // Shared GPUs are not counted as whole ones (resources.gpus 0): the scheduler packs them by memory per device.
  const gpuShared = g?.shared === true;
  const gpuNeeds: GpuNeeds | null = gpuShared
    ? { memoryBytes: gpuMemory ?? null, models: gpuModels, shared: true, count: g!.count ?? 1 }
    : g && (g.memory !== undefined || g.model !== undefined) ? { memoryBytes: gpuMemory ?? null, models: gpuModels } : null;
  if (diskBytes === null) late.push({ path: `${prefix}resources.disk`, message: 'expected a size like 1Gi' });
  if (timeoutMs === null || timeoutMs <= 0) late.push({ path: `${prefix}timeout`, message: 'expected a duration like 30s, 5m or 1h30m, greater than 0' });

  const env: Record<string, string> = { ...params };
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (k in params) late.push({ path: `${prefix}env.${k}`, message: `"${k}" is also a parameter; every task already sees parameters as environment variables` });
    env[k] = String(v);
  }
  for (const k of Object.keys(spec.env ?? {})) if (k.startsWith('DSG_')) late.push({ path: `${prefix}env.${k}`, message: 'names starting with DSG_ are set by the grid' });

  const inputs: LocalInputSpec[] = [];
  const artifacts: ArtifactInputSpec[] = [];
  (spec.inputs ?? []).forEach((entry, at) => {
    if (typeof entry === 'string') {
      const path = inputPlacement(entry)!;
      if (inputs.some((i) => i.path === path)) late.push({ path: `${prefix}inputs[${at}]`, message: `"${entry}" is placed at ${path}, like an earlier input` });
      else inputs.push({ source: entry, path });
    } else artifacts.push({ from: entry.from, path: entry.path ?? null, at });
  });
  const outputs: string[] = [];
  const optionalOutputs: string[] = [];
  for (const o of spec.outputs ?? []) {
    if (typeof o === 'string') outputs.push(o);
    else (o.optional ? optionalOutputs : outputs).push(o.path);
  }

  let fanOut: FanOut = { kind: 'single' };
  let taskCount = 1;
  let arrayValues: string[] | null = null;
  const arr = spec.array;
  if (typeof arr === 'number') {
    fanOut = { kind: 'count' };
    taskCount = arr;
  } else if (Array.isArray(arr)) {
    fanOut = { kind: 'values' };
    arrayValues = arr.map((v) => String(v));
    taskCount = arrayValues.length;
  } else if (arr && 'lines' in arr) {
    const path = inputPlacement(arr.lines)!;
    fanOut = { kind: 'lines', path, resolved: false };
    taskCount = 0;
    // The file travels with the inputs (uploaded at submit, also placed in each task's directory).
    if (!inputs.some((i) => i.path === path || path.startsWith(`${i.path.replace(/\/+$/, '')}/`))) inputs.push({ source: arr.lines, path });
  } else if (arr && 'from' in arr) {
    fanOut = { kind: 'files', from: arr.from, path: arr.path ?? null };
    taskCount = 0;
  } else if (spec.matrix) {
    const keys = Object.keys(spec.matrix);
    if (keys.length === 0) late.push({ path: `${prefix}matrix`, message: 'expected at least one parameter with a list of values' });
    const values = keys.map((k) => spec.matrix![k]!.map((v) => String(v)));
    const total = values.reduce((n, v) => n * v.length, 1);
    if (total > MAX_ARRAY) late.push({ path: `${prefix}matrix`, message: `${total} combinations; at most ${MAX_ARRAY} tasks per job` });
    const envNames = keys.map(matrixEnvName);
    const dup = envNames.find((n, i) => envNames.indexOf(n) !== i);
    if (dup) late.push({ path: `${prefix}matrix`, message: `two parameters map to the same variable ${dup}` });
    if (keys.length > 0 && total <= MAX_ARRAY) {
      fanOut = { kind: 'matrix', keys, values };
      taskCount = total;
      arrayValues = [];
      for (let i = 0; i < total; i++) arrayValues.push(matrixRow(keys, values, i).map(([k, v]) => `${k}=${v}`).join(','));
    }
  }
  const constraints = compileConstraints(spec.constraints, `${prefix}constraints`, late);
  const prefer = compileConstraints(spec.prefer, `${prefix}prefer`, late);
  if (late.length > 0) throw new ValidationError(late, 'invalid spec');
  const run: RunSpec = spec.script !== undefined ? { kind: 'script', script: spec.script } : { kind: 'command', argv: spec.command! };
  // Valid in form but impossible to start (too big for the OS, a NUL byte): refused here, not on every node.
  const unstartable = checkSpawnLimits({ run, env, arrayValues });
  if (unstartable.length > 0) throw new ValidationError(unstartable.map((i) => ({ ...i, path: `${prefix}${i.path}` })), 'invalid spec');
  return {
    version: SPEC_VERSION,
    name,
    description: spec.description ?? null,
    run,
    taskCount,
    arrayValues,
    fanOut,
    resources: {
      cpuMillis: Math.round((spec.resources?.cpu ?? DEFAULTS.cpu) * 1000),
      memoryBytes: memoryBytes!,
      gpus: spec.resources?.gpu ? (gpuShared ? 0 : (spec.resources.gpu.count ?? 1)) : (spec.resources?.gpus ?? 0),
      diskBytes: diskBytes!,
    },
    ...(gpuNeeds ? { gpu: gpuNeeds } : {}),
    inputs,
    artifacts,
    outputs,
    optionalOutputs,
    timeoutMs: timeoutMs!,
    ...(spec.network ? { network: true } : {}),
    ...(spec.isolation && spec.isolation !== 'none' ? { isolation: spec.isolation } : {}),
    retries: spec.retries ?? DEFAULTS.retries,
    env,
    params: { ...params },
    constraints,
    prefer,
    parallelism: spec.parallelism ?? null,
    priority: spec.priority ?? 'normal',
    project: 'default',
  };
}

/** `temperature` → `DSG_MATRIX_TEMPERATURE`. */
export const matrixEnvName = (key: string): string => `DSG_MATRIX_${key.toUpperCase()}`;

/** The (key, value) pairs of matrix combination `index`, the last key varying fastest. */
export function matrixRow(keys: readonly string[], values: readonly (readonly string[])[], index: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let rest = index;
  for (let k = keys.length - 1; k >= 0; k--) {
    const list = values[k]!;
    out.unshift([keys[k]!, list[rest % list.length]!]);
    rest = Math.floor(rest / list.length);
  }
  return out;
}

/** Environment variables a task gets from its job's fan-out (the matrix variables), beyond DSG_ARRAY_VALUE. */
export function fanOutEnv(fanOut: FanOut, index: number): Record<string, string> {
  if (fanOut.kind === 'each') return fanOutEnv(fanOut.inherits, index);
  if (fanOut.kind !== 'matrix') return {};
  const env: Record<string, string> = {};
  for (const [k, v] of matrixRow(fanOut.keys, fanOut.values, index)) env[matrixEnvName(k)] = v;
  return env;
}

/** The lines of a `{ lines: FILE }` fan-out: non-empty, trimmed, `#` comments skipped. */
export function linesOf(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

/**
 * Compiled specs stored by an earlier version lack the newer fields (inputs were plain strings, no fan-out, no
 * optional outputs): bring them to the current shape so old jobs still run after an upgrade.
 */
export function upgradeCompiledSpec(raw: unknown): CompiledJobSpec {
  const c = raw as CompiledJobSpec & { inputs: ReadonlyArray<string | LocalInputSpec> };
  const inputs = (c.inputs ?? []).map((i) => (typeof i === 'string' ? { source: i, path: inputPlacement(i) ?? i } : i));
  const fanOut: FanOut = c.fanOut ?? (c.arrayValues ? { kind: 'values' } : c.taskCount > 1 ? { kind: 'count' } : { kind: 'single' });
  return {
    ...c, inputs, fanOut, artifacts: c.artifacts ?? [], optionalOutputs: c.optionalOutputs ?? [], params: c.params ?? {},
    constraints: c.constraints ?? [], prefer: c.prefer ?? [], parallelism: c.parallelism ?? null, priority: c.priority ?? 'normal', project: c.project ?? 'default',
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
