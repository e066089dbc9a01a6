/** Jobs: a filtered, paginated list (state, project, name; newest first); a job's page; a task's attempts and logs. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobV1, LogChunkV1, TaskV1 } from '@dsg/core';
import { useLive } from '../live.js';
import { ActionButton, api, canAct, Cell, ErrorNote, Loading, Progress, State, Table, useNow, useSession } from '../ui.js';
import { estimateRemainingMs, formatAgo, formatBytes, formatDuration, formatSpan } from '../lib/format.js';
import { currentCursor, decodePager, encodePager, nextPage, pageNumber, previousPage } from '../lib/pager.js';
import { href } from '../lib/route.js';

const JOB_STATES = ['waiting', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] as const;
const TASK_STATES = ['queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled'] as const;
const PAGE_SIZE = 50;

const go = (h: string) => { location.hash = h; };

export function Jobs({ query }: { query: Record<string, string> }) {
  const pager = decodePager(query['page']);
  const filters = { state: query['state'] ?? '', project: query['project'] ?? '', name: query['name'] ?? '', order: query['order'] === 'oldest' ? 'oldest' : '' };
  const { data, error } = useLive(['jobs'], () => api.listJobs({
    limit: PAGE_SIZE, ...(filters.state ? { state: filters.state as JobV1['state'] } : {}),
    ...(filters.project ? { project: filters.project } : {}), ...(filters.name ? { name: filters.name } : {}),
    ...(filters.order ? { order: 'oldest' as const } : {}), ...(currentCursor(pager) ? { cursor: currentCursor(pager)! } : {}),
  }), [query['state'], query['project'], query['name'], query['order'], query['page']]);
  const now = useNow(5000);
  const setFilter = (k: string, v: string) => go(href('/jobs', { ...filters, [k]: v }));
  return (
    <div class="page">
      <h1>Jobs</h1>
      <form class="filters" role="search" aria-label="Filter jobs" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget);
        go(href('/jobs', { state: String(f.get('state') ?? ''), project: String(f.get('project') ?? '').trim(), name: String(f.get('name') ?? '').trim(), order: filters.order }));
      }}>
        <label>State <select name="state" value={filters.state} onChange={(e) => setFilter('state', e.currentTarget.value)}>
          <option value="">any</option>{JOB_STATES.map((s) => <option value={s}>{s}</option>)}</select></label>
        <label>Project <input name="project" value={filters.project} maxLength={200} placeholder="any" /></label>
        <label>Name <input name="name" value={filters.name} maxLength={100} placeholder="exact, or prefix*" /></label>
        <label>Sort <select name="order" value={filters.order} onChange={(e) => setFilter('order', e.currentTarget.value)}>
          <option value="">newest first</option><option value="oldest">oldest first</option></select></label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      {!data ? <Loading /> : (
        <>
          <Table head={['Job', 'State', 'Progress', 'Done', 'Failed', 'Project', 'Submitted']} caption="Jobs" empty="No jobs match. Submit one: dsg submit examples/pi/pi.yaml">
            {data.items.map((j) => (
              <tr key={j.id} data-job={j.id}>
                <Cell label="Job"><a href={href(`/jobs/${j.id}`)}>{j.name}</a> <span class="id">{j.id}</span></Cell>
                <Cell label="State"><State state={j.state} /></Cell>
                <Cell label="Progress"><Progress counts={j.counts} total={j.taskCount} label={`progress of ${j.name}`} /></Cell>
                <Cell label="Done">{j.counts.succeeded} / {j.taskCount}</Cell>
                <Cell label="Failed" class={j.counts.failed ? 'bad' : 'muted'}>{j.counts.failed}</Cell>
                <Cell label="Project">{j.project}</Cell>
                <Cell label="Submitted">{formatAgo(j.createdAt, now)}</Cell>
              </tr>
            ))}
          </Table>
          <Pager page={pageNumber(pager)} hasPrev={pager.cursors.length > 0} hasNext={data.nextCursor !== null}
            onPrev={() => go(href('/jobs', { ...filters, page: encodePager(previousPage(pager)) }))}
            onNext={() => go(href('/jobs', { ...filters, page: encodePager(nextPage(pager, data.nextCursor)) }))} />
        </>
      )}
    </div>
  );
}

export function Pager({ page, hasPrev, hasNext, onPrev, onNext }: { page: number; hasPrev: boolean; hasNext: boolean; onPrev: () => void; onNext: () => void }) {
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={!hasPrev} onClick={onPrev}>← Previous</button>
      <span>page {page}</span>
      <button type="button" disabled={!hasNext} onClick={onNext}>Next →</button>
    </nav>
  );
}

export function Job({ id, query }: { id: string; query: Record<string, string> }) {
  const session = useSession();
  const now = useNow();
  const job = useLive(['jobs'], () => api.getJob(id), [id]);
  const pager = decodePager(query['page']);
  const taskState = query['task-state'] ?? '';
  const tasks = useLive(['jobs'], () => api.listTasks(id, {
    limit: PAGE_SIZE, ...(taskState ? { state: taskState as TaskV1['state'] } : {}), ...(currentCursor(pager) ? { cursor: currentCursor(pager)! } : {}),
  }), [id, query['page'], taskState]);
  const outputs = useLive(['jobs'], () => api.listOutputs(id), [id]);
  const j = job.data;
  if (!j) return job.error ? <ErrorNote error={job.error} /> : <Loading />;
  const done = j.counts.succeeded + j.counts.failed + j.counts.cancelled;
  const firstStart = tasks.data?.items.map((t) => t.startedAt).filter((s): s is string => s !== null).map(Date.parse).reduce((a, b) => Math.min(a, b), Infinity);
  const eta = j.finishedAt ? null : estimateRemainingMs({ total: j.taskCount, done, startedAt: firstStart !== undefined && Number.isFinite(firstStart) ? firstStart : Date.parse(j.createdAt), now });
  const act = canAct(session);
  const why = act ? undefined : 'a reader token can look but not change anything';
  const q = (extra: Record<string, string>) => href(`/jobs/${id}`, { 'task-state': taskState, ...extra });
  return (
    <div class="page">
      <nav class="crumbs" aria-label="Breadcrumb"><a href={href('/jobs')}>Jobs</a> / {j.workflowId && <><a href={href(`/workflows/${j.workflowId}`)}>workflow</a> / </>}<span>{j.name}</span></nav>
      <h1>{j.name} <State state={j.state} /></h1>
      <p class="muted"><span class="id">{j.id}</span> · project {j.project}{j.submittedBy ? ` · by ${j.submittedBy.name}` : ''} · submitted {formatAgo(j.createdAt, now)}
        {j.finishedAt ? ` · took ${formatSpan(j.createdAt, j.finishedAt, now)}` : ''}</p>
      <div class="job-progress">
        <Progress counts={j.counts} total={j.taskCount} label="job progress" />
        <p><strong>{done}</strong> of {j.taskCount} task(s) finished · {j.counts.running} running · {j.counts.queued + j.counts.assigned} waiting
          {j.counts.failed ? <span class="bad"> · {j.counts.failed} failed</span> : null}
          {eta !== null ? <span> · about {formatDuration(eta)} left</span> : null}</p>
        {j.waiting && <p class={j.waiting.never ? 'bad' : 'muted'} data-testid="pending-reason">Why tasks are waiting: {j.waiting.reason}</p>}
        {j.warnings.map((w) => <p class="warn">{w}</p>)}
      </div>
      <div class="actions">
        <ActionButton label="Cancel" danger disabled={!act || j.finishedAt !== null} title={why ?? (j.finishedAt ? 'the job has finished' : undefined)} confirm={`Cancel job ${j.name}? Running tasks are stopped.`} run={() => api.cancelJob(id).then(job.reload)} />
        <ActionButton label="Retry" disabled={!act || j.finishedAt === null || (j.counts.failed + j.counts.cancelled) === 0} title={why ?? (j.finishedAt === null ? 'the job is still running' : undefined)} run={() => api.retryJob(id).then(job.reload)} />
      </div>
      <section aria-label="Resources">
        <p class="muted">Each task: {j.resources.cpu} core(s), {formatBytes(j.resources.memoryBytes)}{j.resources.gpus ? `, ${j.resources.gpus} GPU(s)` : ''}</p>
      </section>
      <section aria-label="Tasks">
        <h2>Tasks</h2>
        <div class="filters">
          <label>State <select value={taskState} onChange={(e) => go(href(`/jobs/${id}`, { 'task-state': e.currentTarget.value }))}>
            <option value="">any</option>{TASK_STATES.map((s) => <option value={s}>{s}</option>)}</select></label>
        </div>
        <ErrorNote error={tasks.error} />
        {tasks.data && <>
          <Table head={['Task', 'State', 'Attempts', 'Node', 'Started', 'Duration', 'Exit', 'Failure']} caption="Tasks" empty="No tasks in this state.">
            {tasks.data.items.map((t) => (
              <tr key={t.index} data-task={t.index}>
                <Cell label="Task"><a href={href(`/jobs/${id}/tasks/${t.index}`)}>{t.index}{t.arrayValue !== null ? ` (${t.arrayValue})` : ''}</a></Cell>
                <Cell label="State"><State state={t.state} /></Cell>
                <Cell label="Attempts">{t.attempts}</Cell>
                <Cell label="Node"><NodeName id={t.nodeId} /></Cell>
                <Cell label="Started">{formatAgo(t.startedAt, now)}</Cell>
                <Cell label="Duration">{formatSpan(t.startedAt, t.finishedAt, now)}</Cell>
                <Cell label="Exit">{t.exitCode ?? ''}</Cell>
                <Cell label="Failure" class="reason">{t.failure?.message ?? ''}</Cell>
              </tr>
            ))}
          </Table>
          <Pager page={pageNumber(pager)} hasPrev={pager.cursors.length > 0} hasNext={tasks.data.nextCursor !== null}
            onPrev={() => go(q({ page: encodePager(previousPage(pager)) }))} onNext={() => go(q({ page: encodePager(nextPage(pager, tasks.data!.nextCursor)) }))} />
        </>}
      </section>
      <section aria-label="Outputs">
        <h2>Outputs</h2>
        <Table head={['Task', 'File', 'Size']} caption="Outputs" empty="No outputs (yet).">
          {(outputs.data?.items ?? []).slice(0, 500).map((o) => (
            <tr key={`${o.taskIndex}/${o.path}`}>
              <Cell label="Task">{o.taskIndex}</Cell>
              <Cell label="File"><a href={`/api/v1/jobs/${encodeURIComponent(id)}/tasks/${o.taskIndex}/outputs/${o.path.split('/').map(encodeURIComponent).join('/')}`} download={o.path.split('/').pop()}>{o.path}</a></Cell>
              <Cell label="Size">{formatBytes(o.size)}</Cell>
            </tr>
          ))}
        </Table>
        {(outputs.data?.items.length ?? 0) > 500 && <p class="muted">The first 500 of {outputs.data!.items.length}; use `dsg output {id}` for all.</p>}
      </section>
    </div>
  );
}

/** A node's name for its id (from one shared, live node list). */
const nodeNames = new Map<string, string>();
let nodesLoading: Promise<void> | null = null;
export function NodeName({ id }: { id: string | null }) {
  const [, force] = useState(0);
  useEffect(() => {
    if (id && !nodeNames.has(id)) {
      nodesLoading ??= api.listNodes().then((r) => { for (const n of r.items) nodeNames.set(n.id, n.name); }).catch(() => undefined).finally(() => { nodesLoading = null; });
      void nodesLoading.then(() => force((x) => x + 1));
    }
  }, [id]);
  if (!id) return <span class="muted">—</span>;
  return <a href={href(`/nodes/${id}`)}>{nodeNames.get(id) ?? id}</a>;
}

export function Task({ id, index, query }: { id: string; index: number; query: Record<string, string> }) {
  const now = useNow();
  const task = useLive(['jobs'], () => api.getTask(id, index), [id, index]);
  const attempts = useLive(['jobs'], () => api.listAttempts(id, index), [id, index]);
  const items = attempts.data?.items ?? [];
  const chosen = query['attempt'] ?? (items.length ? String(items[items.length - 1]!.number) : '');
  return (
    <div class="page">
      <nav class="crumbs" aria-label="Breadcrumb"><a href={href('/jobs')}>Jobs</a> / <a href={href(`/jobs/${id}`)}>{id}</a> / <span>task {index}</span></nav>
      <h1>Task {index} {task.data && <State state={task.data.state} />}</h1>
      <ErrorNote error={task.error ?? attempts.error} />
      {task.data?.state === 'queued' && <PendingWhy id={id} index={index} />}
      <section aria-label="Attempts">
        <h2>Attempts</h2>
        <Table head={['#', 'Node', 'State', 'Started', 'Duration', 'Exit', 'Failure', 'Log']} caption="Attempts" empty="Not started yet.">
          {items.map((a) => (
            <tr key={a.id}>
              <Cell label="#">{a.number}</Cell>
              <Cell label="Node"><NodeName id={a.nodeId} /></Cell>
              <Cell label="State"><State state={a.state} /></Cell>
              <Cell label="Started">{formatAgo(a.startedAt, now)}</Cell>
              <Cell label="Duration">{formatSpan(a.startedAt, a.finishedAt, now)}</Cell>
              <Cell label="Exit">{a.exitCode ?? (a.signal ? a.signal : '')}</Cell>
              <Cell label="Failure" class="reason">{a.failure ? `${a.failure.message} (${a.failure.kind})` : ''}</Cell>
              <Cell label="Log"><a href={href(`/jobs/${id}/tasks/${index}`, { attempt: a.number })} aria-current={String(a.number) === chosen ? 'true' : undefined}>show</a></Cell>
            </tr>
          ))}
        </Table>
      </section>
      {chosen && <LogView key={`${id}/${index}/${chosen}`} id={id} index={index} attempt={chosen} />}
    </div>
  );
}

function PendingWhy({ id, index }: { id: string; index: number }) {
  const { data } = useLive(['jobs', 'nodes'], () => api.explainJob(id, index), [id, index]);
  if (!data) return null;
  return (
    <div data-testid="pending-reason">
      <p class={data.verdict === 'never' ? 'bad' : 'muted'}>Why it waits: {data.summary}{data.queue ? ` (${data.queue.tasksAhead} task(s) of ${data.queue.jobsAhead} job(s) ahead)` : ''}</p>
      {data.nodes.length > 0 && <ul class="muted">{data.nodes.slice(0, 20).map((n) => <li>{n.name}: {n.verdict}{n.message ? ` — ${n.message}` : ''}</li>)}</ul>}
    </div>
  );
}

/** Most log text kept in the page; older text is dropped from the top (the whole log stays on the coordinator). */
const MAX_LOG_CHARS = 2 * 1024 * 1024;

/** A task attempt's log; with follow on, new output appears as the task writes it (until the attempt ends). */
function LogView({ id, index, attempt }: { id: string; index: number; attempt: string }) {
  const [text, setText] = useState('');
  const [chunk, setChunk] = useState<LogChunkV1 | null>(null);
  const [follow, setFollow] = useState(true);
  const [error, setError] = useState<Error | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const offset = useRef(0);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const step = async () => {
      try {
        const c = await api.getLogs(id, index, { offset: offset.current, attempt });
        if (!alive) return;
        offset.current = c.nextOffset;
        if (c.data) setText((t) => (t + c.data).slice(-MAX_LOG_CHARS));
        setChunk(c);
        setError(null);
        if (!c.complete && follow) timer = setTimeout(step, c.data ? 300 : 1000);
      } catch (e) {
        if (alive) {
          setError(e as Error);
          if (follow) timer = setTimeout(step, 3000);
        }
      }
    };
    void step();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [id, index, attempt, follow]);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);
  return (
    <section aria-label="Log">
      <h2>Log of attempt {attempt} {chunk && (chunk.complete ? <span class="muted">(complete)</span> : <span class="live-dot">● live</span>)}</h2>
      <label class="check"><input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow</label>
      <ErrorNote error={error} />
      <pre ref={pre} class="log" tabIndex={0} aria-label={`log of task ${index}, attempt ${attempt}`} data-testid="log">{text || (chunk ? '(no output yet)' : 'Loading…')}</pre>
    </section>
  );
}
