/**
 * Workflow spec v1: several stages, each a job spec, joined by `needs`.
 *
 * `WorkflowSpecInput` (what a user writes) → `compileWorkflowSpec()` → `CompiledWorkflow`: every stage compiled
 * like a job, stages in a topological order, and the graph checked — unknown stages (with a "did you mean"),
 * cycles (with the cycle spelled out), a stage needing itself, `from:` a stage that is not upstream, fan-out over
 * a stage without outputs, per-item chaining over a stage whose task count is not fixed. Every problem is reported
 * with its path (`stages.align.inputs[1].from: …`) and nothing is queued unless all of it is valid.
 */
import { z } from 'zod';
import { ValidationError, type Issue } from './errors.js';
import {
  bigListIssues,
  closest,
  compileTaskFields,
  issuesFromZod,
  resolveParams,
  runIssues,
  SPEC_VERSION,
  StageSpecSchema,
  type CompiledJobSpec,
  type CompileOptions,
  type FanOut,
} from './spec.js';

export const MAX_STAGES = 100;
const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const WorkflowSpecSchema = z
  .strictObject({
    version: z
      .literal(SPEC_VERSION, { error: `expected version: ${SPEC_VERSION} (the only spec version this grid reads)` })
      .optional()
      .meta({ description: 'Spec version. Default 1.' }),
    name: z
      .string({ error: 'expected a workflow name as a string' })
      .regex(NAME_PATTERN, { error: 'expected a name of letters, digits, ".", "_" or "-" (at most 100, starting with a letter or digit)' })
      .meta({ description: 'A short name for the workflow.', examples: ['align-reads'] }),
    description: z.string({ error: 'expected a string' }).max(2000).optional(),
    project: z
      .string({ error: 'expected a project name as a string' })
      .regex(NAME_PATTERN, { error: 'expected a name of letters, digits, ".", "_" or "-" (at most 100, starting with a letter or digit)' })
      .optional()
      .meta({ description: 'The project every stage belongs to (limits and sharing are per project). Default "default".' }),
    params: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected parameter names like SAMPLES' }), z.union([z.string(), z.number(), z.boolean()]), {
        error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of parameter names to default values' : undefined),
      })
      .optional()
      .meta({ description: 'Parameters with their defaults (`dsg submit FILE --set NAME=VALUE`); every task of every stage sees each as an environment variable.' }),
    stages: z
      .record(z.string(), StageSpecSchema, { error: (iss) => (iss.code === 'invalid_type' ? 'expected a map of stage name → stage spec' : undefined) })
      .meta({ description: 'Stage name → a job spec (without name) plus needs: [stage, …].' }),
    publish: z
      .record(z.string(), z.string({ error: 'expected a directory like results/' }), { error: 'expected a map of stage name → directory' })
      .optional()
      .meta({ description: 'Where `dsg outputs ID --to DIR` writes each stage\'s outputs, relative to DIR. Default: DIR/<stage>/.' }),
  })
  .meta({ title: 'DSG workflow spec v1', description: 'A multi-stage workflow for the Distributed Science Grid.' });

export type WorkflowSpecInput = z.input<typeof WorkflowSpecSchema>;

export interface CompiledStage {
  readonly name: string;
  /** Stages that must succeed first (as written, deduplicated). */
  readonly needs: readonly string[];
  /** Per-item chaining: the stage whose task k releases this stage's task k; null for whole-stage release. */
  readonly each: string | null;
  /** The stage as a job; its name is `<workflow>/<stage>`. */
  readonly job: CompiledJobSpec;
}

export interface CompiledWorkflow {
  readonly version: typeof SPEC_VERSION;
  readonly name: string;
  readonly description: string | null;
  readonly params: Readonly<Record<string, string>>;
  /** In a topological order: every stage after the stages it needs (ties in the order written). */
  readonly stages: readonly CompiledStage[];
  /** Stage → directory under `dsg outputs --to DIR`. */
  readonly publish: Readonly<Record<string, string>>;
}

/** True when a spec object is a workflow (has `stages:`) rather than a single job. */
export const isWorkflowSpec = (spec: unknown): boolean =>
  spec !== null && typeof spec === 'object' && !Array.isArray(spec) && 'stages' in (spec as Record<string, unknown>);

/** Validate and compile a workflow. Throws ValidationError listing every problem with its path. */
export function compileWorkflowSpec(input: unknown, options: CompileOptions = {}): CompiledWorkflow {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new ValidationError([{ path: '', message: 'expected a workflow spec object (a YAML or JSON mapping)' }]);
  const raw = input as Record<string, unknown>;
  const stagesIn = raw['stages'];
  if (stagesIn && typeof stagesIn === 'object' && !Array.isArray(stagesIn)) {
    for (const [name, st] of Object.entries(stagesIn).slice(0, MAX_STAGES)) {
      if (st === null || typeof st !== 'object' || Array.isArray(st)) continue;
      const big = bigListIssues(st as Record<string, unknown>, `stages.${name}.`);
      if (big) throw new ValidationError(big.issues, 'invalid workflow spec', { issueCount: big.count });
    }
  }
  const parsed = WorkflowSpecSchema.safeParse(input);
  const issues: Issue[] = parsed.success ? [] : issuesFromZod(parsed.error, '<workflow>');
  const rawStages = raw['stages'];
  if (rawStages && typeof rawStages === 'object' && !Array.isArray(rawStages)) {
    const names = Object.keys(rawStages);
    if (names.length === 0) issues.push({ path: 'stages', message: 'expected at least one stage' });
    if (names.length > MAX_STAGES) issues.push({ path: 'stages', message: `${names.length} stages; at most ${MAX_STAGES}` });
    for (const n of names) {
      if (!STAGE_NAME.test(n)) issues.push({ path: `stages.${n}`, message: 'expected a stage name of letters, digits, "_" or "-" (at most 63, starting with a letter or digit)' });
      const st = (rawStages as Record<string, unknown>)[n];
      if (st && typeof st === 'object' && !Array.isArray(st)) issues.push(...runIssues(st as Record<string, unknown>, `stages.${n}.`));
    }
  }
  if (!parsed.success || issues.length > 0) throw new ValidationError(issues, 'invalid workflow spec');
  const spec = parsed.data;
  const params = resolveParams(spec.params, options.params, '');

  // Compile each stage as a job, collecting every stage's problems before giving up.
  const names = Object.keys(spec.stages);
  const jobs = new Map<string, CompiledJobSpec>();
  for (const n of names) {
    try {
      jobs.set(n, { ...compileTaskFields(spec.stages[n]!, `${spec.name}/${n}`, `stages.${n}.`, params), project: spec.project ?? 'default' });
    } catch (e) {
      if (e instanceof ValidationError) issues.push(...e.issues);
      else throw e;
    }
  }

  // The graph: known names, no self-needs, no duplicates, no cycles.
  const needsOf = new Map<string, string[]>();
  for (const n of names) {
    const list: string[] = [];
    (spec.stages[n]!.needs ?? []).forEach((d, i) => {
      const path = `stages.${n}.needs[${i}]`;
      if (d === n) issues.push({ path, message: 'a stage cannot need itself' });
      else if (!names.includes(d)) issues.push({ path, message: unknownStage(d, names) });
      else if (list.includes(d)) issues.push({ path, message: `"${d}" is listed twice` });
      else list.push(d);
    });
    needsOf.set(n, list);
  }
  const cycle = findCycle(names, needsOf);
  if (cycle) {
    // Spelled with "needs", not arrows: an arrow reads one way in a data-flow diagram and the other way in a spec.
    const links = cycle.slice(0, -1).map((n, i) => `${n} needs ${cycle[i + 1]}`);
    issues.push({ path: `stages.${cycle[0]}.needs[${needsOf.get(cycle[0]!)!.indexOf(cycle[1]!)}]`, message: `the stages form a cycle: ${links.join(', ')} (remove one of these needs)` });
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid workflow spec');

  const upstream = new Map<string, Set<string>>();
  const closure = (n: string): Set<string> => {
    let s = upstream.get(n);
    if (s) return s;
    s = new Set<string>();
    for (const d of needsOf.get(n)!) {
      s.add(d);
      for (const x of closure(d)) s.add(x);
    }
    upstream.set(n, s);
    return s;
  };
  const declaresOutputs = (n: string): boolean => {
    const j = jobs.get(n)!;
    return j.outputs.length + j.optionalOutputs.length > 0;
  };
  const checkFrom = (n: string, from: string, path: string): void => {
    if (!names.includes(from)) issues.push({ path, message: unknownStage(from, names) });
    else if (from === n) issues.push({ path, message: 'a stage cannot take its own outputs' });
    else if (!closure(n).has(from)) issues.push({ path, message: `stage "${from}" is not in needs (directly or through other stages): add it to stages.${n}.needs` });
    else if (!declaresOutputs(from)) issues.push({ path, message: `stage "${from}" declares no outputs; add outputs: [GLOB, …] to it` });
  };

  const stages = new Map<string, CompiledStage>();
  // In topological order, so a per-item stage sees its upstream already compiled (and its own upstream's fan-out).
  for (const n of topologicalOrder(names, needsOf)) {
    let job = jobs.get(n)!;
    for (const a of job.artifacts) checkFrom(n, a.from, `stages.${n}.inputs[${a.at}].from`);
    if (job.fanOut.kind === 'files') checkFrom(n, job.fanOut.from, `stages.${n}.array.from`);
    const each = spec.stages[n]!.each ?? null;
    if (each !== null) {
      const path = `stages.${n}.each`;
      const rawStage = (rawStages as Record<string, Record<string, unknown>>)[n]!;
      if (!names.includes(each)) issues.push({ path, message: unknownStage(each, names) });
      else if (each === n) issues.push({ path, message: 'a stage cannot chain on itself; each: names an earlier stage (also listed in needs)' });
      else if (!needsOf.get(n)!.includes(each)) issues.push({ path, message: `"${each}" must also be listed in stages.${n}.needs` });
      else if (rawStage['array'] !== undefined || rawStage['matrix'] !== undefined)
        issues.push({ path, message: `a stage with each: takes its tasks (and their array values) from "${each}"; remove its own array/matrix` });
      else {
        const up = stages.get(each)!.job;
        if (up.fanOut.kind === 'files' || (up.fanOut.kind === 'each' && headOf(up.fanOut).kind === 'files'))
          issues.push({ path, message: `stage "${each}" makes one task per output file, so its task count is only known when it runs; per-item chaining needs a fixed count (array: N, a list, a matrix or lines)` });
        else job = { ...job, fanOut: { kind: 'each', from: each, inherits: up.fanOut }, taskCount: up.taskCount, arrayValues: up.arrayValues };
      }
    }
    stages.set(n, { name: n, needs: needsOf.get(n)!, each, job });
  }
  const publish: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.publish ?? {})) {
    if (!names.includes(k)) issues.push({ path: `publish.${k}`, message: unknownStage(k, names) });
    else if (v.startsWith('/') || v.split('/').includes('..')) issues.push({ path: `publish.${k}`, message: "expected a directory relative to the download directory, without '..'" });
    else publish[k] = v;
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid workflow spec');

  // Each-chains whose head resolves later (lines) take their count when the head is resolved; see resolveLines.
  return {
    version: SPEC_VERSION,
    name: spec.name,
    description: spec.description ?? null,
    params,
    stages: topologicalOrder(names, needsOf).map((n) => stages.get(n)!),
    publish,
  };
}

/** The fan-out at the head of a per-item chain. */
export function headOf(f: FanOut): FanOut {
  return f.kind === 'each' ? headOf(f.inherits) : f;
}

function unknownStage(name: string, names: readonly string[]): string {
  const guess = closest(name, names);
  return `stage "${name}" does not exist${guess ? ` (did you mean "${guess}"?)` : ` (stages: ${names.join(', ')})`}`;
}

/** A cycle as a list of names that starts and ends with the same stage, each needing the next, or null. */
export function findCycle(names: readonly string[], needsOf: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  const path: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    path.push(n);
    for (const d of needsOf.get(n) ?? []) {
      const s = state.get(d);
      if (s === 1) return [...path.slice(path.indexOf(d)), d];
      if (s === undefined) {
        const c = visit(d);
        if (c) return c;
      }
    }
    path.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of names) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c; // in the order of the needs followed: c[0] needs c[1] needs … needs c[0]
  }
  return null;
}

/** Kahn's algorithm, stable: among stages ready at the same time, the one written first comes first. */
export function topologicalOrder(names: readonly string[], needsOf: ReadonlyMap<string, readonly string[]>): string[] {
  const done = new Set<string>();
  const out: string[] = [];
  while (out.length < names.length) {
    const next = names.find((n) => !done.has(n) && (needsOf.get(n) ?? []).every((d) => done.has(d)));
    if (next === undefined) throw new Error('topologicalOrder: the graph has a cycle');
    done.add(next);
    out.push(next);
  }
  return out;
}

/** The stages that need `stage` (directly). */
export const dependentsOf = (wf: CompiledWorkflow, stage: string): CompiledStage[] => wf.stages.filter((s) => s.needs.includes(stage));

/** Stages whose task count comes from `stage` by per-item chaining, transitively (`b each a`, `c each b`). */
export function eachChainOf(wf: CompiledWorkflow, stage: string): string[] {
  const out: string[] = [];
  const walk = (s: string): void => {
    for (const d of wf.stages) if (d.each === s) {
      out.push(d.name);
      walk(d.name);
    }
  };
  walk(stage);
  return out;
}

/** The user-facing JSON Schema of the workflow spec (published as schema/workflow-spec-v1.json). */
export function workflowSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(WorkflowSpecSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { $schema: schema['$schema'], $id: 'https://dsg.dev/schema/workflow-spec-v1.json', ...schema };
}
