/**
 * The live connection: one EventSource on `/api/v1/events` for the whole page. Pages register what they show
 * (topics) and a reload function; a `change` event reloads the pages whose topics it names. After any reconnect
 * (a coordinator restart, a network blip) everything reloads, since events may have been missed meanwhile.
 *
 *   connecting ──hello──▶ live ──error──▶ reconnecting ──(EventSource retries every 2 s)──▶ live (reload all)
 *                                        └─ closed by the browser (a 401/429 answer) ──▶ new EventSource in 3 s
 */
import { useEffect, useState } from 'preact/hooks';
import type { ChangeEventV1, ChangeTopic, FeedHelloV1 } from '@dsg/core';

export type LiveState = 'connecting' | 'live' | 'reconnecting';
type Listener = { topics: readonly ChangeTopic[]; reload: () => void };

const listeners = new Set<Listener>();
const stateListeners = new Set<(s: LiveState) => void>();
let state: LiveState = 'connecting';
let source: EventSource | null = null;
let instance: string | null = null;
let url = '';

function setState(s: LiveState): void {
  state = s;
  for (const l of stateListeners) l(s);
}

function reloadAll(): void {
  for (const l of listeners) l.reload();
}

export function connectLive(eventsUrl: string): void {
  url = eventsUrl;
  source?.close();
  const es = new EventSource(url, { withCredentials: true });
  source = es;
  let hadError = false;
  es.addEventListener('hello', (e) => {
    const hello = JSON.parse((e as MessageEvent<string>).data) as FeedHelloV1;
    const restarted = instance !== null && instance !== hello.instance;
    instance = hello.instance;
    setState('live');
    if (hadError || restarted) reloadAll();
    hadError = false;
  });
  es.addEventListener('change', (e) => {
    const ev = JSON.parse((e as MessageEvent<string>).data) as ChangeEventV1;
    for (const l of listeners) if (l.topics.some((t) => ev.topics.includes(t))) l.reload();
  });
  es.onerror = () => {
    hadError = true;
    setState('reconnecting');
    if (es.readyState === EventSource.CLOSED && source === es) setTimeout(() => source === es && connectLive(url), 3000);
  };
}

export function disconnectLive(): void {
  source?.close();
  source = null;
}

export function useLiveState(): LiveState {
  const [s, set] = useState(state);
  useEffect(() => {
    stateListeners.add(set);
    return () => void stateListeners.delete(set);
  }, []);
  return s;
}

/**
 * Load data for a page and keep it fresh: runs `load` now, again whenever `deps` change, and whenever the feed
 * says one of `topics` changed (at most one load in flight; a change during a load runs one more after it).
 */
export function useLive<T>(topics: readonly ChangeTopic[], load: () => Promise<T>, deps: readonly unknown[]): { data: T | null; error: Error | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        const d = await load();
        if (alive) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (alive) setError(e as Error);
      } finally {
        running = false;
        if (again && alive) {
          again = false;
          void run();
        }
      }
    };
    void run();
    const l: Listener = { topics, reload: () => void run() };
    listeners.add(l);
    return () => {
      alive = false;
      listeners.delete(l);
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}
