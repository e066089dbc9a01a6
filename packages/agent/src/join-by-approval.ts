/**
 * Joining by approval, the agent's side (the coordinator's is http/routes/join-requests.ts). An agent with neither
 * join token nor credential asks to join and waits:
 *
 *   no key ──make key (join-key.json, 0600)──▶ asking ──202──▶ waiting (poll every few seconds; says once what to run)
 *   waiting ──200──▶ approved: node id + credential returned (the caller saves them in node.json, deletes the key)
 *   waiting ──403──▶ rejected: returned with the admin's reason (the caller exits, see EXIT_REJECTED)
 *   any ──coordinator unreachable──▶ same state, retried with backoff (0.5 s → 10 s): a coordinator restart is a pause
 *   asking ──409 (id clash, 2^-40)──▶ make a new key, ask again
 *
 * The key is the proof that a poll comes from the machine the admin saw: only its sha256 leaves the machine's
 * state dir in a form anyone else keeps, and the short id people compare is derived from that hash
 * (`pendingNodeIdOf`), so the agent prints it before the coordinator answers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pendingNodeIdOf, type ClaimedFactsV1, type JoinRequestAnswerV1 } from '@dsg/core';

/** The exit code of `dsg agent` when the grid's admin rejected this machine (documented in its help). */
export const EXIT_REJECTED = 5;

export type ApprovalOutcome =
  | { readonly kind: 'approved'; readonly nodeId: string; readonly credential: string }
  | { readonly kind: 'rejected'; readonly message: string }
  /** The coordinator refused the request itself (a bad name, say): waiting longer cannot help. */
  | { readonly kind: 'refused'; readonly message: string }
  | { readonly kind: 'stopped' };

export interface ApprovalWait {
  readonly stateDir: string;
  readonly name: string;
  readonly facts: ClaimedFactsV1;
  readonly coordinatorUrl: string;
  readonly ask: (body: unknown) => Promise<{ status: number; body: unknown; retryAfter: number | null }>;
  readonly log: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
  readonly stopped: () => boolean;
  /** The certificate fingerprint this agent pinned (`sha256:…`), shown short for people to compare; null: none. */
  readonly pin?: string | null;
  /** Longest wait between polls, in ms (the coordinator suggests a shorter one). Default 10,000. */
  readonly maxPollMs?: number;
}

// Not unref()d: while it waits for approval, this timer is what keeps the agent process alive.
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const keyFile = (stateDir: string): string => join(stateDir, 'join-key.json');

/** The key this machine asks with (made once, kept until it has its credential). */
async function loadOrMakeKey(stateDir: string, fresh = false): Promise<string> {
  if (!fresh) {
    try {
      const k = (JSON.parse(await readFile(keyFile(stateDir), 'utf8')) as { key?: unknown }).key;
      if (typeof k === 'string' && /^[A-Za-z0-9_-]{43,86}$/.test(k)) return k;
    } catch {
      // none yet
    }
  }
  const key = randomBytes(32).toString('base64url');
  await writeFile(keyFile(stateDir), `${JSON.stringify({ key })}\n`, { mode: 0o600 });
  await chmod(keyFile(stateDir), 0o600);
  return key;
}

/** Forget the key once the credential is saved (it has no use after, and must not be read by anyone). */
export async function forgetJoinKey(stateDir: string): Promise<void> {
  await rm(keyFile(stateDir), { force: true });
}

export async function waitForApproval(o: ApprovalWait): Promise<ApprovalOutcome> {
  let key = await loadOrMakeKey(o.stateDir);
  let told = false;
  let unreachableSaid = false;
  let backoff = 500;
  const maxPoll = o.maxPollMs ?? 10_000;
  while (!o.stopped()) {
    const id = pendingNodeIdOf(createHash('sha256').update(key).digest('hex'));
    let res: Awaited<ReturnType<ApprovalWait['ask']>>;
    try {
      res = await o.ask({ key, name: o.name, facts: o.facts });
    } catch (e) {
      if (!unreachableSaid) o.log('warn', `cannot reach the coordinator at ${o.coordinatorUrl} (${e instanceof Error ? e.message : String(e)}); still waiting for approval, retrying`);
      unreachableSaid = true;
      await sleep(Math.round(backoff * (0.5 + Math.random())));
      backoff = Math.min(10_000, backoff * 2);
      continue;
    }
    if (unreachableSaid) o.log('info', 'reached the coordinator again; still waiting for approval');
    unreachableSaid = false;
    backoff = 500;
    const answer = res.body as Partial<JoinRequestAnswerV1> & { error?: { code?: string; message?: string } };
    if (res.status === 200 && answer.credential && answer.request?.nodeId) {
      o.log('info', `the grid's admin (${answer.request.decidedBy ?? '?'}) approved this machine (${id}): joining as node ${answer.request.nodeId}`);
      return { kind: 'approved', nodeId: answer.request.nodeId, credential: answer.credential };
    }
    if (res.status === 202) {
      if (!told) {
        // Once, and plainly: what the person at this machine must ask the admin to run, and what to compare.
        o.log('warn', [
          `this machine waits for the grid's admin to let it in: pending node ${id} (name ${o.name}).`,
          `  On the coordinator, run:   dsg node approve ${id}      (or: dsg node approve ${o.name})`,
          `  Before approving, the admin checks that \`dsg node list --pending\` shows the same id ${id} for ${o.name}.`,
          ...(o.pin ? [`  This agent trusts the grid's certificate ${o.pin.slice(0, 'sha256:'.length + 16)}…: \`dsg node list --pending\` on the admin's side shows the grid's; they must match.`] : []),
          '  This agent keeps waiting (Ctrl-C to give up); it starts working as soon as it is approved.',
        ].join('\n'));
        told = true;
      }
      await sleep(Math.min(maxPoll, Math.max(1000, (answer.pollAfterSeconds ?? 3) * 1000)));
      continue;
    }
    if (res.status === 403 && answer.error?.code === 'join_rejected') return { kind: 'rejected', message: answer.error.message ?? 'the grid\'s admin rejected this machine' };
    if (res.status === 409) {
      key = await loadOrMakeKey(o.stateDir, true);
      continue;
    }
    if (res.status === 429) {
      const wait = (res.retryAfter ?? 60) * 1000;
      o.log('warn', `${answer.error?.message ?? 'the coordinator asks to slow down'}; asking again in ${Math.round(wait / 1000)} s`);
      await sleep(wait);
      continue;
    }
    if (res.status >= 500) {
      await sleep(Math.min(maxPoll, 5000));
      continue;
    }
    return { kind: 'refused', message: `the coordinator refused this machine's request to join (HTTP ${res.status}): ${answer.error?.message ?? JSON.stringify(res.body).slice(0, 300)}` };
  }
  return { kind: 'stopped' };
}
