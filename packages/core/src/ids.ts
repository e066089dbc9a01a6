/**
 * Branded identifiers. Every id carries a readable prefix (`job_`, `att_`, `node_`) so that a stray id in a
 * log line says what it names, and the type system keeps a JobId from being passed where a NodeId belongs.
 *
 * Job, attempt and node ids are time-ordered (48-bit millisecond clock + 80 random bits, Crockford base32, like
 * ULID), so ordering by id is ordering by creation. Task ids are derived: `${jobId}.${index}`, because a task
 * is fully named by its job and its position in the array and a derived id needs no lookup.
 */
export type Brand<T, B extends string> = T & { readonly __brand: B };
export type JobId = Brand<string, 'JobId'>;
export type TaskId = Brand<string, 'TaskId'>;
export type AttemptId = Brand<string, 'AttemptId'>;
export type NodeId = Brand<string, 'NodeId'>;
export type TokenId = Brand<string, 'TokenId'>;
export type WorkflowId = Brand<string, 'WorkflowId'>;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encodeTime(ms: number): string {
  let out = '';
  let t = Math.floor(ms);
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

/**
 * Random bytes from the platform's CSPRNG, drawn 4 KiB at a time: one `getRandomValues` call per id cost ~80 µs on
 * the coordinator's hot path (an attempt id per dispatched task), a pooled byte costs nothing. The bytes are as
 * unpredictable either way; each is used once.
 */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function randomPart(len: number): string {
  if (poolAt + len > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  let out = '';
  for (let i = 0; i < len; i++) out += ALPHABET[pool[poolAt + i]! % 32];
  poolAt += len;
  return out;
}

/** A sortable unique id body: 10 chars of time + 16 chars of randomness. */
export function sortableId(now: number = Date.now()): string {
  return encodeTime(now) + randomPart(16);
}

export const newJobId = (now?: number): JobId => `job_${sortableId(now)}` as JobId;
export const newAttemptId = (now?: number): AttemptId => `att_${sortableId(now)}` as AttemptId;
export const newNodeId = (now?: number): NodeId => `node_${sortableId(now)}` as NodeId;
export const newWorkflowId = (now?: number): WorkflowId => `wf_${sortableId(now)}` as WorkflowId;
export const newTokenId = (now?: number): TokenId => `tok_${sortableId(now)}` as TokenId;
export const taskIdOf = (jobId: JobId, index: number): TaskId => `${jobId}.${index}` as TaskId;

const JOB_RE = /^job_[0-9a-z]{26}$/;
const ATTEMPT_RE = /^att_[0-9a-z]{26}$/;
const NODE_RE = /^node_[0-9a-z]{26}$/;
const WORKFLOW_RE = /^wf_[0-9a-z]{26}$/;

export const isJobId = (s: string): s is JobId => JOB_RE.test(s);
export const isAttemptId = (s: string): s is AttemptId => ATTEMPT_RE.test(s);
export const isNodeId = (s: string): s is NodeId => NODE_RE.test(s);
export const isWorkflowId = (s: string): s is WorkflowId => WORKFLOW_RE.test(s);

/** Split a task id into its job and index, or return null if it is not one. */
export function parseTaskId(s: string): { jobId: JobId; index: number } | null {
  const dot = s.lastIndexOf('.');
  if (dot < 0) return null;
  const jobId = s.slice(0, dot);
  const index = Number(s.slice(dot + 1));
  if (!isJobId(jobId) || !Number.isInteger(index) || index < 0) return null;
  return { jobId, index };
}
