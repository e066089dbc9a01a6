// Every `dsg <command>` that a message suggests to users must exist: a hint naming a command that is not there
// sends a student to "unknown command" at the moment they need help most.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, '..', '..', 'bin', 'dsg.js');
const PACKAGES = join(here, '..', '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []);
}

it('every dsg command named in a user-facing message exists', () => {
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  const commands = new Set([...help.stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!));
  assert.ok(commands.has('submit') && commands.has('retry'), [...commands].join(' '));
  const unknown: string[] = [];
  for (const pkg of ['cli', 'coordinator', 'core', 'client']) {
    for (const file of sources(join(PACKAGES, pkg, 'src'))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const code = line.trim();
        if (code.startsWith('*') || code.startsWith('//') || code.startsWith('/*')) return; // comments are not shown to users
        for (const m of code.matchAll(/\bdsg ([a-z][a-z-]*)/g)) if (!commands.has(m[1]!) && m[1] !== 'commands') unknown.push(`${file.slice(PACKAGES.length + 1)}:${i + 1}: dsg ${m[1]}`);
      });
    }
  }
  assert.deepEqual(unknown, []);
});
