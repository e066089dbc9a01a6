import type { FastifyRequest } from 'fastify';
import type { AuditAction } from '@dsg/core';
import type { Capability, Principal } from '../../auth.js';

/** Authenticate a request and require a capability; the principal is kept on the request. */
export type Authed = (req: FastifyRequest, cap: Capability) => Promise<Principal>;

/**
 * Record a state-changing action in the audit log, as the request's principal (or `as`, for a sign-in, where the
 * principal is only known after the route ran), from the request's address. Resolves once stored; never rejects.
 */
export type Audit = (req: FastifyRequest, action: AuditAction, target: string, detail?: Record<string, unknown>, as?: Principal) => Promise<unknown>;
