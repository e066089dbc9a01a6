/** The one place where errors become HTTP statuses and ErrorBodyV1 bodies. */
import { isDsgError, type ErrorBodyV1, type ErrorCode } from '@dsg/core';

const STATUS: Record<ErrorCode, number> = {
  validation: 400,
  not_found: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  too_large: 413,
  unavailable: 503,
  over_limit: 429,
  illegal_transition: 409,
  internal: 500,
};

export function toHttpError(e: unknown): { status: number; body: ErrorBodyV1 } {
  if (isDsgError(e)) {
    const body: ErrorBodyV1 = { error: { code: e.code, message: e.message } };
    if (e.details) body.error.details = e.details;
    return { status: STATUS[e.code], body };
  }
  // Fastify's own errors (bad JSON, body too large, unsupported media type) carry a statusCode.
  const fe = e as { statusCode?: number; message?: string; code?: string };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode === 413 ? 'too_large' : fe.statusCode === 415 ? 'validation' : fe.statusCode === 404 ? 'not_found' : 'validation';
    return { status: fe.statusCode, body: { error: { code, message: fe.message ?? 'bad request' } } };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error (see the coordinator log)' } } };
}
