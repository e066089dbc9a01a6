/** Overview: nodes by state, resources in use, queues per project, tasks finished per minute, recent failures. */
import type { OverviewV1 } from '@dsg/core';
import { useLive } from '../live.js';
import { api, Cell, ErrorNote, Loading, Meter, Table, useNow } from '../ui.js';
import { formatAgo, formatBytes, formatCount } from '../lib/format.js';
import { href } from '../lib/route.js';

export function Overview() {
  const { data, error } = useLive(['jobs', 'nodes', 'workflows'], () => api.overview(), []);
  const now = useNow(5000);
  if (!data) return error ? <ErrorNote error={error} /> : <Loading />;
  const n = data.nodes;
  return (
    <div class="page">
      <h1>Overview</h1>
      <ErrorNote error={error} />
      <div class="cards">
        <section class="card" aria-label="Nodes">
          <h2>Nodes</h2>
          <p class="big"><a href={href('/nodes')}>{n.online}</a> <span class="muted">online</span></p>
          <p class="muted">{n.offline} offline · {n.draining} draining · {n.cordoned} cordoned · {n.lost} lost</p>
        </section>
        <section class="card" aria-label="Resources in use">
          <h2>In use</h2>
          <Meter label="Cores" used={data.cores.used} total={data.cores.total} format={(x) => String(Math.round(x * 10) / 10)} />
          <Meter label="Memory" used={data.memoryBytes.used} total={data.memoryBytes.total} format={formatBytes} />
          <Meter label="GPUs" used={data.gpus.used} total={data.gpus.total} format={String} />
        </section>
        <section class="card wide" aria-label="Tasks finished per minute">
          <h2>Tasks finished per minute, last hour</h2>
          <Throughput data={data.throughput} />
        </section>
      </div>
      <section aria-label="Queues">
        <h2>Queued work per project</h2>
        <Table head={['Project', 'Queued tasks', 'Running']} caption="Queued work per project" empty="The queue is empty.">
          {data.queue.map((q) => (
            <tr key={q.project}>
              <Cell label="Project"><a href={href('/jobs', { project: q.project })}>{q.project}</a></Cell>
              <Cell label="Queued tasks">{formatCount(q.queued)}</Cell>
              <Cell label="Running">{formatCount(q.running)}</Cell>
            </tr>
          ))}
        </Table>
      </section>
      <section aria-label="Recent failures">
        <h2>Recent failures</h2>
        <Table head={['Job', 'Project', 'Failed tasks', 'Why', 'When']} caption="Recent failures" empty="No failed jobs.">
          {data.recentFailures.map((f) => (
            <tr key={f.jobId}>
              <Cell label="Job"><a href={href(`/jobs/${f.jobId}`)}>{f.name}</a></Cell>
              <Cell label="Project">{f.project}</Cell>
              <Cell label="Failed tasks">{f.failed}</Cell>
              <Cell label="Why" class="reason">{f.task !== null ? <a href={href(`/jobs/${f.jobId}/tasks/${f.task}`)}>task {f.task}</a> : null}{f.reason ? `: ${f.reason}` : ''}</Cell>
              <Cell label="When">{formatAgo(f.finishedAt, now)}</Cell>
            </tr>
          ))}
        </Table>
      </section>
    </div>
  );
}

/** 60 stacked bars (succeeded, failed) as SVG: small, no library, scales to the card's width. */
export function Throughput({ data }: { data: OverviewV1['throughput'] }) {
  const max = Math.max(1, ...data.map((b) => b.succeeded + b.failed));
  const total = data.reduce((s, b) => s + b.succeeded + b.failed, 0);
  const w = 600;
  const h = 120;
  const bw = w / Math.max(1, data.length);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h + 16}`} preserveAspectRatio="none" role="img" aria-label={`${total} tasks finished in the last hour; at most ${max} in one minute`}>
        {data.map((b, i) => {
          const hs = (b.succeeded / max) * h;
          const hf = (b.failed / max) * h;
          return (
            <g key={b.bucketStart}>
              <title>{`${new Date(b.bucketStart).toLocaleTimeString()}: ${b.succeeded} succeeded, ${b.failed} failed`}</title>
              <rect x={i * bw + 1} y={h - hs} width={bw - 2} height={hs} class="bar-ok" />
              <rect x={i * bw + 1} y={h - hs - hf} width={bw - 2} height={hf} class="bar-bad" />
            </g>
          );
        })}
        <line x1="0" y1={h} x2={w} y2={h} class="axis" />
      </svg>
      <figcaption class="muted">{formatCount(total)} in the last hour · peak {formatCount(max)}/min · −60 min … now</figcaption>
    </figure>
  );
}
