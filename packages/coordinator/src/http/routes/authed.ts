import type { FastifyRequest } from 'fastify';
import type { Capability, Principal } from '../../auth.js';

/** Authenticate a request and require a capability; the principal is kept on the request. */
export type Authed = (req: FastifyRequest, cap: Capability) => Promise<Principal>;
