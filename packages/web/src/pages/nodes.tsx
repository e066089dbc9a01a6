/** Nodes: every node with its state and use; one node's capabilities, labels, actions and what it runs; machines waiting to join. */
import type { NodeV1 } from '@dsg/core';
import { useLive } from '../live.js';
import { ActionButton, api, Cell, ErrorNote, isAdmin, Loading, Meter, State, Table, useNow, useSession } from '../ui.js';
import { formatAgo, formatBytes } from '../lib/format.js';
import { href } from '../lib/route.js';

const cores = (x: number) => String(Math.round(x * 10) / 10);

export function Nodes() {
  const session = useSession();
  const { data, error } = useLive(['nodes'], () => api.listNodes(), []);
  const now = useNow(5000);
  return (
    <div class="page">
      <h1>Nodes</h1>
      <JoinRequests admin={isAdmin(session)} />
      <ErrorNote error={error} />
      {!data ? <Loading /> : (
        <Table head={['Node', 'State', 'Cores', 'Memory', 'GPUs', 'Tasks', 'Load', 'Isolation', 'Seen']} caption="Nodes" empty="No nodes yet. Start an agent on a machine: dsg agent --coordinator URL (with a join token or code).">
          {data.items.map((n) => (
            <tr key={n.id} data-node={n.name}>
              <Cell label="Node"><a href={href(`/nodes/${n.id}`)}>{n.name}</a></Cell>
              <Cell label="State"><State state={n.state} />{n.scheduling !== 'eligible' && <> <State state={n.scheduling} /></>}</Cell>
              <Cell label="Cores"><Meter label="cores" used={n.allocated.cpu} total={n.capacity.cpu} format={cores} /></Cell>
              <Cell label="Memory"><Meter label="memory" used={n.allocated.memoryBytes} total={n.capacity.memoryBytes} format={formatBytes} /></Cell>
              <Cell label="GPUs">{n.allocated.gpus} / {n.capacity.gpus}</Cell>
              <Cell label="Tasks">{n.runningTasks}{n.assignedTasks ? <span class="muted"> +{n.assignedTasks} waiting</span> : null}</Cell>
              <Cell label="Load">{n.hostUsage ? `${n.hostUsage.load1} / ${n.facts.cores}` : '—'}</Cell>
              <Cell label="Isolation">{n.facts.isolation ?? '?'}</Cell>
              <Cell label="Seen">{n.state === 'online' ? 'now' : formatAgo(n.lastSeenAt, now)}</Cell>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}

function JoinRequests({ admin }: { admin: boolean }) {
  const { data, reload } = useLive(['joins', 'nodes'], () => api.listJoinRequests(), []);
  const waiting = (data?.items ?? []).filter((r) => r.state === 'pending');
  if (waiting.length === 0) return null;
  return (
    <section class="notice" aria-label="Machines waiting to join">
      <h2>Machines waiting to join</h2>
      <p class="muted">Compare the request id with the one the machine shows before letting it in. What a machine says about itself is not verified.</p>
      <Table head={['Request', 'Name', 'From', 'Says it has', '']} caption="Join requests">
        {waiting.map((r) => (
          <tr key={r.id}>
            <Cell label="Request"><code>{r.id}</code></Cell>
            <Cell label="Name">{r.name}</Cell>
            <Cell label="From">{r.address}</Cell>
            <Cell label="Says it has">{r.facts.os} {r.facts.arch}, {r.facts.cores} cores, {formatBytes(r.facts.memoryBytes)}{r.facts.gpus.length ? `, ${r.facts.gpus.join(' + ')}` : ''}</Cell>
            <Cell label="">{admin ? <>
              <ActionButton label="Approve" title={`${r.name} (${r.id})`} run={() => api.approveJoinRequest(r.id).then(reload)} />
              <ActionButton label="Reject" danger title={`${r.name} (${r.id})`} run={() => api.rejectJoinRequest(r.id, window.prompt('Why? The machine is shown this.') ?? undefined).then(reload)} />
            </> : <span class="muted">an admin decides</span>}</Cell>
          </tr>
        ))}
      </Table>
    </section>
  );
}

export function Node({ id }: { id: string }) {
  const session = useSession();
  const now = useNow();
  const node = useLive(['nodes'], () => api.getNode(id), [id]);
  const attempts = useLive(['nodes', 'jobs'], () => api.nodeAttempts(id), [id]);
  const n = node.data;
  if (!n) return node.error ? <ErrorNote error={node.error} /> : <Loading />;
  const admin = isAdmin(session);
  const why = admin ? undefined : 'only an admin token can change nodes';
  const reload = () => { node.reload(); attempts.reload(); };
  return (
    <div class="page">
      <nav class="crumbs" aria-label="Breadcrumb"><a href={href('/nodes')}>Nodes</a> / <span>{n.name}</span></nav>
      <h1>{n.name} <State state={n.state} /> {n.scheduling !== 'eligible' && <State state={n.scheduling} />}</h1>
      <p class="muted"><span class="id">{n.id}</span> · agent {n.agentVersion} · joined {formatAgo(n.joinedAt, now)}{n.state === 'online' ? '' : ` · last seen ${formatAgo(n.lastSeenAt, now)}`}{n.address ? ` · ${n.address}` : ''}</p>
      {n.schedulingReason && <p class="warn">{n.schedulingReason}</p>}
      {n.policy && n.policy.state !== 'working' && <p class="warn">Held back by its owner's policy: {n.policy.reason}</p>}
      <div class="actions">
        {actionsFor(n).map((a) => (
          <ActionButton key={a} label={LABELS[a]} danger={a === 'remove'} disabled={!admin} title={why ?? HELP[a]}
            confirm={a === 'remove' ? `Forget node ${n.name}? It must join again to take work.` : undefined}
            run={() => (a === 'drain' ? api.drainNode(n.id) : a === 'cordon' ? api.cordonNode(n.id) : a === 'uncordon' ? api.uncordonNode(n.id) : api.removeNode(n.id)).then(reload)} />
        ))}
      </div>
      <div class="cards">
        <section class="card" aria-label="Capabilities">
          <h2>Capabilities</h2>
          <dl class="facts">
            <dt>CPU</dt><dd>{n.facts.cpuModel || '?'} · {n.facts.cores} cores ({n.capacity.cpu} offered)</dd>
            <dt>Memory</dt><dd>{formatBytes(n.facts.memoryBytes)} ({formatBytes(n.capacity.memoryBytes)} offered)</dd>
            <dt>Disk</dt><dd>{formatBytes(n.facts.diskBytes)}</dd>
            <dt>System</dt><dd>{n.facts.os} / {n.facts.arch} · {n.facts.hostname}</dd>
            <dt>Isolation</dt><dd>{n.facts.isolation ?? 'unknown (older agent)'}{n.facts.allowUnisolatedJobs ? ' · runs everyone\u2019s jobs without isolation' : ''}</dd>
            <dt>GPUs</dt><dd>{n.facts.gpus.length === 0 ? 'none' : <ul>{n.facts.gpus.map((g) => <li>#{g.index} {g.model}, {formatBytes(g.memoryBytes)}</li>)}</ul>}</dd>
            <dt>Labels</dt><dd>{Object.keys(n.labels).length === 0 ? 'none' : Object.entries(n.labels).map(([k, v]) => <code class="label">{k}={v}</code>)}</dd>
          </dl>
        </section>
        <section class="card" aria-label="Utilisation">
          <h2>In use</h2>
          <Meter label="Cores" used={n.allocated.cpu} total={n.capacity.cpu} format={cores} />
          <Meter label="Memory" used={n.allocated.memoryBytes} total={n.capacity.memoryBytes} format={formatBytes} />
          <Meter label="GPUs" used={n.allocated.gpus} total={n.capacity.gpus} format={String} />
          <p class="muted">{n.runningTasks} running, {n.assignedTasks} waiting on the node. Reserved by the tasks it holds, as the scheduler counts them.</p>
          <h2>The whole machine</h2>
          {n.hostUsage ? <>
            <Meter label="Load (1 min)" used={n.hostUsage.load1} total={n.facts.cores} format={cores} />
            <Meter label="Memory in use" used={n.hostUsage.memoryUsedBytes} total={n.facts.memoryBytes} format={formatBytes} />
            <p class="muted">Reported {formatAgo(n.hostUsage.at, now)}, everything on the machine counted.</p>
          </> : <p class="muted">Not reported (offline, or an older agent).</p>}
        </section>
      </div>
      <section aria-label="Running on this node">
        <h2>Running here</h2>
        <ErrorNote error={attempts.error} />
        <Table head={['Job', 'Task', 'State', 'Started']} caption="Attempts on this node" empty="Nothing runs here now.">
          {(attempts.data?.items ?? []).map((a) => (
            <tr key={a.attemptId}>
              <Cell label="Job"><a href={href(`/jobs/${a.jobId}`)}>{a.jobName}</a></Cell>
              <Cell label="Task"><a href={href(`/jobs/${a.jobId}/tasks/${a.taskIndex}`)}>{a.taskIndex}</a></Cell>
              <Cell label="State"><State state={a.state} /></Cell>
              <Cell label="Started">{formatAgo(a.startedAt, now)}</Cell>
            </tr>
          ))}
        </Table>
      </section>
    </div>
  );
}

type NodeAction = 'drain' | 'cordon' | 'uncordon' | 'remove';
const LABELS: Record<NodeAction, string> = { drain: 'Drain', cordon: 'Cordon', uncordon: 'Take back', remove: 'Remove' };
const HELP: Record<NodeAction, string> = {
  drain: 'no new work; what it runs finishes',
  cordon: 'no new work; what it runs goes on',
  uncordon: 'end the cordon, drain or quarantine',
  remove: 'forget the node (refused while it holds work)',
};

/** The actions that fit a node's state. */
export function actionsFor(n: Pick<NodeV1, 'scheduling' | 'state'>): NodeAction[] {
  const out: NodeAction[] = [];
  if (n.scheduling === 'eligible') out.push('drain', 'cordon');
  else out.push('uncordon');
  if (n.state !== 'online' || n.scheduling === 'drained') out.push('remove');
  return out;
}
