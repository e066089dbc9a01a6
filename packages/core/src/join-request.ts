/**
 * Joining by approval (wire types, pure). A machine with neither join token nor join code asks to join
 * (`POST /api/v1/join-requests`, no token) and waits, as a **pending node**, until an admin approves or rejects it
 * (`dsg node approve|reject`). The asking agent proves it is the same machine on every poll with a secret `key`
 * that it generated and keeps in its state dir; the coordinator stores only the key's sha256, and the pending
 * node's short id is derived from that hash, so the agent can print it before the coordinator answers and an admin
 * can compare the id on the agent's screen with `dsg node list --pending` (a classmate's laptop that claims the
 * same name has another key, hence another id, and cannot collect this one's credential).
 *
 * Everything in a request is a claim by an unauthenticated machine: bounded here, shown as "claimed" elsewhere.
 */
import { z } from 'zod';

/** Crockford's base32: no I, L, O or U, so an id read aloud or off a projector is not misheard. */
const ID_SYMBOLS = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The pending node's id, `ABCD-EFGH` (40 bits), from the sha256 (hex) of the agent's key. Ids are unique in the
 * store (a clash with a live request is refused and the agent makes a new key), so an attacker cannot take over
 * an id that is already shown; and since the key stays on the agent, nobody can aim at an id before it exists.
 */
export function pendingNodeIdOf(keySha256Hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(keySha256Hex)) throw new RangeError('expected a sha256 in hex (64 lowercase digits)');
  // The first 40 bits of the hash, 5 bits per symbol.
  const bits = BigInt(`0x${keySha256Hex.slice(0, 10)}`);
  let out = '';
  for (let i = 7; i >= 0; i--) out += ID_SYMBOLS[Number((bits >> BigInt(i * 5)) & 31n)];
  return `${out.slice(0, 4)}-${out.slice(4)}`;
}

/** What a machine says about itself while it asks (bounded: it is unauthenticated). */
export const ClaimedFactsV1Schema = z.strictObject({
  hostname: z.string().max(253),
  os: z.string().max(200),
  arch: z.string().max(50),
  cpuModel: z.string().max(200),
  cores: z.number().int().min(0).max(100_000),
  memoryBytes: z.number().int().min(0).max(2 ** 53 - 1),
  /** GPU models. */
  gpus: z.array(z.string().max(200)).max(64),
});
export type ClaimedFactsV1 = z.infer<typeof ClaimedFactsV1Schema>;

/** Node names: what `dsg nodes` shows and `dsg node approve NAME` takes. */
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** `POST /api/v1/join-requests` (no token): ask to join, or poll the request made with the same key. */
export const JoinRequestV1Schema = z.strictObject({
  key: z.string({ error: 'expected the agent\'s request key' }).regex(/^[A-Za-z0-9_-]{43,86}$/, { error: 'expected a random key of 32 to 64 bytes in base64url' }),
  name: z.string({ error: 'expected a node name' }).regex(NODE_NAME_RE, { error: 'expected a node name of 1 to 63 letters, digits, ".", "_" or "-" (start with a letter or digit); give the agent --name' }),
  facts: ClaimedFactsV1Schema,
});
export type JoinRequestV1 = z.infer<typeof JoinRequestV1Schema>;

export const PENDING_NODE_STATES = ['pending', 'approved', 'rejected'] as const;
export type PendingNodeState = (typeof PENDING_NODE_STATES)[number];

/** A machine that asked to join (`GET /api/v1/nodes?state=pending`, and the answer to the asking agent). */
export interface PendingNodeV1 {
  /** Short id derived from the agent's key (`K7Q2-M9XD`): compare it with what the agent prints. */
  id: string;
  /** The name it asked for (a claim). */
  name: string;
  state: PendingNodeState;
  /** The address its requests come from (as the coordinator sees it). */
  address: string;
  /** What it says about itself: claimed, not verified. */
  claimedFacts: ClaimedFactsV1;
  createdAt: string;
  /** Its last poll. A pending request not polled for `pendingNodeTtl` (24 h) is forgotten. */
  lastSeenAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  /** Why it was rejected (told to the agent), if the admin said. */
  reason: string | null;
  /** Approved: the node id it joins as. */
  nodeId: string | null;
}

/** The answer to the asking agent: its request; once approved (200), its node id and its own credential too. */
export interface JoinRequestAnswerV1 {
  request: PendingNodeV1;
  /** Only in a 200 answer to the key holder; a repeat answer revokes the credential handed out before. */
  credential?: string;
  /** How long to wait before polling again, in seconds. */
  pollAfterSeconds?: number;
}

/** `POST /api/v1/nodes/:id/approve|reject`. */
export const DecideNodeRequestV1Schema = z.strictObject({
  reason: z.string({ error: 'expected a reason' }).trim().min(1).max(500, { error: 'at most 500 characters' }).optional(),
});
export type DecideNodeRequestV1 = z.infer<typeof DecideNodeRequestV1Schema>;
