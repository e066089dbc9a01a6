/** Small shared pieces: the API client, the signed-in principal, state badges, progress bars, tables that fit phones. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { DsgClient } from '@dsg/client';
import type { SessionV1, TaskCounts } from '@dsg/core';

/** No token: the browser's httpOnly session cookie authenticates, and writes carry X-DSG-CSRF. */
export const api = new DsgClient({ baseUrl: location.origin });

export const SessionContext = createContext<SessionV1 | null>(null);
export const useSession = (): SessionV1 | null => useContext(SessionContext);
/** Whether the signed-in token may change things (readers only look; submitters act on their own projects' work). */
export const canAct = (s: SessionV1 | null): boolean => s !== null && (s.role === 'admin' || s.role === 'submitter');
export const isAdmin = (s: SessionV1 | null): boolean => s?.role === 'admin';

/** The current time, ticking every second (relative times and durations of running things). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export function State({ state }: { state: string }) {
  return <span class={`state s-${state}`}>{state}</span>;
}

export function Progress({ counts, total, label }: { counts: TaskCounts; total: number; label?: string }) {
  const pct = (n: number) => `${total ? (100 * n) / total : 0}%`;
  const done = counts.succeeded + counts.failed + counts.cancelled;
  return (
    <div class="progress" role="progressbar" aria-label={label ?? 'progress'} aria-valuemin={0} aria-valuemax={total} aria-valuenow={done}>
      <span class="p-succeeded" style={{ width: pct(counts.succeeded) }} />
      <span class="p-failed" style={{ width: pct(counts.failed) }} />
      <span class="p-running" style={{ width: pct(counts.running + counts.assigned) }} />
      <span class="p-cancelled" style={{ width: pct(counts.cancelled) }} />
    </div>
  );
}

export function Meter({ used, total, label, format }: { used: number; total: number; label: string; format: (n: number) => string }) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  return (
    <div class="meter-wrap">
      <div class="meter-label"><span>{label}</span><span>{format(used)} / {format(total)}</span></div>
      <div class="meter" role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={total} aria-valuenow={used}>
        <span style={{ width: `${pct}%` }} class={pct > 90 ? 'hot' : ''} />
      </div>
    </div>
  );
}

/** A table that becomes stacked cards on a phone: each cell says what it is (data-label) when the header is hidden. */
export function Table({ head, children, caption, empty }: { head: string[]; children: ComponentChildren; caption?: string; empty?: ComponentChildren }) {
  const rows = Array.isArray(children) ? children.flat() : children ? [children] : [];
  return (
    <div class="table-wrap">
      <table class="stack">
        {caption && <caption class="visually-hidden">{caption}</caption>}
        <thead><tr>{head.map((h) => <th scope="col">{h}</th>)}</tr></thead>
        <tbody>{rows.length ? children : <tr><td colSpan={head.length} class="muted">{empty ?? 'Nothing here.'}</td></tr>}</tbody>
      </table>
    </div>
  );
}

export function Cell({ label, children, class: cls }: { label: string; children?: ComponentChildren; class?: string }) {
  return <td data-label={label} class={cls}>{children}</td>;
}

export function ErrorNote({ error }: { error: Error | null }) {
  if (!error) return null;
  return <p class="error" role="alert">{error.message}</p>;
}

export function Loading() {
  return <p class="muted" aria-live="polite">Loading…</p>;
}

/** A button for an action on the API: disabled while running, shows the coordinator's answer on failure. */
export function ActionButton({ label, run, disabled, title, danger, confirm: ask }: { label: string; run: () => Promise<unknown>; disabled?: boolean; title?: string; danger?: boolean; confirm?: string }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  return (
    <span class="action">
      <button type="button" class={danger ? 'danger' : ''} disabled={disabled || busy} title={title} aria-label={title ? `${label}: ${title}` : label}
        onClick={async () => {
          if (ask && !window.confirm(ask)) return;
          setBusy(true);
          setErr(null);
          try {
            await run();
          } catch (e) {
            setErr((e as Error).message);
          } finally {
            setBusy(false);
          }
        }}>{busy ? `${label}…` : label}</button>
      {err && <span class="error" role="alert"> {err}</span>}
    </span>
  );
}
