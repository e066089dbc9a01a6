/** Workflows: the list, and one workflow's stages drawn as a DAG, coloured by state, with their counts. */
import type { StageV1 } from '@dsg/core';
import { useLive } from '../live.js';
import { ActionButton, api, canAct, Cell, ErrorNote, Loading, Progress, State, Table, useNow, useSession } from '../ui.js';
import { formatAgo, formatSpan } from '../lib/format.js';
import { currentCursor, decodePager, encodePager, nextPage, pageNumber, previousPage } from '../lib/pager.js';
import { href } from '../lib/route.js';
import { layoutDag, DEFAULT_SIZES } from '../lib/dag-layout.js';
import { Pager } from './jobs.js';

export function Workflows({ query }: { query: Record<string, string> }) {
  const pager = decodePager(query['page']);
  const now = useNow(5000);
  const { data, error } = useLive(['workflows', 'jobs'], () => api.listWorkflows({ limit: 50, ...(currentCursor(pager) ? { cursor: currentCursor(pager)! } : {}) }), [query['page']]);
  return (
    <div class="page">
      <h1>Workflows</h1>
      <ErrorNote error={error} />
      {!data ? <Loading /> : <>
        <Table head={['Workflow', 'State', 'Stages', 'Progress', 'Project', 'Submitted']} caption="Workflows" empty="No workflows yet. Submit one: dsg workflow submit examples/…">
          {data.items.map((w) => (
            <tr key={w.id} data-workflow={w.id}>
              <Cell label="Workflow"><a href={href(`/workflows/${w.id}`)}>{w.name}</a> <span class="id">{w.id}</span></Cell>
              <Cell label="State"><State state={w.state} /></Cell>
              <Cell label="Stages">{w.stages.length}</Cell>
              <Cell label="Progress"><Progress counts={w.counts} total={w.taskCount} label={`progress of ${w.name}`} /></Cell>
              <Cell label="Project">{w.project}</Cell>
              <Cell label="Submitted">{formatAgo(w.createdAt, now)}</Cell>
            </tr>
          ))}
        </Table>
        <Pager page={pageNumber(pager)} hasPrev={pager.cursors.length > 0} hasNext={data.nextCursor !== null}
          onPrev={() => { location.hash = href('/workflows', { page: encodePager(previousPage(pager)) }); }}
          onNext={() => { location.hash = href('/workflows', { page: encodePager(nextPage(pager, data.nextCursor)) }); }} />
      </>}
    </div>
  );
}

export function Workflow({ id }: { id: string }) {
  const session = useSession();
  const now = useNow();
  const { data: w, error, reload } = useLive(['workflows', 'jobs'], () => api.getWorkflow(id), [id]);
  if (!w) return error ? <ErrorNote error={error} /> : <Loading />;
  const act = canAct(session);
  const why = act ? undefined : 'a reader token can look but not change anything';
  return (
    <div class="page">
      <nav class="crumbs" aria-label="Breadcrumb"><a href={href('/workflows')}>Workflows</a> / <span>{w.name}</span></nav>
      <h1>{w.name} <State state={w.state} /></h1>
      <p class="muted"><span class="id">{w.id}</span> · project {w.project} · submitted {formatAgo(w.createdAt, now)} · {w.finishedAt ? `took ${formatSpan(w.createdAt, w.finishedAt, now)}` : `running for ${formatSpan(w.createdAt, null, now)}`}</p>
      <Progress counts={w.counts} total={w.taskCount} label="workflow progress" />
      <div class="actions">
        <ActionButton label="Cancel" danger disabled={!act || w.finishedAt !== null} title={why} confirm={`Cancel workflow ${w.name}?`} run={() => api.cancelWorkflow(id).then(reload)} />
        <ActionButton label="Retry" disabled={!act || w.finishedAt === null} title={why} run={() => api.retryWorkflow(id).then(reload)} />
      </div>
      <section aria-label="Stage graph">
        <h2>Stages</h2>
        <Dag stages={w.stages} edges={w.edges} />
      </section>
      <Table head={['Stage', 'State', 'Tasks', 'Needs', 'Note']} caption="Stages">
        {w.stages.map((s) => (
          <tr key={s.name}>
            <Cell label="Stage"><a href={href(`/jobs/${s.jobId}`)}>{s.name}</a></Cell>
            <Cell label="State"><State state={s.state} /></Cell>
            <Cell label="Tasks">{s.counts.succeeded} / {s.taskCount}{s.counts.failed ? ` (${s.counts.failed} failed)` : ''}</Cell>
            <Cell label="Needs">{s.needs.join(', ') || '—'}</Cell>
            <Cell label="Note" class="reason">{s.skipReason ?? s.waiting?.reason ?? ''}</Cell>
          </tr>
        ))}
      </Table>
    </div>
  );
}

/** The stage graph as SVG; each stage is a link to its job, coloured by state. */
export function Dag({ stages, edges }: { stages: StageV1[]; edges: Array<{ from: string; to: string }> }) {
  const layout = layoutDag({ nodes: stages.map((s) => s.name), edges });
  const byName = new Map(stages.map((s) => [s.name, s]));
  const { nodeWidth: W, nodeHeight: H } = DEFAULT_SIZES;
  const pad = 8;
  return (
    <div class="dag-wrap">
      <svg class="dag" width={layout.width + 2 * pad} height={layout.height + 2 * pad} viewBox={`${-pad} ${-pad} ${layout.width + 2 * pad} ${layout.height + 2 * pad}`} role="img" aria-label="workflow stage graph">
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrow" /></marker></defs>
        {layout.edges.map((e) => {
          const [[x1, y1], [x2, y2]] = e.points as [[number, number], [number, number]];
          const mx = (x1 + x2) / 2;
          return <path key={`${e.from}->${e.to}`} d={`M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`} class="edge" marker-end="url(#arrow)" />;
        })}
        {layout.nodes.map((n) => {
          const s = byName.get(n.id)!;
          return (
            <a key={n.id} href={href(`/jobs/${s.jobId}`)} data-stage={s.name} data-state={s.state} aria-label={`stage ${s.name}: ${s.state}, ${s.counts.succeeded} of ${s.taskCount} done`}>
              <rect x={n.x} y={n.y} width={W} height={H} rx="8" class={`stage st-${s.state}`} />
              <text x={n.x + 10} y={n.y + 22} class="stage-name">{s.name.length > 20 ? `${s.name.slice(0, 19)}…` : s.name}</text>
              <text x={n.x + 10} y={n.y + 44} class="stage-counts">{s.state} · {s.counts.succeeded}/{s.taskCount}{s.counts.running ? ` · ${s.counts.running} run` : ''}{s.counts.failed ? ` · ${s.counts.failed} ✗` : ''}</text>
            </a>
          );
        })}
      </svg>
    </div>
  );
}
