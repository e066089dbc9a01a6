/**
 * A fake coordinator for agent tests: a WebSocket server that welcomes each agent's hello, hands every message the
 * agent sends (a frame holds one or an array) to `onMessage`, and acknowledges `finished` reports as the coordinator
 * does once they are committed. `send` talks to the agent that said hello last.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakeCoordinator {
  readonly url: string;
  /** Sends a message to the agent that said hello last. */
  send(m: unknown): void;
  close(): Promise<void>;
}

export async function startFakeCoordinator(options: {
  readonly nodeId: string;
  readonly heartbeatIntervalMs?: number;
  readonly onMessage?: (m: Record<string, unknown>) => void;
}): Promise<FakeCoordinator> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  let sock: WebSocket | null = null;
  wss.on('connection', (ws) => {
    ws.on('message', (d) => {
      const parsed = JSON.parse(String(d)) as Record<string, unknown> | Array<Record<string, unknown>>;
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
        if (m['type'] === 'hello') {
          sock = ws;
          ws.send(JSON.stringify({ type: 'welcome', nodeId: options.nodeId, heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000, coordinatorVersion: 't' }));
        }
        options.onMessage?.(m);
        if (m['type'] === 'finished') ws.send(JSON.stringify({ type: 'ack', attemptIds: [m['attemptId']] }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    send: (m) => sock!.send(JSON.stringify(m)),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
      await new Promise((r) => server.close(r));
    },
  };
}
