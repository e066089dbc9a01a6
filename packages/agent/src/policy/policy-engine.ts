/**
 * The volunteer policy engine: a pure function from (readings, policy, previous memory) to (memory, actions).
 * No clock, no I/O: the agent's PolicyController reads the machine, calls `evaluatePolicy`, and carries out the
 * actions on its tasks. Everything timed (grace, hysteresis) is measured from `readings.now`.
 *
 * States (core's NodePolicyState) and what moves between them:
 *
 *                      blocker appears: suspend (at once)
 *     working ─────────────────────────────────────────────▶ suspended:owner-active | outside-window | on-battery | too-hot
 *        ▲                                                     │   │  another blocker takes over: state changes, no action
 *        │  no blocker for `resumeAfterMs`: resume             │   │  (the suspension and its grace clock go on)
 *        └─────────────────────────────────────────────────────┘   │
 *                                                                  └─ suspended for `graceMs`: stop (once per suspension;
 *                                                                     the tasks are killed and requeued elsewhere)
 *
 * Blockers, first match wins (the order a person would ask about them): too hot (temperature ≥ ceiling; cool again
 * only at ceiling − `temperatureHysteresis`), on battery, outside every time window, owner active (keyboard or mouse
 * used within `idleMs`, or owner CPU ≥ threshold for `cpuSpikeMs` in a row; quiet again only below threshold −
 * `cpuHysteresisPercent`).
 *
 * Flapping is prevented twice: a blocker that clears must stay clear for `resumeAfterMs` before tasks resume, and the
 * tasks are only stopped after `graceMs` of continuous suspension — a spike shorter than the grace period costs a
 * pause, never the work done.
 *
 * Unknown readings (null): idle time unknown counts as **busy** when the policy is idle-only (we cannot tell that
 * nobody is at the keyboard, so we assume somebody is) and is ignored otherwise; owner CPU unknown is ignored (the
 * idle test then rests on input alone); power unknown counts as on AC (no battery was found); temperature unknown
 * means the ceiling cannot be applied (the controller logs that once).
 */
import type { NodePolicyState, NodePolicyStatus } from '@dsg/core';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A span of local time: starts on one of `days` at `fromMinute`, ends at `toMinute` (the next day if earlier). */
export interface TimeWindow {
  readonly days: readonly Weekday[];
  /** Minutes after local midnight, 0–1439. */
  readonly fromMinute: number;
  /** Minutes after local midnight, 0–1440; at or before `fromMinute`: the window crosses midnight (equal: 24 h). */
  readonly toMinute: number;
}

/** A compiled policy (see policy-file.ts for the file and its defaults). */
export interface VolunteerPolicy {
  /** Run only when the machine is idle; null: whether or not the owner uses it. */
  readonly idle: {
    /** No keyboard or mouse input for this long. */
    readonly idleMs: number;
    /** Owner CPU (machine-wide %, processes that are not the agent's) at or above this is "in use"; null: ignore CPU. */
    readonly ownerCpuPercent: number | null;
  } | null;
  /** When the machine may work, in its local time; empty: any time. */
  readonly windows: readonly TimeWindow[];
  readonly acPowerOnly: boolean;
  /** °C; null: no ceiling. */
  readonly maxTemperatureC: number | null;
  /** Suspended this long in a row: stop the tasks and let them run elsewhere. */
  readonly graceMs: number;
  /** A blocker must stay gone this long before tasks resume. */
  readonly resumeAfterMs: number;
  /** Owner CPU must stay at or above the threshold this long before it counts (shorter spikes are ignored). */
  readonly cpuSpikeMs: number;
  /** Owner CPU counts as quiet again only below threshold minus this. */
  readonly cpuHysteresisPercent: number;
  /** Too hot ends only at or below ceiling minus this. */
  readonly temperatureHysteresisC: number;
}

export interface PolicyReadings {
  /** Epoch ms. */
  readonly now: number;
  /** Local weekday and minute after local midnight at `now` (machine local time). */
  readonly local: { readonly weekday: Weekday; readonly minute: number };
  /** Time since the last keyboard or mouse input; null when the OS does not say. */
  readonly idleMs: number | null;
  /** CPU used by processes that are not the agent's, % of the whole machine; null when unknown. */
  readonly ownerCpuPercent: number | null;
  /** On mains power; null when unknown. */
  readonly onAc: boolean | null;
  /** Hottest thermal zone, °C; null when the OS reports none. */
  readonly temperatureC: number | null;
}

/** What the engine remembers between calls. Start with `initialPolicyMemory(now)`. */
export interface PolicyMemory {
  readonly status: NodePolicyStatus;
  /** When the current suspension began (null while working). */
  readonly suspendedSince: number | null;
  /** The tasks of the current suspension were stopped already. */
  readonly stopped: boolean;
  /** While suspended: since when no blocker has been seen (null: one is present). */
  readonly clearSince: number | null;
  /** Since when owner CPU has been at or above the threshold (null: below it). */
  readonly cpuHighSince: number | null;
  /** Owner CPU counts as busy (latched with hysteresis). */
  readonly cpuBusy: boolean;
  /** Too hot (latched with hysteresis). */
  readonly hot: boolean;
}

export type PolicyAction =
  | { readonly kind: 'suspend'; readonly reason: string }
  | { readonly kind: 'resume' }
  | { readonly kind: 'stop'; readonly reason: string };

export interface PolicyDecision {
  readonly memory: PolicyMemory;
  readonly actions: readonly PolicyAction[];
  /** The state changed (report it). */
  readonly changed: boolean;
}

export const initialPolicyMemory = (now: number): PolicyMemory => ({
  status: { state: 'working', reason: 'no reason to hold back', since: now },
  suspendedSince: null, stopped: false, clearSince: null, cpuHighSince: null, cpuBusy: false, hot: false,
});

/** True when `local` falls in one of the windows (none: always). */
export function inWindows(windows: readonly TimeWindow[], local: PolicyReadings['local']): boolean {
  if (windows.length === 0) return true;
  const today = WEEKDAYS.indexOf(local.weekday);
  const yesterday = WEEKDAYS[(today + 6) % 7]!;
  return windows.some((w) => {
    if (w.fromMinute < w.toMinute) return w.days.includes(local.weekday) && local.minute >= w.fromMinute && local.minute < w.toMinute;
    // Crosses midnight (or lasts 24 h): the part after `from` belongs to its start day, the part before `to` to the day after.
    return (w.days.includes(local.weekday) && local.minute >= w.fromMinute) || (w.days.includes(yesterday) && local.minute < w.toMinute);
  });
}

const secs = (ms: number): string => (ms < 120_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)} min`);
const hhmm = (m: number): string => `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
export const describeWindow = (w: TimeWindow): string => `${w.days.join(',')} ${hhmm(w.fromMinute)}-${hhmm(w.toMinute)}`;

export function evaluatePolicy(r: PolicyReadings, policy: VolunteerPolicy, prev: PolicyMemory): PolicyDecision {
  // Latched conditions first (hysteresis), then the blocker.
  let hot = prev.hot;
  if (policy.maxTemperatureC !== null && r.temperatureC !== null) {
    if (r.temperatureC >= policy.maxTemperatureC) hot = true;
    else if (r.temperatureC <= policy.maxTemperatureC - policy.temperatureHysteresisC) hot = false;
  } else hot = false;

  let cpuHighSince = prev.cpuHighSince;
  let cpuBusy = prev.cpuBusy;
  const cpuLimit = policy.idle?.ownerCpuPercent ?? null;
  if (cpuLimit !== null && r.ownerCpuPercent !== null) {
    if (r.ownerCpuPercent >= cpuLimit) {
      cpuHighSince ??= r.now;
      if (r.now - cpuHighSince >= policy.cpuSpikeMs) cpuBusy = true;
    } else {
      cpuHighSince = null;
      if (r.ownerCpuPercent < cpuLimit - policy.cpuHysteresisPercent) cpuBusy = false;
    }
  } else {
    cpuHighSince = null;
    cpuBusy = false;
  }

  const blocker = ((): { state: NodePolicyState; reason: string } | null => {
    if (hot) return { state: 'too-hot', reason: `${r.temperatureC ?? '?'}°C; the ceiling is ${policy.maxTemperatureC}°C (works again at ${policy.maxTemperatureC! - policy.temperatureHysteresisC}°C)` };
    if (policy.acPowerOnly && r.onAc === false) return { state: 'on-battery', reason: 'running on battery; the policy works on AC power only' };
    if (!inWindows(policy.windows, r.local))
      return { state: 'outside-window', reason: `${r.local.weekday} ${hhmm(r.local.minute)} is outside the time windows (${policy.windows.map(describeWindow).join('; ')})` };
    if (policy.idle) {
      if (r.idleMs === null) return { state: 'suspended:owner-active', reason: 'this machine does not say how long it has been idle; the policy runs only when idle, so it counts as in use' };
      if (r.idleMs < policy.idle.idleMs) return { state: 'suspended:owner-active', reason: `keyboard or mouse used ${secs(r.idleMs)} ago (works after ${secs(policy.idle.idleMs)} without input)` };
      if (cpuBusy) return { state: 'suspended:owner-active', reason: `the owner's programs use ${Math.round(r.ownerCpuPercent ?? 0)}% of the CPU (the limit is ${cpuLimit}%)` };
    }
    return null;
  })();

  const base = { cpuHighSince, cpuBusy, hot };
  const actions: PolicyAction[] = [];
  let memory: PolicyMemory;
  if (prev.status.state === 'working') {
    if (blocker) {
      actions.push({ kind: 'suspend', reason: blocker.reason });
      memory = { ...base, status: { ...blocker, since: r.now }, suspendedSince: r.now, stopped: false, clearSince: null };
    } else memory = { ...base, status: prev.status, suspendedSince: null, stopped: false, clearSince: null };
  } else {
    const since = prev.suspendedSince ?? r.now;
    if (blocker) {
      const status = blocker.state === prev.status.state ? { ...blocker, since: prev.status.since } : { ...blocker, since: r.now };
      let stopped = prev.stopped;
      if (!stopped && r.now - since >= policy.graceMs) {
        actions.push({ kind: 'stop', reason: `${blocker.reason}; suspended for more than ${secs(policy.graceMs)}` });
        stopped = true;
      }
      memory = { ...base, status, suspendedSince: since, stopped, clearSince: null };
    } else {
      const clearSince = prev.clearSince ?? r.now;
      if (r.now - clearSince >= policy.resumeAfterMs) {
        actions.push({ kind: 'resume' });
        memory = { ...base, status: { state: 'working', reason: 'no reason to hold back', since: r.now }, suspendedSince: null, stopped: false, clearSince: null };
      } else {
        // Clear, but not for long enough yet: stay suspended (the grace clock keeps running: a machine that flaps
        // between busy and quiet for longer than the grace period gives its tasks back).
        let stopped = prev.stopped;
        if (!stopped && r.now - since >= policy.graceMs) {
          actions.push({ kind: 'stop', reason: `${prev.status.reason}; suspended for more than ${secs(policy.graceMs)}` });
          stopped = true;
        }
        memory = { ...base, status: prev.status, suspendedSince: since, stopped, clearSince };
      }
    }
  }
  // Only a change of state is news: the reason's wording ("used 5s ago", "used 9s ago") moves on every reading.
  const changed = memory.status.state !== prev.status.state;
  return { memory, actions, changed };
}
