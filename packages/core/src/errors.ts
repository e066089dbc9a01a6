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

/** Bad input. `issues` lists every problem found, each with the path to the offending field. */
export class ValidationError extends DsgError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], context?: string) {
    const head = context ? `${context}: ` : '';
    const lines = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    super(ErrorCode.validation, head + (lines.length === 1 ? lines[0] : `\n  ${lines.join('\n  ')}`), { issues });
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

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
