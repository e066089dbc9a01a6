// The volunteer policy engine, table-tested with simulated readings: each case is a sequence of readings (one per
// step, time advancing) and the states and actions expected after each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluatePolicy, initialPolicyMemory, inWindows, type PolicyReadings, type VolunteerPolicy, type Weekday } from '../src/policy/policy-engine.js';
import { compilePolicy } from '../src/policy/policy-file.js';

const MIN = 60_000;
const base: VolunteerPolicy = {
  idle: { idleMs: 5 * MIN, ownerCpuPercent: 30 },
  windows: [],
  acPowerOnly: true,
  maxTemperatureC: 80,
  graceMs: 2 * MIN,
  resumeAfterMs: 30_000,
  cpuSpikeMs: 10_000,
  cpuHysteresisPercent: 10,
  temperatureHysteresisC: 5,
};

type Step = { at: number; r?: Partial<Omit<PolicyReadings, 'now'>>; state: string; actions?: string[] };

/** Runs the steps from a quiet machine (idle an hour, no owner CPU, on AC, 40°C) on a Wednesday at noon. */
function run(policy: VolunteerPolicy, steps: Step[]): void {
  let mem = initialPolicyMemory(0);
  for (const [i, s] of steps.entries()) {
    const r: PolicyReadings = { now: s.at, local: { weekday: 'wed', minute: 12 * 60 }, idleMs: 60 * MIN, ownerCpuPercent: 0, onAc: true, temperatureC: 40, ...s.r };
    const d = evaluatePolicy(r, policy, mem);
    mem = d.memory;
    assert.equal(mem.status.state, s.state, `step ${i} (t=${s.at / 1000}s): state; reason: ${mem.status.reason}`);
    assert.deepEqual(d.actions.map((a) => a.kind), s.actions ?? [], `step ${i} (t=${s.at / 1000}s): actions`);
  }
}

describe('policy engine: idle and busy', () => {
  const cases: Array<[string, VolunteerPolicy, Step[]]> = [
    ['a quiet machine works', base, [
      { at: 0, state: 'working' },
      { at: 5000, state: 'working' },
    ]],
    ['the owner comes back: suspended at once; idle again for the idle time + resume delay: resumed', base, [
      { at: 0, state: 'working' },
      { at: 1000, r: { idleMs: 200 }, state: 'suspended:owner-active', actions: ['suspend'] },
      { at: 20_000, r: { idleMs: 19_000 }, state: 'suspended:owner-active' },
      // 5 min without input: the blocker is gone, but it must stay gone 30 s before resuming.
      { at: 1000 + 5 * MIN, r: { idleMs: 5 * MIN }, state: 'suspended:owner-active', actions: ['stop'] },
      { at: 1000 + 5 * MIN + 29_000, r: { idleMs: 5 * MIN + 29_000 }, state: 'suspended:owner-active' },
      { at: 1000 + 5 * MIN + 30_000, r: { idleMs: 5 * MIN + 30_000 }, state: 'working', actions: ['resume'] },
    ]],
    ['a touch shorter than the grace period: suspend and resume, never stop', { ...base, idle: { idleMs: 10_000, ownerCpuPercent: null }, resumeAfterMs: 5000 }, [
      { at: 0, state: 'working' },
      { at: 1000, r: { idleMs: 0 }, state: 'suspended:owner-active', actions: ['suspend'] },
      { at: 11_000, r: { idleMs: 10_000 }, state: 'suspended:owner-active' },
      { at: 16_000, r: { idleMs: 15_000 }, state: 'working', actions: ['resume'] },
      { at: 200_000, state: 'working' },
    ]],
    ['busy past the grace period: stop once, then resume when quiet', { ...base, idle: { idleMs: 10_000, ownerCpuPercent: null }, resumeAfterMs: 0 }, [
      { at: 0, r: { idleMs: 0 }, state: 'suspended:owner-active', actions: ['suspend'] },
      { at: 60_000, r: { idleMs: 0 }, state: 'suspended:owner-active' },
      { at: 120_000, r: { idleMs: 0 }, state: 'suspended:owner-active', actions: ['stop'] },
      { at: 180_000, r: { idleMs: 0 }, state: 'suspended:owner-active' },
      { at: 190_000, r: { idleMs: 10_000 }, state: 'working', actions: ['resume'] },
    ]],
    ['flapping between quiet and busy longer than the grace period still gives the tasks back', { ...base, idle: { idleMs: 10_000, ownerCpuPercent: null }, resumeAfterMs: 60_000 }, [
      { at: 0, r: { idleMs: 0 }, state: 'suspended:owner-active', actions: ['suspend'] },
      { at: 50_000, r: { idleMs: 40_000 }, state: 'suspended:owner-active' },
      { at: 100_000, r: { idleMs: 0 }, state: 'suspended:owner-active' },
      { at: 130_000, r: { idleMs: 20_000 }, state: 'suspended:owner-active', actions: ['stop'] },
    ]],
  ];
  for (const [name, policy, steps] of cases) it(name, () => run(policy, steps));
});

describe('policy engine: owner CPU with spike filter and hysteresis', () => {
  it('a CPU spike shorter than cpuSpikeMs is ignored; a sustained one suspends; quiet only below threshold − hysteresis', () => {
    run(base, [
      { at: 0, r: { ownerCpuPercent: 90 }, state: 'working' },
      { at: 5000, r: { ownerCpuPercent: 90 }, state: 'working' },
      { at: 6000, r: { ownerCpuPercent: 5 }, state: 'working' }, // the spike ended before 10 s
      { at: 7000, r: { ownerCpuPercent: 50 }, state: 'working' },
      { at: 17_000, r: { ownerCpuPercent: 50 }, state: 'suspended:owner-active', actions: ['suspend'] },
      // 25%: below the 30% threshold but not below 20%: still busy (no flapping around the threshold).
      { at: 30_000, r: { ownerCpuPercent: 25 }, state: 'suspended:owner-active' },
      { at: 80_000, r: { ownerCpuPercent: 25 }, state: 'suspended:owner-active' },
      { at: 90_000, r: { ownerCpuPercent: 15 }, state: 'suspended:owner-active' },
      { at: 120_000, r: { ownerCpuPercent: 15 }, state: 'working', actions: ['resume'] },
    ]);
  });
  it('unknown owner CPU is ignored (input alone decides)', () => {
    run(base, [{ at: 0, r: { ownerCpuPercent: null }, state: 'working' }, { at: 60_000, r: { ownerCpuPercent: null }, state: 'working' }]);
  });
});

describe('policy engine: unknown idle time', () => {
  it('counts as in use when the policy is idle-only, and says so', () => {
    const d = evaluatePolicy({ now: 0, local: { weekday: 'wed', minute: 0 }, idleMs: null, ownerCpuPercent: 0, onAc: true, temperatureC: null }, base, initialPolicyMemory(0));
    assert.equal(d.memory.status.state, 'suspended:owner-active');
    assert.match(d.memory.status.reason, /does not say how long it has been idle.*counts as in use/);
  });
  it('is ignored when the policy is not idle-only', () => {
    run({ ...base, idle: null }, [{ at: 0, r: { idleMs: null }, state: 'working' }]);
  });
});

describe('policy engine: battery, temperature, windows', () => {
  it('on battery suspends at once; unknown power counts as AC; back on AC resumes', () => {
    run({ ...base, resumeAfterMs: 0 }, [
      { at: 0, r: { onAc: null }, state: 'working' },
      { at: 1000, r: { onAc: false }, state: 'on-battery', actions: ['suspend'] },
      { at: 2000, r: { onAc: true }, state: 'working', actions: ['resume'] },
    ]);
    run({ ...base, acPowerOnly: false }, [{ at: 0, r: { onAc: false }, state: 'working' }]);
  });
  it('too hot at the ceiling; cool again only 5°C below; unknown temperature never blocks', () => {
    run({ ...base, resumeAfterMs: 0 }, [
      { at: 0, r: { temperatureC: 79 }, state: 'working' },
      { at: 1000, r: { temperatureC: 80 }, state: 'too-hot', actions: ['suspend'] },
      { at: 2000, r: { temperatureC: 77 }, state: 'too-hot' },
      { at: 3000, r: { temperatureC: 75 }, state: 'working', actions: ['resume'] },
      { at: 4000, r: { temperatureC: null }, state: 'working' },
    ]);
  });
  it('another blocker taking over changes the state but keeps the suspension and its grace clock', () => {
    run({ ...base, graceMs: 10_000 }, [
      { at: 0, r: { onAc: false }, state: 'on-battery', actions: ['suspend'] },
      { at: 6000, r: { onAc: true, temperatureC: 90 }, state: 'too-hot' },
      { at: 10_000, r: { temperatureC: 90 }, state: 'too-hot', actions: ['stop'] },
    ]);
  });
  const at = (weekday: Weekday, hhmm: string): { weekday: Weekday; minute: number } => ({ weekday, minute: Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)) });
  it('windows: nights crossing midnight belong to their start day; weekends all day', () => {
    const { policy } = compilePolicy({ windows: [{ days: 'weekdays', from: '19:00', to: '07:00' }, { days: ['sat', 'sun'] }] });
    const table: Array<[Weekday, string, boolean]> = [
      ['mon', '18:59', false], ['mon', '19:00', true], ['mon', '23:59', true], ['tue', '00:00', true], ['tue', '06:59', true],
      ['tue', '07:00', false], ['tue', '12:00', false],
      // Friday night runs into Saturday morning (and Saturday is in anyway); Monday 03:00 follows Sunday, a weekend day
      // whose window is 00:00–24:00 and does not cross midnight: Monday's early hours are not in.
      ['fri', '22:00', true], ['sat', '03:00', true], ['sun', '23:00', true], ['mon', '03:00', false],
    ];
    for (const [d, t, want] of table) assert.equal(inWindows(policy.windows, at(d, t)), want, `${d} ${t}`);
  });
  it('outside the window suspends, inside resumes (a Sunday-night window crossing into Monday)', () => {
    const { policy } = compilePolicy({ windows: [{ days: ['sun'], from: '22:00', to: '06:00' }], resumeAfterSeconds: 0 });
    run(policy, [
      { at: 0, r: { local: at('sun', '21:59') }, state: 'outside-window', actions: ['suspend'] },
      { at: 60_000, r: { local: at('sun', '22:00') }, state: 'working', actions: ['resume'] },
      { at: 120_000, r: { local: at('mon', '05:59') }, state: 'working' },
      { at: 180_000, r: { local: at('mon', '06:00') }, state: 'outside-window', actions: ['suspend'] },
    ]);
  });
  it('reports a change only when the state changes', () => {
    let mem = initialPolicyMemory(0);
    const changes: boolean[] = [];
    for (const [t, idle] of [[0, 0], [1000, 1000], [2000, 2000]] as const) {
      const d = evaluatePolicy({ now: t, local: { weekday: 'wed', minute: 0 }, idleMs: idle, ownerCpuPercent: 0, onAc: true, temperatureC: null }, base, mem);
      mem = d.memory;
      changes.push(d.changed);
    }
    assert.deepEqual(changes, [true, false, false]);
  });
});
