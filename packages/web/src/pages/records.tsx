/** The contribution ledger (who gave and used how much) and the audit log (who did what), for readers and admins. */
import { useLive } from '../live.js';
import { api, Cell, ErrorNote, Loading, Table, useNow } from '../ui.js';
import { formatAgo, formatCount, formatDuration } from '../lib/format.js';
import { href } from '../lib/route.js';

const BY = ['node', 'project', 'user'] as const;

export function Ledger({ query }: { query: Record<string, string> }) {
  const by = (BY as readonly string[]).includes(query['by'] ?? '') ? (query['by'] as (typeof BY)[number]) : 'node';
  const { data, error } = useLive(['jobs'], () => api.ledger({ by }), [by]);
  return (
    <div class="page">
      <h1>Ledger</h1>
      <p class="muted">Compute given and used, summed over finished attempts.</p>
      <nav class="tabs" aria-label="Group by">{BY.map((b) => <a href={href('/ledger', { by: b })} aria-current={b === by ? 'page' : undefined}>by {b}</a>)}</nav>
      <ErrorNote error={error} />
      {!data ? <Loading /> : (
        <Table head={[by, 'Attempts', 'Succeeded', 'Wall time', 'CPU time', 'GPU time', 'Wasted']} caption="Ledger" empty="Nothing has run yet.">
          {[...data.rows, { ...data.total, key: 'total' }].map((r) => (
            <tr key={r.key} class={r.key === 'total' ? 'total' : ''}>
              <Cell label={by}>{r.key}</Cell>
              <Cell label="Attempts">{formatCount(r.attempts)}</Cell>
              <Cell label="Succeeded">{formatCount(r.succeededAttempts)}</Cell>
              <Cell label="Wall time">{formatDuration(r.wallSeconds * 1000)}</Cell>
              <Cell label="CPU time">{formatDuration(r.cpuSeconds * 1000)}</Cell>
              <Cell label="GPU time">{formatDuration(r.gpuSeconds * 1000)}</Cell>
              <Cell label="Wasted">{formatDuration(r.wastedWallSeconds * 1000)}</Cell>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}

export function Audit({ query }: { query: Record<string, string> }) {
  const before = /^\d{1,15}$/.test(query['before'] ?? '') ? Number(query['before']) : undefined;
  const { data, error } = useLive(['jobs', 'nodes', 'joins'], () => api.auditList({ limit: 50, ...(before ? { before } : {}) }), [before]);
  const now = useNow(5000);
  return (
    <div class="page">
      <h1>Audit log</h1>
      <p class="muted">Who did what, newest first. Each entry is chained to the one before (check with <code>dsg audit verify</code>).</p>
      <ErrorNote error={error} />
      {!data ? <Loading /> : <>
        <Table head={['#', 'When', 'Who', 'Action', 'Target', 'From']} caption="Audit log" empty="No entries.">
          {data.items.map((e) => (
            <tr key={e.seq}>
              <Cell label="#">{e.seq}</Cell>
              <Cell label="When"><time dateTime={e.at} title={e.at}>{formatAgo(e.at, now)}</time></Cell>
              <Cell label="Who">{e.actor.name} <span class="muted">({e.actor.role})</span></Cell>
              <Cell label="Action">{e.action}</Cell>
              <Cell label="Target" class="id">{e.target}</Cell>
              <Cell label="From">{e.origin}</Cell>
            </tr>
          ))}
        </Table>
        <nav class="pager" aria-label="Pages">
          {before && <a href={href('/audit')}>← Newest</a>}
          {data.nextBefore !== null && <a href={href('/audit', { before: data.nextBefore })}>Older →</a>}
        </nav>
      </>}
    </div>
  );
}
