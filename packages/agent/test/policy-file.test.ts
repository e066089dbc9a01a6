// The volunteer policy file: what it accepts, what it refuses (with the field path and line), and flag overrides.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ValidationError } from '@dsg/core';
import { compilePolicy, loadPolicyFile, parsePolicyText, parseWindowFlag } from '../src/policy/policy-file.js';

const EXAMPLE = `# Lab desktop: nights and weekends, never on battery
share:
  cpus: 4
  memory: 8Gi
  gpus: [0, GPU-1234]
idle:
  minutes: 10
  ownerCpuPercent: 25
windows:
  - days: [sat, sun]
  - days: weekdays
    from: "19:00"
    to: "07:00"
acPowerOnly: true
maxTemperature: 85
gracePeriodMinutes: 5
`;

const issuesOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected a ValidationError');
};

describe('policy file', () => {
  it('compiles the README example', () => {
    const c = parsePolicyText(EXAMPLE, 'policy.yaml');
    assert.deepEqual(c.share, { cpus: 4, memoryBytes: 8 * 1024 ** 3, gpus: [0, 'GPU-1234'] });
    assert.deepEqual(c.policy.idle, { idleMs: 600_000, ownerCpuPercent: 25 });
    assert.equal(c.policy.windows.length, 2);
    assert.deepEqual(c.policy.windows[1], { days: ['mon', 'tue', 'wed', 'thu', 'fri'], fromMinute: 19 * 60, toMinute: 7 * 60 });
    assert.deepEqual(c.policy.windows[0], { days: ['sat', 'sun'], fromMinute: 0, toMinute: 1440 });
    assert.equal(c.policy.acPowerOnly, true);
    assert.equal(c.policy.maxTemperatureC, 85);
    assert.equal(c.policy.graceMs, 300_000);
    assert.equal(c.watches, true);
  });

  it('an empty file is no policy at all: nothing to watch', () => {
    const c = parsePolicyText('', 'p.yaml');
    assert.equal(c.watches, false);
    assert.equal(c.policy.idle, null);
  });

  it('refuses unknown fields, bad values and bad times with their path and line', () => {
    const text = 'idle:\n  minutes: ten\nwindows:\n  - days: [mon, funday]\n    from: "25:00"\nacPowerOnly: yes please\nshare:\n  memory: lots\ncolour: blue\n';
    const issues = issuesOf(() => parsePolicyText(text, 'p.yaml'));
    const joined = issues.join('\n');
    assert.match(joined, /idle\.minutes \(line 2\): .*number/i);
    assert.match(joined, /windows\.0\.days.*\(line 4\)/);
    assert.match(joined, /windows\.0\.from \(line 5\): expected a time like "19:00"/);
    assert.match(joined, /acPowerOnly \(line 6\): .*boolean/i);
    assert.match(joined, /colour|unrecognized/i);
    // A size is checked after the shape: alone, it is reported with its line too.
    assert.match(issuesOf(() => parsePolicyText('share:\n  memory: lots\n', 'p.yaml')).join('\n'), /share\.memory \(line 2\): expected a size like 8Gi/);
  });

  it('says where a YAML syntax error is', () => {
    const issues = issuesOf(() => parsePolicyText('idle:\n  minutes: [1, 2\n', 'p.yaml'));
    assert.match(issues.join('\n'), /line \d/);
  });

  it('flags override the file; a flag alone makes a policy', () => {
    const c = parsePolicyText(EXAMPLE, 'p.yaml', { idleMinutes: 2, ownerCpuPercent: 50, windows: ['22:00-06:00'], maxTemperature: 70, gracePeriodMinutes: 1, gpus: [] });
    assert.deepEqual(c.policy.idle, { idleMs: 120_000, ownerCpuPercent: 50 });
    assert.deepEqual(c.policy.windows, [{ days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], fromMinute: 22 * 60, toMinute: 6 * 60 }]);
    assert.equal(c.policy.maxTemperatureC, 70);
    assert.equal(c.policy.graceMs, 60_000);
    assert.deepEqual(c.share.gpus, []);
    const only = compilePolicy({}, { acPowerOnly: true });
    assert.equal(only.watches, true);
    assert.equal(only.policy.idle, null);
  });

  it('window flags: days, ranges (also across the week end), hours; bad ones name the flag', () => {
    assert.deepEqual(parseWindowFlag('sat,sun'), { days: ['sat', 'sun'], from: '00:00', to: '24:00' });
    assert.deepEqual(parseWindowFlag('mon-fri 19:00-07:00'), { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '19:00', to: '07:00' });
    assert.deepEqual(parseWindowFlag('fri-mon'), { days: ['fri', 'sat', 'sun', 'mon'], from: '00:00', to: '24:00' });
    assert.deepEqual(parseWindowFlag('weekend 08:00-20:00'), { days: 'weekend', from: '08:00', to: '20:00' });
    for (const bad of ['someday', '25:00-26:00', 'mon 9-5', ''])
      assert.match(issuesOf(() => parseWindowFlag(bad)).join(), /--window: expected days and\/or hours/, bad);
  });

  it('a missing file is a clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-policy-'));
    try {
      assert.match(issuesOf(() => loadPolicyFile(join(dir, 'nope.yaml'))).join(), /--policy: cannot read the policy file .*ENOENT/);
      writeFileSync(join(dir, 'p.yaml'), EXAMPLE);
      assert.equal(loadPolicyFile(join(dir, 'p.yaml')).policy.acPowerOnly, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
