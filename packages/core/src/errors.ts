/**
 * Typed errors. Every error the system raises on purpose is a DsgError with a stable `code`; the HTTP layer maps
 * codes to statuses in one place (coordinator/src/http/error-map.ts) and clients turn the wire form back into a
 * DsgError, so a CLI user sees the same message the coordinator wrote.
 */
export const ErrorCode = {
  validation: 'validation',
  notFound: 'not_found',
  conflict: 'conflict',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  tooLarge: 'too_large',
  unavailable: 'unavailable',
  overLimit: 'over_limit',
  illegalTransition: 'illegal_transition',
  internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One problem in a piece of input, located by a path such as `resources.memory` or `array[3]`. */
export interface Issue {
  readonly path: string;
  readonly message: string;
}

export class DsgError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'DsgError';
    this.code = code;
    this.details = details;
  }
}

/** Problems kept in a ValidationError's `issues` (and its wire details): the rest are only counted. */
export const MAX_REPORTED_ISSUES = 50;
/** Problems spelled out in a ValidationError's message. */
const MAX_MESSAGE_ISSUES = 20;
/** Longest line of a ValidationError's message (an issue quoting a huge value is cut). */
const MAX_ISSUE_LINE = 300;

/**
 * Bad input. `issues` lists the first problems found (at most MAX_REPORTED_ISSUES), each with the path to the
 * offending field; `issueCount` counts them all. Bounded so that a list of 100,000 bad values answers with a small
 * error at once (it once made a 20 MB response that took 5–6 s): the first problems show what is wrong, the
 * count how much.
 */
export class ValidationError extends DsgError {
  readonly issues: readonly Issue[];
  /** Every problem found, including those not kept in `issues`. */
  readonly issueCount: number;
  constructor(issues: readonly Issue[], context?: string, options?: { readonly issueCount?: number }) {
    const head = context ? `${context}: ` : '';
    const total = Math.max(issues.length, options?.issueCount ?? 0);
    const kept = issues.length > MAX_REPORTED_ISSUES ? issues.slice(0, MAX_REPORTED_ISSUES) : issues;
    const lines = kept.slice(0, MAX_MESSAGE_ISSUES).map((i) => cutLine(i.path ? `${i.path}: ${i.message}` : i.message));
    if (total > lines.length) lines.push(`… and ${total - lines.length} more problems (${total} in all); fix these and check again`);
    super(ErrorCode.validation, head + (lines.length === 1 ? lines[0] : `\n  ${lines.join('\n  ')}`), total > kept.length ? { issues: kept, issueCount: total } : { issues: kept });
    this.name = 'ValidationError';
    this.issues = kept;
    this.issueCount = total;
  }
}

const cutLine = (s: string): string => (s.length > MAX_ISSUE_LINE ? `${s.slice(0, MAX_ISSUE_LINE - 1)}…` : s);

export class NotFoundError extends DsgError {
  constructor(what: string, id: string) {
    super(ErrorCode.notFound, `${what} ${id} not found`, { what, id });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends DsgError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.conflict, message, details);
    this.name = 'ConflictError';
  }
}

export class UnauthorizedError extends DsgError {
  constructor(message = 'missing or invalid token') {
    super(ErrorCode.unauthorized, message);
    this.name = 'UnauthorizedError';
  }
}

export class ForbiddenError extends DsgError {
  constructor(message: string) {
    super(ErrorCode.forbidden, message);
    this.name = 'ForbiddenError';
  }
}

export class IllegalTransitionError extends DsgError {
  constructor(kind: string, from: string, to: string) {
    super(ErrorCode.illegalTransition, `illegal ${kind} transition ${from} → ${to}`, { kind, from, to });
    this.name = 'IllegalTransitionError';
  }
}

/** Refused at ingress because a limit is reached (HTTP 429); `retryAfterSeconds` says when to try again. */
export class OverLimitError extends DsgError {
  constructor(message: string, readonly retryAfterSeconds: number, details: Record<string, unknown> = {}) {
    super(ErrorCode.overLimit, message, { ...details, retryAfterSeconds });
    this.name = 'OverLimitError';
  }
}

export const isDsgError = (e: unknown): e is DsgError => e instanceof DsgError;
