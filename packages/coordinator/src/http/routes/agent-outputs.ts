/**
 * Output uploads from agents: `PUT /api/v1/attempts/:attemptId/outputs/<path>`, the file as the body, its sha256 in
 * `x-dsg-sha256`. An upload is accepted only
 *  - from the node the attempt is assigned to (its node credential; see auth.ts),
 *  - while the attempt is active (not after it ended),
 *  - for a path that one of the job's declared output globs (`outputs` + `optionalOutputs`) matches,
 *  - within the per-attempt quota of bytes (OutputLedger; every upload counts, a repeated path too).
 * A refused upload is answered with the API's error format and counted as a refusal of the sending node.
 * Also `GET /api/v1/security/refusals` (admin): the agent messages refused so far, per node and kind.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  API_PREFIX,
  ConflictError,
  DsgError,
  ForbiddenError,
  isAttemptId,
  isTerminalAttempt,
  NotFoundError,
  outputPathMatcher,
} from '@dsg/core';
import { parseOr400 } from '../parse.js';
import type { Store } from '@dsg/store';
import type { Engine } from '../../engine/engine.js';
import type { BlobStore } from '../../files/blob-store.js';
import type { Authed } from './authed.js';
import { binary, noBody, routeSchema as S } from '../openapi.js';
import { z } from 'zod';

const UploadHeaders = z.object({ 'x-dsg-sha256': z.string({ error: 'expected the sha256 of the file' }).regex(/^[0-9a-f]{64}$/, { error: 'expected the sha256 of the file' }).meta({ description: 'The file\'s sha256, lowercase hex.' }) });
const RefusalsResponse = z.strictObject({
  total: z.number().int(),
  items: z.array(z.strictObject({ nodeId: z.string(), kind: z.string(), count: z.number().int(), lastAt: z.number().meta({ description: 'Epoch milliseconds.' }), lastReason: z.string() })),
});

export interface AgentOutputRouteDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly blobs: BlobStore;
  readonly authed: Authed;
  /** Largest single file accepted. */
  readonly maxUploadBytes: number;
  readonly requireStream: (req: FastifyRequest) => Readable;
}


export function agentOutputRoutes(app: FastifyInstance, deps: AgentOutputRouteDeps): void {
  const { store, engine, blobs, authed } = deps;

  app.put(`${API_PREFIX}/attempts/:attemptId/outputs/*`, {
    schema: S({
      summary: 'Upload an output file of an attempt (agents, with their node credential)', tags: ['agents'],
      params: z.strictObject({ attemptId: z.string(), '*': z.string().meta({ description: 'The output\'s path (slashes allowed); a declared output must match it.' }) }),
      headers: UploadHeaders, body: binary('The file.'), response: { 204: noBody('Stored.') }, errors: [404, 409, 413, 415],
    }),
  }, async (req, reply) => {
    const principal = await authed(req, 'outputs:write');
    const { attemptId, '*': path } = req.params as { attemptId: string; '*': string };
    const sha256 = parseOr400(UploadHeaders, { 'x-dsg-sha256': req.headers['x-dsg-sha256'] }, 'headers')['x-dsg-sha256'];
    const attempt = isAttemptId(attemptId) ? await store.getAttempt(attemptId) : null;
    if (!attempt) throw new NotFoundError('attempt', attemptId);
    const sender = principal.nodeId ?? `token ${principal.tokenId}`;
    const refuse = (e: DsgError): never => {
      engine.refusals.refuse(sender, 'upload', attemptId, e.message);
      throw e;
    };
    if (principal.nodeId !== attempt.nodeId)
      refuse(new ForbiddenError(principal.nodeId
        ? `attempt ${attemptId} is assigned to another node; a node can upload outputs only for its own attempts`
        : `outputs are uploaded with the credential of the node that ran the attempt, not with a ${principal.role} token`));
    if (isTerminalAttempt(attempt.state)) refuse(new ConflictError(`attempt ${attemptId} has already ended (${attempt.state}); its outputs are no longer accepted`));
    const job = await engine.jobs.get(attempt.jobId);
    const globs = job ? [...job.compiled.outputs, ...job.compiled.optionalOutputs] : [];
    if (!outputPathMatcher(globs)(path))
      refuse(new ForbiddenError(`output path "${path}" matches none of the outputs job ${attempt.jobId} declared (${globs.length ? globs.map((g) => JSON.stringify(g)).join(', ') : 'none'})`));
    const body = deps.requireStream(req);
    await engine.uploads.serialise(attemptId, async () => {
      const remaining = engine.uploads.remaining(attemptId);
      const announced = Number(req.headers['content-length'] ?? NaN);
      const quota = engine.uploads.quotaBytes;
      if (remaining === 0 || announced > remaining)
        refuse(new DsgError('too_large', `attempt ${attemptId} may upload at most ${quota} bytes of outputs in all, and ${remaining} bytes are left`));
      try {
        const { size } = await blobs.put(sha256, body, Math.min(deps.maxUploadBytes, remaining));
        engine.uploads.record(attemptId, path, { sha256, size });
      } catch (e) {
        if (e instanceof DsgError && e.code === 'too_large')
          refuse(new DsgError('too_large', `output "${path}" goes over the quota: attempt ${attemptId} may upload at most ${quota} bytes of outputs in all (and ${deps.maxUploadBytes} per file)`));
        throw e;
      }
    });
    return reply.status(204).send();
  });

  app.get(`${API_PREFIX}/security/refusals`, { schema: S({ summary: 'Agent messages refused so far, per node and kind', tags: ['agents'], response: { 200: RefusalsResponse } }) }, async (req) => {
    await authed(req, 'grid:read');
    return { total: engine.refusals.total, items: engine.refusals.list() };
  });
}
