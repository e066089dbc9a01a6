// Snakemake 7 --cluster jobscripts → job specs: properties, resources, paths relative to the working directory,
// the rewritten body; and every kind of bad jobscript refused with what is wrong.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileJobSpec, ValidationError } from '@dsg/core';
import { parseJobscript, relativeToWorkdir, shellWords, snakemakeJobSpec, taskScript } from '../src/snakemake.js';

const WD = '/home/ada/sir';
const props = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'single', rule: 'final_size', local: false, input: ['runs/r0-2.0.csv'], output: ['sizes/r0-2.0.json'], wildcards: { r0: '2.0' },
  params: {}, log: ['logs/final_size-2.0.log'], threads: 2,
  resources: { mem_mb: 200, mem_mib: 191, disk_mb: 1000, disk_mib: 954, tmpdir: '<TBD>', runtime: 5 }, jobid: 9, cluster: {}, ...over,
});
/** A jobscript as Debian's Snakemake 7.21 writes it (copied from a real run, paths changed). */
const jobscript = (p: Record<string, unknown> = props(), wd = WD): string => [
  '#!/bin/sh',
  `# properties = ${JSON.stringify(p)}`,
  `cd '${wd}' && /usr/bin/python3 -m snakemake --snakefile '${wd}/Snakefile' --target-jobs 'final_size:r0=2.0' --allowed-rules 'final_size' --cores 'all' --attempt 1 --force-use-threads  --resources 'mem_mb=200' 'mem_mib=191' 'disk_mb=1000' 'disk_mib=954' --wait-for-files '${wd}/.snakemake/tmp.iy57u_9e' 'runs/r0-2.0.csv' --force --keep-target-files --keep-remote --max-inventory-time 0 --nocolor --notemp --no-hooks --nolock --ignore-incomplete --rerun-triggers 'mtime' 'input' 'code' 'software-env' 'params' --skip-script-cleanup  --configfiles '${wd}/config/config.yaml' --conda-frontend 'mamba' --wrapper-prefix 'https://github.com/snakemake/snakemake-wrappers/raw/' --latency-wait 5 --scheduler 'ilp' --scheduler-solver-path '/usr/bin' --default-resources 'mem_mb=max(2*input.size_mb, 1000)' 'tmpdir=system_tmpdir' --mode 2 && exit 0 || exit 1`,
  '',
].join('\n');

const issuesOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected a ValidationError');
};

describe('Snakemake jobscripts', () => {
  it('reads the properties, working directory, Snakefile, config files and Python of a real 7.21 jobscript', () => {
    const js = parseJobscript(jobscript(), 'snakejob.final_size.9.sh');
    assert.equal(js.properties.rule, 'final_size');
    assert.equal(js.properties.jobid, '9');
    assert.deepEqual(js.properties.input, ['runs/r0-2.0.csv']);
    assert.deepEqual(js.properties.output, ['sizes/r0-2.0.json']);
    assert.equal(js.properties.threads, 2);
    assert.equal(js.workdir, WD);
    assert.equal(js.snakefile, `${WD}/Snakefile`);
    assert.deepEqual(js.configfiles, [`${WD}/config/config.yaml`]);
    assert.equal(js.python, '/usr/bin/python3');
  });

  it('makes a spec core accepts: threads → cpu, mem_mib → memory, disk → disk, runtime → timeout, inputs and outputs relative', () => {
    const spec = snakemakeJobSpec(parseJobscript(jobscript(), 'j.sh'), { workdir: WD, send: ['data/ref.fa'], codeFolders: ['scripts'] });
    assert.equal(spec['name'], 'smk-final_size-9');
    assert.deepEqual(spec['resources'], { cpu: 2, memory: '191Mi', disk: '954Mi' });
    assert.equal(spec['timeout'], '5m');
    assert.deepEqual(spec['inputs'], ['runs/r0-2.0.csv', 'Snakefile', 'scripts', 'config/config.yaml', 'data/ref.fa']);
    assert.deepEqual(spec['outputs'], [{ path: 'sizes/r0-2.0.json', optional: true }, { path: 'sizes/r0-2.0.json/**', optional: true }, { path: 'logs/final_size-2.0.log', optional: true }]);
    const compiled = compileJobSpec(spec);
    assert.equal(compiled.timeoutMs, 300_000);
  });

  it('takes mem_mb (decimal MB), mem_gb, time_min and GPUs by their usual names', () => {
    const spec = (resources: Record<string, unknown>) =>
      snakemakeJobSpec(parseJobscript(jobscript(props({ resources })), 'j.sh'), { workdir: WD, send: [], codeFolders: [] });
    assert.deepEqual(spec({ mem_mb: 4000 })['resources'], { cpu: 2, memory: '4000M' });
    assert.deepEqual(spec({ mem_gb: 8, nvidia_gpu: 1 })['resources'], { cpu: 2, memory: '8G', gpus: 1 });
    assert.deepEqual(spec({ gpu: '2', mem_mb: '512' })['resources'], { cpu: 2, memory: '512M', gpus: 2 });
    assert.equal(spec({ time_min: 90 })['timeout'], '90m');
    assert.equal(spec({})['timeout'], undefined);
    assert.ok(compileJobSpec(spec({ gpus: 1, mem_gb: 2 })));
  });

  it('rewrites the body to run in the task: working directory, paths under it, the Python, a check for Snakemake', () => {
    const js = parseJobscript(jobscript(), 'j.sh');
    const s = taskScript(js, WD);
    assert.doesNotMatch(s, /\/home\/ada/, 'no path of the submitting machine is left');
    assert.match(s, /cd "\$DSG_WORK_DIR" && "\$DSG_SNAKEMAKE_PY" -m snakemake --snakefile 'Snakefile'/);
    assert.match(s, /--wait-for-files '\.snakemake\/tmp\.iy57u_9e' 'runs\/r0-2\.0\.csv'/);
    assert.match(s, /--configfiles 'config\/config\.yaml'/);
    assert.match(s, /^mkdir -p \.snakemake\/tmp\.iy57u_9e$/m);
    assert.match(s, /DSG_SNAKEMAKE_PY='\/usr\/bin\/python3'\n\[ -x "\$DSG_SNAKEMAKE_PY" \] \|\| DSG_SNAKEMAKE_PY=python3/);
    assert.match(s, /Snakemake is not installed on node .*apt-get install snakemake.*\n {2}exit 127/);
    assert.match(s, /--wrapper-prefix 'https:\/\/github.com/, 'other arguments are left as they are');
  });

  it('splits shell words as /bin/sh does for what Snakemake writes', () => {
    assert.deepEqual(shellWords(`cd '/a b' && x --f 'a'"b" c \\\nd # comment\ne`), ['cd', '/a b', '&&', 'x', '--f', 'ab', 'c', 'd', 'e']);
  });

  it('places paths relative to the working directory and refuses what lies outside it', () => {
    assert.deepEqual(relativeToWorkdir('/w/x/y.txt', '/w'), { path: 'x/y.txt' });
    assert.deepEqual(relativeToWorkdir('./x/../y.txt', '/w'), { path: 'y.txt' });
    assert.match((relativeToWorkdir('/data/ref.fa', '/w') as { error: string }).error, /outside the Snakemake working directory \/w/);
    assert.match((relativeToWorkdir('../ref.fa', '/w') as { error: string }).error, /outside/);
    assert.match((relativeToWorkdir('/w', '/w') as { error: string }).error, /working directory itself/);
  });

  it('refuses paths the grid could not place or collect, naming each', () => {
    const js = parseJobscript(jobscript(props({ input: ['/data/ref.fa'], output: ['out/*.txt', '.hidden/x', '/elsewhere/y'], log: [] })), 'j.sh');
    const issues = issuesOf(() => snakemakeJobSpec(js, { workdir: WD, send: ['../up.txt'], codeFolders: [] }));
    assert.equal(issues.length, 5, issues.join('\n'));
    assert.match(issues[0]!, /^input \/data\/ref.fa: .*outside the Snakemake working directory \/home\/ada\/sir/);
    assert.match(issues[1]!, /^--send \.\.\/up\.txt: .*outside/);
    assert.match(issues[2]!, /^output out\/\*\.txt: has a glob character/);
    assert.match(issues[3]!, /^output \.hidden\/x: is hidden/);
    assert.match(issues[4]!, /^output \/elsewhere\/y: .*outside/);
  });

  it('refuses bad resources with the value it got', () => {
    const js = parseJobscript(jobscript(props({ resources: { mem_mb: 'lots', gpus: 1.5, runtime: -3 } })), 'j.sh');
    const issues = issuesOf(() => snakemakeJobSpec(js, { workdir: WD, send: [], codeFolders: [] }));
    assert.deepEqual(issues.map((i) => i.split(':')[0]), ['resources.mem_mb', 'resources.gpus', 'resources.runtime']);
    assert.match(issues[0]!, /expected a number, at least 0, got "lots"/);
  });

  it('refuses what is not a jobscript, or a broken one, saying what to do', () => {
    assert.match(issuesOf(() => parseJobscript('rule all:\n    input: "x"\n', 'Snakefile'))[0]!, /no "# properties = \{…\}" line: .*dsg snakemake profile/);
    assert.match(issuesOf(() => parseJobscript('#!/bin/sh\n# properties = {"rule": "a", \ncd /x\n', 'j.sh'))[0]!, /^j\.sh:2: the properties are not valid JSON/);
    assert.match(issuesOf(() => parseJobscript('#!/bin/sh\n# properties = [1, 2]\n', 'j.sh'))[0]!, /must be a JSON object/);
    assert.match(issuesOf(() => parseJobscript('x'.repeat(1024 * 1024 + 1), 'big.sh'))[0]!, /over 1048576 bytes/);
    assert.match(issuesOf(() => parseJobscript('#!/bin/sh\0', 'nul.sh'))[0]!, /NUL byte/);
    const many = Array.from({ length: 10_001 }, (_, i) => `f${i}`);
    const issues = issuesOf(() => parseJobscript(jobscript(props({ rule: '', jobid: null, input: [1, 'a'], output: many, threads: 0, resources: { x: [1] }, type: 'weird' })), 'j.sh'));
    assert.deepEqual(issues.map((i) => i.split(': ')[0]), ['j.sh:2 type', 'j.sh:2 rule', 'j.sh:2 jobid', 'j.sh:2 input', 'j.sh:2 output', 'j.sh:2 threads', 'j.sh:2 resources.x']);
    assert.match(issues[4]!, /10001 paths; one job may have at most 10000/);
  });

  it('reads a group job by its group id', () => {
    const js = parseJobscript(jobscript(props({ type: 'group', groupid: 'sims', rule: undefined, jobid: 'a1b2c3' })), 'j.sh');
    assert.equal(js.properties.rule, 'sims');
    assert.equal(snakemakeJobSpec(js, { workdir: WD, send: [], codeFolders: [] })['name'], 'smk-sims-a1b2c3');
  });

  it('needs a --snakefile in the body', () => {
    const text = `#!/bin/sh\n# properties = ${JSON.stringify(props())}\necho hi\n`;
    assert.match(issuesOf(() => snakemakeJobSpec(parseJobscript(text, 'j.sh'), { workdir: WD, send: [], codeFolders: [] }))[0]!, /names no --snakefile/);
  });
});
