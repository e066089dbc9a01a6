/**
 * AgentHub: the WebSocket side of the agent protocol (the real adapter of the engine's AgentLink port).
 *
 * Per connection:  upgrade (token checked, 401 otherwise) → awaiting hello (10 s) → ready → closed.
 * Identity: the upgrade's token is either the join token (or an admin token), which may only register a *new*
 * node — a hello claiming an existing node id with it is registered as a new node, never as that one — or a node
 * credential, which may only speak for its own node. A new node gets its credential in the `welcome`. How many
 * nodes one join token may register per minute is limited (`maxJoinsPerMinute`): beyond it the hello is answered
 * with an `error` (code `rate_limited`) and the socket closed (4029).
 *
 * Only one live connection per node: a newer hello for the same node id closes the older socket. Frames are
 * parsed and validated with core's protocol schemas; a malformed frame gets an `error` message and is dropped,
 * and the connection stays up (one bad report must not cost a node its running tasks).
 */
import { actorOf, type AuditLog } from '../service/audit-log.js';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  AGENT_WS_PATH,
  DSG_VERSION,
  isDsgError,
  UnauthorizedError,
  newNodeId,
  parseAgentFrame,
  type CoordinatorMessage,
  type NodeId,
} from '@dsg/core';
import { requireCapability, type Authenticator, type Principal } from '../auth.js';
import type { AgentRefusals } from '../security/agent-refusals.js';
import type { Clock } from '../clock.js';
import type { AgentEvents, AgentLink } from './agent-events.js';
import type { Logger } from '../logger.js';

interface Session {
  readonly ws: WebSocket;
  nodeId: NodeId | null;
  /** Who opened the socket: the join token, an admin token, or a node credential. */
  readonly principal: Principal;
  /** Messages to this agent gathered in this turn of the event loop, sent as one frame (see `send`). */
  outbox: CoordinatorMessage[];
  flushQueued: boolean;
}

export interface AgentHubOptions {
  /** Where a node joining is recorded (who let it in: the join token; from where: its address). */
  readonly audit?: AuditLog;
  /** New nodes one join (or admin) token may register per minute. Default 60. */
  readonly maxJoinsPerMinute?: number;
  /** Largest WebSocket frame accepted from an agent, in bytes; a bigger one closes the socket (1009). Default 16 MiB. */
  readonly maxPayloadBytes?: number;
  /** Where refused hellos are counted. */
  readonly refusals?: AgentRefusals;
  /**
   * Called with the client's address when an upgrade's token is refused; throws (OverLimitError, answered 429) when
   * that address, or everyone together, has failed too often: the API's failed-auth limit, so guessing join codes
   * over the agent socket meets the same bound as over HTTP. Default: not counted.
   */
  readonly onFailedAuth?: (ip: string) => void;
  /**
   * Count one node admitted with a join token or code; false when a code's uses are spent (the hello is refused).
   * Default: not counted.
   */
  readonly useToken?: (tokenId: string) => Promise<boolean>;
}

export class AgentHub implements AgentLink {
  private readonly wss: WebSocketServer;
  /** Registration times per token id in the last minute (join rate limit). */
  private readonly joins = new Map<string, number[]>();
  private readonly byNode = new Map<NodeId, Session>();
  private readonly connected = new Set<NodeId>();

  constructor(
    private readonly engine: AgentEvents,
    private readonly auth: Authenticator,
    private readonly clock: Clock,
    private readonly heartbeatIntervalMs: number,
    private readonly log: Logger,
    private readonly options: AgentHubOptions = {},
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes ?? 16 * 1024 * 1024 });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== AGENT_WS_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.auth
        .authenticate(req.headers.authorization)
        .then((p) => {
          requireCapability(p, 'agent');
          this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req, p));
        })
        .catch((e: unknown) => {
          if (e instanceof UnauthorizedError && this.options.onFailedAuth) {
            try {
              this.options.onFailedAuth(req.socket.remoteAddress ?? '?');
            } catch (over) {
              e = over;
            }
          }
          const msg = isDsgError(e) ? e.message : 'unauthorized';
          const status = isDsgError(e) && e.code === 'forbidden' ? '403 Forbidden' : isDsgError(e) && e.code === 'over_limit' ? '429 Too Many Requests' : '401 Unauthorized';
          socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${msg}\n`);
        });
    });
  }

  connectedNodes(): ReadonlySet<NodeId> {
    return this.connected;
  }

  /**
   * Messages to a node are gathered for the rest of this turn of the event loop and sent as one frame: a report
   * commit's `ack` and the `assign` of the dispatch pass it triggers (which runs in the next `setImmediate`) share a
   * frame. Each frame is a socket write whose cost on loopback includes the receiver's TCP processing — profiled,
   * writes were ~7% of the coordinator's time at 2,000 × `true`. Order is kept: frames go out in the order queued.
   */
  send(nodeId: NodeId, messages: readonly CoordinatorMessage[]): boolean {
    const s = this.byNode.get(nodeId);
    if (!s || s.ws.readyState !== s.ws.OPEN) return false;
    s.outbox.push(...messages);
    if (!s.flushQueued) {
      s.flushQueued = true;
      setImmediate(() => this.flushOutbox(s));
    }
    return true;
  }

  private flushOutbox(s: Session): void {
    s.flushQueued = false;
    const msgs = s.outbox;
    if (msgs.length === 0) return;
    s.outbox = [];
    if (s.ws.readyState === s.ws.OPEN) s.ws.send(JSON.stringify(msgs.length === 1 ? msgs[0] : msgs));
  }

  disconnect(nodeId: NodeId, reason: string): void {
    const s = this.byNode.get(nodeId);
    if (!s) return;
    this.byNode.delete(nodeId);
    this.connected.delete(nodeId);
    this.flushOutbox(s);
    s.ws.close(4000, reason.slice(0, 100));
    setTimeout(() => s.ws.terminate(), 2000).unref();
  }

  async close(): Promise<void> {
    for (const s of this.byNode.values()) {
      this.flushOutbox(s);
      s.ws.close(1001, 'coordinator shutting down');
    }
    this.byNode.clear();
    this.connected.clear();
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage, principal: Principal): void {
    const session: Session = { ws, nodeId: null, principal, outbox: [], flushQueued: false };
    const address = req.socket.remoteAddress ?? null;
    const helloTimer = setTimeout(() => {
      if (!session.nodeId) ws.close(4001, 'no hello within 10s');
    }, 10_000);
    helloTimer.unref();
    // Messages are handled strictly in arrival order: a hello must be registered before the reports behind it.
    let chain = Promise.resolve();
    ws.on('message', (data) => {
      chain = chain.then(() => this.onFrame(session, String(data), address)).catch((e: unknown) => {
        this.log.error({ err: e, nodeId: session.nodeId }, 'handling an agent frame failed');
      });
    });
    ws.on('close', () => {
      clearTimeout(helloTimer);
      const id = session.nodeId;
      if (id && this.byNode.get(id) === session) {
        this.byNode.delete(id);
        this.connected.delete(id);
        // After the frames that came before the close (its last reports), like everything else on this socket.
        chain = chain.then(() => this.engine.onDisconnect(id)).catch((e: unknown) => this.log.error({ err: e }, 'marking node offline failed'));
      }
    });
    ws.on('error', (e) => this.log.warn({ err: e, nodeId: session.nodeId }, 'agent socket error'));
  }

  private async onFrame(session: Session, text: string, address: string | null): Promise<void> {
    let messages;
    try {
      messages = parseAgentFrame(text);
    } catch (e) {
      this.sendRaw(session, { type: 'error', code: 'validation', message: `bad frame: ${e instanceof Error ? e.message.slice(0, 500) : String(e)}` });
      return;
    }
    for (const m of messages) {
      if (m.type === 'hello') {
        const p = session.principal;
        let claimed: NodeId | null = null;
        if (p.nodeId) {
          if (m.nodeId && m.nodeId !== p.nodeId) {
            const msg = `this credential belongs to node ${p.nodeId}; it cannot speak for node ${m.nodeId}`;
            this.options.refusals?.refuse(p.nodeId, 'hello', null, msg);
            this.sendRaw(session, { type: 'error', code: 'forbidden', message: msg });
            session.ws.close(4003, 'credential of another node');
            return;
          }
          claimed = p.nodeId;
        } else {
          const limit = this.options.maxJoinsPerMinute ?? 60;
          if (!this.takeJoin(p.tokenId, limit)) {
            this.sendRaw(session, {
              type: 'error',
              code: 'rate_limited',
              message: `this join token has registered ${limit} nodes in the last minute, the most it may; try again in a minute (an agent that already joined reconnects with its own credential and is not limited)`,
            });
            session.ws.close(4029, 'too many nodes joined with this token');
            return;
          }
          // A join code admits at most its number of machines: counted atomically, so a race for the last use
          // lets one in (the upgrade already refused a code that was used up then).
          if (this.options.useToken && !(await this.options.useToken(p.tokenId))) {
            this.sendRaw(session, { type: 'error', code: 'forbidden', message: 'this join code is used up: it has admitted all the machines it may; ask the grid\'s admin for a new one (dsg join-code create --uses N)' });
            session.ws.close(4003, 'join code used up');
            return;
          }
        }
        // A node credential names its node: it registers under that id even when the node has no record yet (approved
        // by `dsg node approve`, which reserves the id) or no longer (removed while its agent ran on).
        const nodeId = await this.engine.onHello({ ...m, nodeId: claimed }, claimed ?? newNodeId(this.clock.now()), address);
        if (!p.nodeId && m.nodeId) {
          // No takeover with the join token: whoever claims an existing id without its credential is a new node.
          this.options.refusals?.refuse(nodeId, 'hello', null, `hello claimed node ${m.nodeId} without that node's credential; registered as a new node ${nodeId} instead`);
        }
        // A new node (joined with the join token, a join code or an admin token) gets its own credential, shown once.
        const credential = p.nodeId === nodeId ? undefined : await this.auth.issueNodeCredential(nodeId, m.name, this.clock.now());
        // Not awaited: the welcome must not wait for the audit commit (the entry is queued in order all the same).
        if (credential) void this.options.audit?.record(actorOf(p), 'node.joined', nodeId, { name: m.name, agentVersion: m.agentVersion }, address ?? '');
        const previous = this.byNode.get(nodeId);
        if (previous && previous !== session) {
          previous.nodeId = null; // its close must not mark the node offline
          this.flushOutbox(previous);
          previous.ws.close(4002, 'replaced by a newer connection from the same node');
        }
        session.nodeId = nodeId;
        this.byNode.set(nodeId, session);
        this.connected.add(nodeId);
        this.sendRaw(session, { type: 'welcome', nodeId, heartbeatIntervalMs: this.heartbeatIntervalMs, coordinatorVersion: DSG_VERSION, ...(credential ? { credential } : {}) });
        this.engine.onNodeReady();
        continue;
      }
      const nodeId = session.nodeId;
      if (!nodeId) {
        this.sendRaw(session, { type: 'error', code: 'protocol', message: `expected hello first, got ${m.type}` });
        continue;
      }
      switch (m.type) {
        case 'heartbeat':
          this.engine.onHeartbeat(nodeId, m.running, m.usage);
          break;
        case 'started':
          this.engine.onStarted(nodeId, m.attemptId, m.at);
          break;
        case 'log':
          this.engine.onLog(nodeId, m.attemptId, m.data);
          break;
        case 'finished':
          this.engine.onFinished(nodeId, m);
          break;
        case 'stopping':
          await this.engine.onStopping(nodeId, m.reason);
          break;
        case 'policy':
          this.engine.onPolicy(nodeId, m.policy);
          break;
      }
    }
  }

  /** Count one registration against the token's per-minute budget; false when the budget is spent. */
  private takeJoin(tokenId: string, limit: number): boolean {
    const now = this.clock.now();
    const recent = (this.joins.get(tokenId) ?? []).filter((t) => t > now - 60_000);
    if (recent.length >= limit) {
      this.joins.set(tokenId, recent);
      return false;
    }
    recent.push(now);
    this.joins.set(tokenId, recent);
    return true;
  }

  /** Send now, after whatever is gathered for this agent (a close may follow). */
  private sendRaw(session: Session, msg: CoordinatorMessage): void {
    session.outbox.push(msg);
    this.flushOutbox(session);
  }
}
