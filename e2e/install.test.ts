// `npm run pack` makes one npm package; installed with `npm install -g` on a machine without the repository it
// runs a whole grid. Here: pack, install into a temp prefix, then from an empty directory with an empty HOME run
// `dsg up`, submit a one-off command with `dsg run`, and check that nothing is loaded from the repository.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, Sandbox } from './harness.js';

describe('the installable package (npm run pack, npm install -g)', { timeout: 600_000 }, () => {
  const work = new Sandbox();
  after(async () => {
    await work.cleanup();
  });

  it('installs without the repository and runs a grid from any directory', async () => {
    const packed = execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-cli.mjs'), '--out', work.dir], { encoding: 'utf8' }).trim();
    assert.match(packed, /dsg-grid-\d+\.\d+\.\d+\.tgz$/);
    const listing = execFileSync('tar', ['-tzf', packed], { encoding: 'utf8' }).split('\n');
    assert.ok(listing.includes('package/bundle/dsg.js') && listing.includes('package/bundle/launcher-main.js') && listing.includes('package/bundle/web/index.html'), listing.join('\n'));
    assert.ok(listing.some((f) => /^package\/bundle\/web\/assets\/app-[A-Z0-9]{8}\.js$/.test(f)), 'the dashboard\'s script is in the package');
    assert.ok(!listing.some((f) => f.endsWith('.map') || f.includes('/src/') || f.includes('node_modules')), 'no sources, maps or node_modules inside');
    const pkg = JSON.parse(execFileSync('tar', ['-xzOf', packed, 'package/package.json'], { encoding: 'utf8' })) as { dependencies: Record<string, string> };
    assert.deepEqual(Object.keys(pkg.dependencies), ['better-sqlite3'], 'everything else is in the bundle');

    // Install as a user would (better-sqlite3 compiles here: about a minute on 2 cores), from an unrelated cwd.
    const prefix = join(work.dir, 'prefix');
    const elsewhere = join(work.dir, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const nodeDir = join(process.execPath, '..', '..');
    const install = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', packed], {
      cwd: elsewhere, encoding: 'utf8', env: { ...process.env, ...(existsSync(join(nodeDir, 'include', 'node', 'node.h')) ? { npm_config_nodedir: nodeDir } : {}) },
    });
    assert.equal(install.status, 0, `${install.stdout}\n${install.stderr}`);
    const bin = join(prefix, 'bin', 'dsg');
    assert.ok(realpathSync(bin).startsWith(realpathSync(prefix)), 'the dsg on PATH is the installed one');

    const sb = new Sandbox(bin);
    try {
      const v = await sb.run(['--version'], { cwd: elsewhere });
      assert.equal(v.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
      const up = sb.start(['up', '--data-dir', join(sb.dir, 'data'), '--port', '0', '--no-advertise']);
      await sb.credentials(join(sb.dir, 'data'), up.output);
      const r = await sb.run(['run', '--wait', '--json', '--give-up-after', '60s', '--', 'sh', '-c', 'echo "ran in $PWD"'], { cwd: elsewhere, timeoutMs: 90_000 });
      assert.equal(r.code, 0, `${r.stderr}\n${up.output()}`);
      const job = JSON.parse(r.stdout) as { id: string; state: string };
      assert.equal(job.state, 'succeeded');
      const logs = await sb.run(['logs', job.id], { cwd: elsewhere });
      assert.match(logs.stdout, /^ran in \//);
      // The grid's processes run the installed code, not the repository's.
      const pids = execFileSync('pgrep', ['-f', join(sb.dir, 'data')], { encoding: 'utf8' }).trim().split('\n');
      for (const pid of pids) {
        // The Node binary itself may sit in the repository (.dsg-node/, fetched on a machine whose Node is too old).
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        const args = argv.slice(1).join(' ');
        if (args.includes('dsg')) assert.ok(!args.includes(ROOT), `process ${pid} runs from the repository: ${argv.join(' ')}`);
      }
    } finally {
      await sb.cleanup();
    }
    assert.ok(readdirSync(join(prefix, 'lib', 'node_modules', 'dsg-grid', 'node_modules')).includes('better-sqlite3'));
  });
});
