/**
 * The dashboard's shell: sign-in, navigation, the live status, and the page for the address (lib/route.ts).
 * Signing in trades the token for an httpOnly session cookie (POST /api/v1/session); the page never stores the
 * token. A link from `dsg up` carries the token in the fragment (never sent to a server): it is traded at once
 * and taken out of the address bar.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { DsgError, type SessionV1 } from '@dsg/core';
import { api, SessionContext } from './ui.js';
import { connectLive, disconnectLive, useLiveState } from './live.js';
import { parseRoute, type Route } from './lib/route.js';
import { Overview } from './pages/overview.js';
import { Job, Jobs, Task } from './pages/jobs.js';
import { Workflow, Workflows } from './pages/workflows.js';
import { Node, Nodes } from './pages/nodes.js';
import { Audit, Ledger } from './pages/records.js';

function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute(location.hash));
  useEffect(() => {
    const on = () => {
      setRoute(parseRoute(location.hash));
      window.scrollTo(0, 0);
    };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV: Array<[string, string, Route['page'][]]> = [
  ['#/', 'Overview', ['overview']],
  ['#/jobs', 'Jobs', ['jobs', 'job', 'task']],
  ['#/workflows', 'Workflows', ['workflows', 'workflow']],
  ['#/nodes', 'Nodes', ['nodes', 'node']],
  ['#/ledger', 'Ledger', ['ledger']],
  ['#/audit', 'Audit', ['audit']],
];

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'overview': return <Overview />;
    case 'jobs': return <Jobs query={route.query} />;
    case 'job': return <Job id={route.id} query={route.query} />;
    case 'task': return <Task id={route.id} index={route.index} query={route.query} />;
    case 'workflows': return <Workflows query={route.query} />;
    case 'workflow': return <Workflow id={route.id} />;
    case 'nodes': return <Nodes />;
    case 'node': return <Node id={route.id} />;
    case 'ledger': return <Ledger query={route.query} />;
    case 'audit': return <Audit query={route.query} />;
    case 'not-found': return <div class="page"><h1>Not found</h1><p>No page at <code>{route.path}</code>. <a href="#/">Go to the overview</a>.</p></div>;
  }
}

function SignIn({ message, onSignedIn }: { message: string | null; onSignedIn: (s: SessionV1) => void }) {
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <h1>Distributed Science Grid</h1>
      <form aria-label="Sign in" onSubmit={async (e) => {
        e.preventDefault();
        const input = e.currentTarget.elements.namedItem('token') as HTMLInputElement;
        const token = input.value.trim();
        input.value = '';
        if (!token) return setError('Paste a token first.');
        setBusy(true);
        try {
          onSignedIn(await api.signIn(token));
        } catch (err) {
          setError((err as Error).message);
        } finally {
          setBusy(false);
        }
      }}>
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="off" placeholder="dsg_…" required maxLength={500} />
        <p class="muted">The admin token is in <code>.dsg/credentials.json</code> (or open the link <code>dsg up</code> printed); your grid's admin can give you one (<code>dsg token create</code>). The browser keeps only a session cookie, never the token.</p>
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

function LiveBadge() {
  const s = useLiveState();
  const text = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'reconnecting…';
  return <span class={`live live-${s}`} role="status" aria-live="polite" data-testid="live">{text}</span>;
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<SessionV1 | null>(null);
  const [checked, setChecked] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [menu, setMenu] = useState(false);

  useEffect(() => {
    localStorage.removeItem('dsg-token'); // left by dashboards that kept the token there
    const start = async () => {
      const m = location.hash.match(/token=([^&]+)/);
      if (m) {
        history.replaceState(null, '', location.pathname);
        try {
          setSession(await api.signIn(decodeURIComponent(m[1]!)));
        } catch (e) {
          setMessage((e as Error).message);
        }
      } else {
        try {
          setSession(await api.whoAmI());
        } catch (e) {
          if (!(e instanceof DsgError && e.code === 'unauthorized')) setMessage((e as Error).message);
        }
      }
      setChecked(true);
    };
    void start();
    // A sign-in link pasted into a tab that already shows the dashboard changes only the fragment.
    const onHash = () => { if (/token=/.test(location.hash)) void start(); };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    if (!session) return;
    connectLive(api.eventsUrl());
    // A request answered 401 means the session ended (signed out elsewhere, token revoked): back to sign-in.
    const onRejection = (e: PromiseRejectionEvent) => {
      if (e.reason instanceof DsgError && e.reason.code === 'unauthorized') setSession(null);
    };
    window.addEventListener('unhandledrejection', onRejection);
    const check = setInterval(() => void api.whoAmI().catch((e) => {
      if (e instanceof DsgError && e.code === 'unauthorized') setSession(null);
    }), 30_000);
    return () => {
      disconnectLive();
      clearInterval(check);
      window.removeEventListener('unhandledrejection', onRejection);
    };
  }, [session]);

  if (!checked) return <p class="muted center">Loading…</p>;
  if (!session) return <SignIn message={message} onSignedIn={(s) => { setMessage(null); setSession(s); }} />;
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href="#/">DSG</a>
        <button type="button" class="menu-button" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>Menu</button>
        <nav id="nav" class={menu ? 'open' : ''} aria-label="Pages" onClick={() => setMenu(false)}>
          {NAV.map(([to, label, pages]) => <a href={to} aria-current={pages.includes(route.page) ? 'page' : undefined}>{label}</a>)}
        </nav>
        <LiveBadge />
        <span class="who" data-testid="who">{session.name} <span class="muted">({session.role}{session.projects ? `: ${session.projects.join(', ')}` : ''})</span></span>
        <button type="button" onClick={async () => { try { await api.signOut(); } catch { /* signed out anyway */ } setSession(null); }}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}><Page route={route} /></main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
