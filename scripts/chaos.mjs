#!/usr/bin/env node
// `npm run chaos`: fault tolerance under load on real hosts (network namespaces on a bridge; needs root, iproute2
// and nftables). A coordinator and three agents run a workload of tasks with outputs through each fault — an agent
// SIGKILLed, cut off with nftables for 30 s then healed, SIGSTOPped for 30 s then SIGCONTed, the coordinator
// SIGKILLed and restarted at once, a node drained — and a table says, per fault: time from the fault to its tasks
// running elsewhere, tasks lost, tasks with two successful attempts, outputs missing (all three must be 0).
//   Options: --tasks N (default 2000)  --fault-seconds S (default 30)  --runs N (default 2)  --only FAULT[,FAULT]  --json
// Exits 1 if any count is not 0.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useSupportedNode } from './node-runtime.mjs';

await useSupportedNode(import.meta.url);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : def; };
const tasks = Number(arg('--tasks', '2000'));
const faultSeconds = Number(arg('--fault-seconds', '30'));
const runs = Number(arg('--runs', '2'));
const only = arg('--only', null);
const asJson = process.argv.includes('--json');

const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs'), '--quiet'], { stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);
const { runChaos, chaosMissing, FAULTS } = await import(join(root, 'e2e', 'dist', 'chaos-lib.js'));
const missing = chaosMissing();
if (missing.length > 0) {
  process.stderr.write(`[chaos] needs ${missing.join(', ')} (run as root; apt-get install -y iproute2 nftables)\n`);
  process.exit(2);
}
const faults = only ? only.split(',') : FAULTS;
for (const f of faults) if (!FAULTS.includes(f)) { process.stderr.write(`[chaos] --only: unknown fault "${f}" (faults: ${FAULTS.join(', ')})\n`); process.exit(2); }

const all = [];
for (let r = 1; r <= runs; r++) {
  process.stderr.write(`[chaos] run ${r}/${runs}: ${tasks} tasks through ${faults.length} faults (${faultSeconds} s cuts and freezes)\n`);
  for (const res of runChaos({ tasks, faultSeconds, faults })) all.push({ run: r, ...res });
}
const bad = all.filter((x) => x.lost + x.duplicated + x.missingOutputs > 0);
if (asJson) console.log(JSON.stringify({ tasks, faultSeconds, runs, results: all }));
else {
  console.log(`\n${tasks} tasks with outputs, 3 agents, faults of ${faultSeconds} s, ${new Date().toISOString()}`);
  console.log('| run | fault             | fault → requeue | lost | duplicated | outputs missing | tasks retried | job took |');
  console.log('|----:|-------------------|----------------:|-----:|-----------:|----------------:|--------------:|---------:|');
  for (const x of all)
    console.log(`| ${String(x.run).padStart(3)} | ${x.fault.padEnd(17)} | ${(x.requeueSeconds === null ? '-' : `${x.requeueSeconds.toFixed(1)} s`).padStart(15)} | ${String(x.lost).padStart(4)} | ${String(x.duplicated).padStart(10)} | ${String(x.missingOutputs).padStart(15)} | ${String(x.attemptsRetried).padStart(13)} | ${`${x.totalSeconds.toFixed(1)} s`.padStart(8)} |`);
  console.log(bad.length === 0 ? '\nevery fault: 0 lost, 0 duplicated, 0 missing' : `\n${bad.length} fault run(s) lost, duplicated or missed work`);
}
process.exit(bad.length === 0 ? 0 : 1);
