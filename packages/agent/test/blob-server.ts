// Test helper (not a test file): a small real HTTP server standing in for the coordinator's blob and output
// endpoints, counting blob downloads, and a helper that runs one attempt through the real runner against it.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AgentMessage, Assignment, FinishedMessage } from '@dsg/core';
import { AttemptRun, type CoordinatorHttp, NativeExecutor } from '@dsg/agent';

export const TOKEN = 't0k';
export const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

export interface BlobServer {
  readonly url: string;
  /** Content served for each sha256 (tests may serve wrong content on purpose). */
  readonly blobs: Map<string, Buffer>;
  /** Blobs sent without a content-length (chunked), as a proxy might. */
  readonly chunked: Set<string>;
  /** GET /blobs/:sha256 requests answered, per sha256. */
  readonly gets: Map<string, number>;
  readonly uploads: Map<string, { sha: string; body: string }>;
  close(): Promise<void>;
}

export async function startBlobServer(): Promise<BlobServer> {
  const blobs = new Map<string, Buffer>();
  const chunked = new Set<string>();
  const gets = new Map<string, number>();
  const uploads = new Map<string, { sha: string; body: string }>();
  const server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end();
    const m = /^\/api\/v1\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      const body = blobs.get(m[1]!);
      if (!body) return void res.writeHead(404).end();
      gets.set(m[1]!, (gets.get(m[1]!) ?? 0) + 1);
      if (chunked.has(m[1]!)) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(body);
        return void res.end();
      }
      return void res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
    }
    const o = /^\/api\/v1\/attempts\/([^/]+)\/outputs\/(.+)$/.exec(req.url ?? '');
    if (req.method === 'PUT' && o) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        uploads.set(decodeURIComponent(o[2]!), { sha: String(req.headers['x-dsg-sha256']), body: body.toString() });
        res.writeHead(sha(body) === req.headers['x-dsg-sha256'] ? 204 : 400).end();
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    blobs,
    chunked,
    gets,
    uploads,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let seq = 0;
export const assignment = (over: Partial<Assignment>): Assignment => ({
  attemptId: `att_${process.pid.toString(36)}${(++seq).toString(36).padStart(6, '0')}`.padEnd(30, '0'),
  attemptNumber: 1, jobId: 'job_x', jobName: 'x', taskId: 'job_x.0', taskIndex: 0, taskCount: 1, arrayValue: null,
  run: { kind: 'script', script: 'true' }, env: {}, inputs: [], outputs: [], timeoutMs: 10_000,
  resources: { cpuMillis: 1000, memoryBytes: 1, gpus: 0, diskBytes: 0 }, ...over,
});

/** Runs one attempt through the real runner and a real process; returns its report and its stdout+stderr. */
export async function runAttempt(a: Assignment, http: CoordinatorHttp, workDir: string): Promise<{ fin: FinishedMessage; logs: string }> {
  const sent: AgentMessage[] = [];
  const run = new AttemptRun(a, { executor: new NativeExecutor(), http, workDir, baseEnv: { PATH: process.env['PATH']! }, keepWorkDirs: false, send: (m) => sent.push(m) });
  const fin = await run.done;
  return { fin, logs: sent.filter((m) => m.type === 'log').map((m) => (m as { data: string }).data).join('') };
}
