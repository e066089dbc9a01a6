/**
 * DsgClient: the typed REST v1 client. Uses only a fetch (the global one by default), so it runs in Node and in browsers;
 * Node programs pass the faster `node:http` one from `@dsg/client/node`.
 * A non-2xx answer becomes the DsgError the coordinator described (same code, message and details); a network
 * failure becomes an `unavailable` DsgError that tells the user how to start a grid.
 */
import type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';
import { API_PREFIX, DsgError, ValidationError } from '@dsg/core/base';
import type {
  AuditPageV1,
  LedgerV1,
  AuditVerifyV1,
  AttemptV1,
  ErrorBodyV1,
  ErrorCode,
  HealthV1,
  Issue,
  JobV1,
  ListJobsQueryV1,
  ListTasksQueryV1,
  LogChunkV1,
  NodeV1,
  OutputV1,
  PageV1,
  SubmitJobRequestV1,
  SubmitJobResponseV1,
  TaskV1,
  RetryResponseV1,
  JobExplainV1,
  RemoveNodeResponseV1,
  StatusV1,
  GcReportV1,
  SubmitWorkflowRequestV1,
  SubmitWorkflowResponseV1,
  WorkflowV1,
  CreateTokenRequestV1,
  CreateTokenResponseV1,
  CreateJoinCodeRequestV1,
  JoinRequestV1,
  CreateJoinCodeResponseV1,
  SessionV1,
  TokenV1,
  OverviewV1,
  NodeAttemptV1,
} from '@dsg/core';

export interface DsgClientOptions {
  /** Coordinator base URL, e.g. `http://127.0.0.1:7070`. */
  readonly baseUrl: string;
  /**
   * Bearer token. Leave it out in a browser page signed in with a session (POST /session): requests then ride on
   * the httpOnly session cookie, and those that change state carry the `X-DSG-CSRF: 1` header the coordinator
   * requires with a cookie.
   */
  readonly token?: string;
  /** The fetch to use (`@dsg/client/node`'s in Node programs; a pinned one for TLS; tests). Default: global fetch. */
  readonly fetch?: FetchLike;
}

/** Error codes for answers without a DSG error body (e.g. from a proxy). */
const STATUS_CODES: Readonly<Record<number, ErrorCode>> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not_found' };

type RequestBody = NonNullable<RequestInitLike['body']>;
type Query = Record<string, string | number | undefined>;

export class DsgClient {
  readonly baseUrl: string;
  private readonly token: string | null;
  private readonly fetchImpl: FetchLike;

  constructor(options: DsgClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token ?? null;
    this.fetchImpl = options.fetch ?? ((url, init) => fetch(url, init as RequestInit) as Promise<ResponseLike>);
  }

  private url(path: string, query?: Query): string {
    const qs = query
      ? Object.entries(query)
          .filter(([, v]) => v !== undefined && v !== '')
          .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
          .join('&')
      : '';
    return `${this.baseUrl}${API_PREFIX}${path}${qs ? `?${qs}` : ''}`;
  }

  /** The raw request; resolves to the Response for 2xx, throws a DsgError otherwise. */
  async request(method: string, path: string, init: { query?: Query; json?: unknown; body?: RequestBody; headers?: Record<string, string> } = {}): Promise<ResponseLike> {
    const headers: Record<string, string> = this.token !== null
      ? { authorization: `Bearer ${this.token}`, ...init.headers }
      : { ...(method === 'GET' || method === 'HEAD' ? {} : { 'x-dsg-csrf': '1' }), ...init.headers };
    let body: RequestBody | undefined = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let res: ResponseLike;
    try {
      res = await this.fetchImpl(this.url(path, init.query), { method, headers, ...(body !== undefined ? { body, duplex: 'half' as const } : {}) });
    } catch (e) {
      if (e instanceof DsgError) throw e; // a certificate refused (see tls.ts): nothing to retry
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
      // A plain-HTTP request to a TLS port is dropped without an answer: say what that most likely means.
      const tlsHint = this.baseUrl.startsWith('http://') && /UND_ERR_SOCKET|ECONNRESET/.test(why)
        ? ` If the coordinator serves TLS (it does by default beyond loopback), use https://${this.baseUrl.slice('http://'.length)}.`
        : '';
      throw new DsgError('unavailable', `cannot reach the coordinator at ${this.baseUrl}: ${why}. Is it running? Start a grid with \`npm start\` or \`dsg up\`.${tlsHint}`);
    }
    if (res.ok) return res;
    let parsed: ErrorBodyV1 | null = null;
    try {
      parsed = (await res.json()) as ErrorBodyV1;
    } catch {
      /* not JSON */
    }
    const err = parsed?.error;
    if (err?.code === 'validation' && Array.isArray(err.details?.['issues'])) throw new ValidationError(err.details['issues'] as Issue[], undefined, { issueCount: Number(err.details['issueCount']) || 0 });
    if (err) throw new DsgError(err.code as ErrorCode, err.message, err.details);
    // No DSG error body: not the coordinator answering. A proxy's 502/503/504 means it cannot reach the
    // coordinator behind it, which is the same to the user as a refused connection (and worth retrying).
    if (res.status === 502 || res.status === 503 || res.status === 504)
      throw new DsgError('unavailable', `cannot reach the coordinator at ${this.baseUrl}: HTTP ${res.status} from ${method} ${path}. Is it running? Start a grid with \`npm start\` or \`dsg up\`.`);
    throw new DsgError(STATUS_CODES[res.status] ?? 'internal', `${method} ${path}: HTTP ${res.status}`);
  }

  private async json<T>(method: string, path: string, init: { query?: Query; json?: unknown } = {}): Promise<T> {
    return (await (await this.request(method, path, init)).json()) as T;
  }

  health = (): Promise<HealthV1> => this.json('GET', '/health');

  /** The API's OpenAPI 3.1 description (`GET /api/v1/openapi.json`; the coordinator serves it to anyone). */
  openApi = (): Promise<Record<string, unknown>> => this.json('GET', '/openapi.json');

  async hasBlob(sha256: string): Promise<boolean> {
    try {
      await this.request('HEAD', `/blobs/${sha256}`);
      return true;
    } catch (e) {
      if (e instanceof DsgError && e.code === 'not_found') return false;
      throw e;
    }
  }

  async uploadBlob(sha256: string, body: Uint8Array | ReadableStream<Uint8Array>, size: number): Promise<void> {
    await this.request('PUT', `/blobs/${sha256}`, {
      body: body as RequestBody,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
  }

  submitJob = (req: SubmitJobRequestV1): Promise<SubmitJobResponseV1> => this.json('POST', '/jobs', { json: req });
  listJobs = (q: ListJobsQueryV1 = {}): Promise<PageV1<JobV1>> => this.json('GET', '/jobs', { query: { ...q } });
  getJob = (id: string): Promise<JobV1> => this.json('GET', `/jobs/${encodeURIComponent(id)}`);
  /**
   * Cancel a job; resolves to the job once its queued tasks are cancelled (running ones are being killed). A job
   * that had already finished is left as it is: this throws a DsgError `conflict` whose `details.job` is the
   * unchanged job.
   */
  cancelJob = (id: string): Promise<JobV1> => this.json('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
  listTasks = (id: string, q: ListTasksQueryV1 = {}): Promise<PageV1<TaskV1>> => this.json('GET', `/jobs/${encodeURIComponent(id)}/tasks`, { query: { ...q } });
  getTask = (id: string, index: number): Promise<TaskV1> => this.json('GET', `/jobs/${encodeURIComponent(id)}/tasks/${index}`);
  listAttempts = (id: string, index: number): Promise<{ items: AttemptV1[] }> => this.json('GET', `/jobs/${encodeURIComponent(id)}/tasks/${index}/attempts`);
  getLogs = (id: string, index: number, q: { offset?: number; attempt?: string } = {}): Promise<LogChunkV1> =>
    this.json('GET', `/jobs/${encodeURIComponent(id)}/tasks/${index}/logs`, { query: { ...q } });
  listOutputs = (id: string): Promise<{ items: OutputV1[] }> => this.json('GET', `/jobs/${encodeURIComponent(id)}/outputs`);
  downloadOutput = (id: string, index: number, path: string): Promise<ResponseLike> =>
    this.request('GET', `/jobs/${encodeURIComponent(id)}/tasks/${index}/outputs/${path.split('/').map(encodeURIComponent).join('/')}`);
  explainJob = (id: string, task?: number): Promise<JobExplainV1> => this.json('GET', `/jobs/${encodeURIComponent(id)}/explain`, { query: { task } });
  retryJob = (id: string): Promise<RetryResponseV1 & { job: JobV1 }> => this.json('POST', `/jobs/${encodeURIComponent(id)}/retry`);

  submitWorkflow = (req: SubmitWorkflowRequestV1): Promise<SubmitWorkflowResponseV1> => this.json('POST', '/workflows', { json: req });
  listWorkflows = (q: { limit?: number; cursor?: string } = {}): Promise<PageV1<WorkflowV1>> => this.json('GET', '/workflows', { query: { ...q } });
  getWorkflow = (id: string): Promise<WorkflowV1> => this.json('GET', `/workflows/${encodeURIComponent(id)}`);
  cancelWorkflow = (id: string): Promise<WorkflowV1> => this.json('POST', `/workflows/${encodeURIComponent(id)}/cancel`);
  retryWorkflow = (id: string): Promise<RetryResponseV1 & { workflow: WorkflowV1 }> => this.json('POST', `/workflows/${encodeURIComponent(id)}/retry`);
  listWorkflowOutputs = (id: string): Promise<{ items: Array<OutputV1 & { stage: string; jobId: string }> }> =>
    this.json('GET', `/workflows/${encodeURIComponent(id)}/outputs`);

  listNodes = (): Promise<{ items: NodeV1[] }> => this.json('GET', '/nodes');
  getNode = (id: string): Promise<NodeV1> => this.json('GET', `/nodes/${encodeURIComponent(id)}`);
  /** No new work for the node (by id or name); what it runs goes on. Admin only. */
  cordonNode = (idOrName: string): Promise<NodeV1> => this.json('POST', `/nodes/${encodeURIComponent(idOrName)}/cordon`);
  /** Take the node back: ends a cordon, a drain or a quarantine. Admin only. */
  uncordonNode = (idOrName: string): Promise<NodeV1> => this.json('POST', `/nodes/${encodeURIComponent(idOrName)}/uncordon`);
  /** No new work; what it runs finishes (the node shows `draining`, then `drained`). Admin only. */
  drainNode = (idOrName: string): Promise<NodeV1> => this.json('POST', `/nodes/${encodeURIComponent(idOrName)}/drain`);
  /**
   * Forget the node. Refused (DsgError `conflict`) while it holds work, unless `force`: that work is requeued.
   * Admin only.
   */
  removeNode = (idOrName: string, opts: { force?: boolean } = {}): Promise<RemoveNodeResponseV1> =>
    this.json('POST', `/nodes/${encodeURIComponent(idOrName)}/remove`, { json: { force: opts.force ?? false } });

  /** Disk use (database, blobs, logs), jobs, workflows and nodes by state, retention settings, the latest collection. */
  status = (): Promise<StatusV1> => this.json('GET', '/status');
  /** Run a garbage collection now (admin); with dryRun, report what it would remove and change nothing. */
  gc = (opts: { dryRun?: boolean } = {}): Promise<GcReportV1> => this.json('POST', '/gc', { json: { dryRun: opts.dryRun ?? false } });
  /** Revoke a node's credential at once (admin): its socket is closed, its work requeued; it must join anew. */
  revokeNode = (id: string): Promise<{ nodeId: string; name: string; credentialsRevoked: number }> =>
    this.json('POST', `/nodes/${encodeURIComponent(id)}/revoke`);

  /** Mint a token (admin): its secret is in this answer only. */
  createToken = (req: CreateTokenRequestV1): Promise<CreateTokenResponseV1> => this.json('POST', '/tokens', { json: req });
  /** A four-word join code for new agents (admin); the code is in this answer only. */
  createJoinCode = (req: CreateJoinCodeRequestV1 = {}): Promise<CreateJoinCodeResponseV1> => this.json('POST', '/join-codes', { json: req });
  /** Machines that asked to join without a token, and what was decided (admin, reader). */
  listJoinRequests = (): Promise<{ items: JoinRequestV1[] }> => this.json('GET', '/join-requests');
  /** Let a waiting machine in (admin), by request id or name. */
  approveJoinRequest = (idOrName: string): Promise<{ request: JoinRequestV1 }> => this.json('POST', `/join-requests/${encodeURIComponent(idOrName)}/approve`, { json: {} });
  /** Turn a waiting machine away (admin), with a reason it is shown. */
  rejectJoinRequest = (idOrName: string, reason?: string): Promise<{ request: JoinRequestV1 }> =>
    this.json('POST', `/join-requests/${encodeURIComponent(idOrName)}/reject`, { json: reason ? { reason } : {} });
  /** Every token (admin), never a secret. */
  listTokens = (): Promise<{ items: TokenV1[] }> => this.json('GET', '/tokens');
  /** Revoke a token by id or name (admin), at once, with its dashboard sessions. */
  revokeToken = (idOrName: string): Promise<{ token: TokenV1 }> => this.json('DELETE', `/tokens/${encodeURIComponent(idOrName)}`);
  /** Audit log entries, newest first (admin, reader); page with `before: page.nextBefore`. */
  /** The contribution ledger, summed per node, project or user (admin, reader). */
  ledger = (q: { by?: 'node' | 'project' | 'user'; since?: string; until?: string; node?: string; project?: string; user?: string } = {}): Promise<LedgerV1> =>
    this.json('GET', '/ledger', { query: q });
  auditList = (q: { limit?: number; before?: number; action?: string; actor?: string; since?: string } = {}): Promise<AuditPageV1> =>
    this.json('GET', '/audit', { query: q });
  /** Walk the audit log's hash chain; `head` (`SEQ:HASH`) is one kept elsewhere, checked to be still in the log. */
  auditVerify = (head?: string): Promise<AuditVerifyV1> => this.json('GET', '/audit/verify', head ? { query: { head } } : {});
  /** The grid at a glance: nodes, resources in use, queues per project, throughput, recent failures. */
  overview = (): Promise<OverviewV1> => this.json('GET', '/overview');
  /** What a node (by id or name) holds now: assigned and running attempts. */
  nodeAttempts = (idOrName: string): Promise<{ items: NodeAttemptV1[] }> => this.json('GET', `/nodes/${encodeURIComponent(idOrName)}/attempts`);
  /** Sign in with a token (browser): the coordinator answers with an httpOnly session cookie. */
  signIn = (token: string): Promise<SessionV1> => this.json('POST', '/session', { json: { token } });
  /** End this browser's session. */
  signOut = async (): Promise<void> => void (await this.request('DELETE', '/session'));
  /** The change feed's address (server-sent events; open it with EventSource in a browser). */
  eventsUrl = (): string => this.url('/events');

  /** Who this client's token speaks for: role and projects. */
  whoAmI = (): Promise<SessionV1> => this.json('GET', '/session');

  /** Every task of a job, following pagination. */
  async allTasks(id: string, q: Omit<ListTasksQueryV1, 'cursor'> = {}): Promise<TaskV1[]> {
    const out: TaskV1[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listTasks(id, { ...q, limit: q.limit ?? 1000, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }
}
