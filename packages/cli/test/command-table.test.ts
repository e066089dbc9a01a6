// The command table says which module registers each top-level command, so `dsg X` loads only that module. If a
// module registers a command the table does not name (or the table names one no module registers), `dsg X` would
// fail to find it: this test catches that before a user does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { COMMANDS, commandsFor, commandWord, globalFlagsIn } from '../src/command-table.js';

describe('command table', () => {
  it('names exactly the commands each module registers', async () => {
    for (const entry of COMMANDS) {
      const program = new Command();
      (await entry.load())(program, () => ({}));
      const registered = program.commands.flatMap((c) => [c.name(), ...c.aliases()]).sort();
      assert.deepEqual(registered, [...entry.names].sort(), `module for ${entry.names.join('/')}`);
    }
  });

  it('no two entries claim the same command', () => {
    const all = COMMANDS.flatMap((c) => c.names);
    assert.equal(new Set(all).size, all.length);
  });

  it('finds the command word past global options and their values', () => {
    assert.equal(commandWord(['--coordinator', 'http://x', '--token', 't', 'jobs', '--json']), 'jobs');
    assert.equal(commandWord(['--tls-fingerprint', 'jobs', 'nodes']), 'nodes');
    assert.equal(commandWord(['--json']), null);
    assert.equal(commandWord(['--', 'jobs']), null);
  });

  it('loads one module for a known command, none for --version, all for help or an unknown word', () => {
    assert.deepEqual(commandsFor(['jobs']).map((c) => c.names[0]), ['jobs']);
    assert.deepEqual(commandsFor(['tasks', 'job_1']).map((c) => c.names[0]), ['job']);
    assert.equal(commandsFor(['--version']).length, 0);
    assert.equal(commandsFor(['-V']).length, 0);
    assert.equal(commandsFor(['--help']).length, COMMANDS.length);
    assert.equal(commandsFor([]).length, COMMANDS.length);
    assert.equal(commandsFor(['jbos']).length, COMMANDS.length);
    assert.equal(commandsFor(['help', 'jobs']).length, COMMANDS.length);
  });

  it('marks exactly the commands that keep running as serving, and those that never call a coordinator as offline', () => {
    assert.deepEqual(COMMANDS.filter((c) => c.serves).map((c) => c.names[0]).sort(), ['agent', 'coordinator', 'up']);
    assert.deepEqual(COMMANDS.filter((c) => c.offline).map((c) => c.names[0]).sort(), ['discover', 'spec']);
  });

  it('reads the global options as commander does: either spelling, before or after the command, not past --', () => {
    assert.deepEqual(globalFlagsIn(['--coordinator', 'https://a:1', 'jobs', '--token=t', '--json']), { coordinator: 'https://a:1', token: 't' });
    assert.deepEqual(globalFlagsIn(['jobs', '--tls-fingerprint', 'sha256:ab', '--coordinator=http://b']), { tlsFingerprint: 'sha256:ab', coordinator: 'http://b' });
    assert.deepEqual(globalFlagsIn(['jobs', '--', '--coordinator', 'x']), {});
    assert.deepEqual(globalFlagsIn(['jobs', '--coordinator']), {});
  });
});
