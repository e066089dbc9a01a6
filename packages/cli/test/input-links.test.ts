// Links among a spec's inputs, on real files: a link in the spec's folder that leads out of it is refused at submit
// with the path (a key or a data dir is never sent without the spec naming it); a path the spec names outside its
// folder is the user's choice and is sent; inside an input directory a link to a file within it is sent, one that
// leads outside or nowhere is refused — never dropped silently.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ValidationError } from '@dsg/core';
import { collectInputs, loadSpecFile } from '../src/spec-file.js';

describe('input links at submit', () => {
  const root = mkdtempSync(join(tmpdir(), 'dsg-inputs-'));
  const proj = join(root, 'project');
  const secret = join(root, 'secret.key');
  mkdirSync(join(proj, 'data', 'sub'), { recursive: true });
  mkdirSync(join(root, 'scripts'));
  writeFileSync(secret, 'do not send\n');
  writeFileSync(join(root, 'scripts', 'align.sh'), 'echo align\n');
  writeFileSync(join(proj, 'data', 'a.txt'), 'a\n');
  symlinkSync(join(proj, 'data', 'a.txt'), join(proj, 'data', 'sub', 'alias.txt'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const inputsOf = async (inputs: string[]) => {
    const file = join(proj, `job-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, `name: t\nscript: "true"\ninputs: [${inputs.map((i) => JSON.stringify(i)).join(', ')}]\n`);
    return collectInputs(await loadSpecFile(file));
  };

  it('refuses a link in the spec folder that leads outside it, naming both', async () => {
    symlinkSync(secret, join(proj, 'key'));
    await assert.rejects(inputsOf(['key']), (e: unknown) => e instanceof ValidationError && /inputs\[0\]/.test(e.message) && e.message.includes(secret) && /outside the spec's folder/.test(e.message));
  });

  it('sends a path the spec names outside its folder', async () => {
    const got = await inputsOf(['../scripts/align.sh']);
    assert.deepEqual(got.map((g) => g.path), ['scripts/align.sh']);
  });

  it('sends a link to a file inside an input directory', async () => {
    const got = await inputsOf(['data']);
    assert.deepEqual(got.map((g) => g.path).sort(), ['data/a.txt', 'data/sub/alias.txt']);
  });

  it('refuses links inside an input directory that lead outside it or nowhere', async () => {
    mkdirSync(join(proj, 'more'));
    writeFileSync(join(proj, 'more', 'ok.txt'), 'ok\n');
    symlinkSync(secret, join(proj, 'more', 'stolen.key'));
    symlinkSync(join(proj, 'more', 'gone.txt'), join(proj, 'more', 'broken'));
    await assert.rejects(inputsOf(['more']), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.match(e.message, /stolen\.key is a link to .*secret\.key, outside the input directory/);
      assert.match(e.message, /broken is a link to nothing/);
      return true;
    });
  });
});
