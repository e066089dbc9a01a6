import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { offeredCapacity, offeredNvidiaGpus, parseFakeGpus, parseNvidiaSmi, parseNvidiaSmiHeader, parseRocmSmi, probeNvidia, probeRocm, SystemProbe } from '@dsg/agent';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const MiB = 1024 * 1024;

describe('nvidia-smi parser (recorded output)', () => {
  it('reads one consumer GPU', () => {
    assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-rtx3090.txt')), [
      { index: 0, model: 'NVIDIA GeForce RTX 3090', memoryBytes: 24576 * MiB, uuid: 'GPU-5f3c1a2e-8d1b-4a9e-9c0f-3b2a1d4e5f60', vendor: 'nvidia' },
    ]);
  });
  it('reads the driver version when asked for it (the current query), with a workstation\'s two RTX 4090s', () => {
    assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-2x4090-driver.txt')).map((g) => [g.index, g.model, g.memoryBytes / MiB, g.uuid, g.vendor, g.driverVersion]), [
      [0, 'NVIDIA GeForce RTX 4090', 24564, 'GPU-7d2f0c4e-1b3a-4c5d-8e9f-0a1b2c3d4e5f', 'nvidia', '550.54.14'],
      [1, 'NVIDIA GeForce RTX 4090', 24564, 'GPU-8e3a1d5f-2c4b-4d6e-9fa0-1b2c3d4e5f60', 'nvidia', '550.54.14'],
    ]);
  });
  it('reads two data-centre GPUs', () => {
    const g = parseNvidiaSmi(fixture('nvidia-smi-2xa100.txt'));
    assert.equal(g.length, 2);
    assert.deepEqual(g.map((x) => [x.index, x.model, x.memoryBytes / MiB]), [[0, 'NVIDIA A100-SXM4-80GB', 81920], [1, 'NVIDIA A100-SXM4-80GB', 81920]]);
  });
  it('tolerates [N/A] memory, commas in names and junk lines', () => {
    const g = parseNvidiaSmi(fixture('nvidia-smi-odd.txt'));
    assert.deepEqual(g.map((x) => [x.index, x.model, x.memoryBytes]), [[0, 'Tesla K80', 0], [1, 'NVIDIA RTX A6000, Ada', 49140 * MiB]]);
  });
  it('empty output means no GPUs', () => {
    assert.deepEqual(parseNvidiaSmi(''), []);
  });
  it('a missing nvidia-smi means no GPUs, not a crash', async () => {
    assert.deepEqual(await probeNvidia('/nonexistent/nvidia-smi'), []);
  });
});

describe('nvidia-smi: the current query (driver, MIG mode) and the CUDA version', () => {
  it('a workstation: two RTX 4090s, CUDA 12.4 from the header, MIG "[N/A]" on a consumer card', () => {
    const g = parseNvidiaSmi(fixture('nvidia-smi-2x4090-query.txt'));
    const { cudaVersion, driverVersion } = parseNvidiaSmiHeader(fixture('nvidia-smi-2x4090-header.txt'));
    assert.deepEqual([cudaVersion, driverVersion], ['12.4', '550.54.14']);
    const { gpus, skipped } = offeredNvidiaGpus(g, cudaVersion);
    assert.deepEqual(skipped, []);
    assert.deepEqual(gpus, [
      { index: 0, model: 'NVIDIA GeForce RTX 4090', memoryBytes: 24564 * MiB, uuid: 'GPU-7d2f0c4e-1b3a-4c5d-8e9f-0a1b2c3d4e5f', vendor: 'nvidia', driverVersion: '550.54.14', cudaVersion: '12.4' },
      { index: 1, model: 'NVIDIA GeForce RTX 4090', memoryBytes: 24564 * MiB, uuid: 'GPU-8e3a1d5f-2c4b-4d6e-9fa0-1b2c3d4e5f60', vendor: 'nvidia', driverVersion: '550.54.14', cudaVersion: '12.4' },
    ]);
  });
  it('a server: eight A100s, one in MIG mode and one with "[N/A]" memory are left out, with why', () => {
    const g = parseNvidiaSmi(fixture('nvidia-smi-8xa100-query.txt'));
    assert.equal(g.length, 8);
    assert.deepEqual(g.map((x) => x.mig), [false, false, false, false, false, false, false, true]);
    assert.equal(g[6]!.memoryBytes, 0);
    const { gpus, skipped } = offeredNvidiaGpus(g, parseNvidiaSmiHeader(fixture('nvidia-smi-8xa100-header.txt')).cudaVersion);
    assert.deepEqual(gpus.map((x) => [x.index, x.memoryBytes / MiB, x.driverVersion, x.cudaVersion]), [0, 1, 2, 3, 4, 5].map((i) => [i, 81920, '535.154.05', '12.2']));
    assert.equal(skipped.length, 2);
    assert.match(skipped[0]!, /GPU 6 .* no memory size/);
    assert.match(skipped[1]!, /GPU 7 .* MIG mode/);
    assert.ok(gpus.every((x) => !('mig' in x)), 'the MIG flag is not part of the wire facts');
  });
  it('a failed driver ("NVIDIA-SMI has failed…") has no GPUs and no CUDA version', () => {
    assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-failed.txt')), []);
    assert.deepEqual(parseNvidiaSmiHeader(fixture('nvidia-smi-failed.txt')), { cudaVersion: null, driverVersion: null });
  });

  // A stand-in nvidia-smi (a real process) printing the fixtures: the probe's whole path, fallbacks included.
  const fakeSmi = (body: string): { bin: string; done: () => void } => {
    const dir = mkdtempSync(join(tmpdir(), 'dsg-smi-'));
    const bin = join(dir, 'nvidia-smi');
    writeFileSync(bin, `#!/bin/sh\n${body}\n`);
    chmodSync(bin, 0o755);
    return { bin, done: () => rmSync(dir, { recursive: true, force: true }) };
  };
  it('probes through a real nvidia-smi process: the query, then the header for CUDA; MIG GPUs reported to onSkip', async () => {
    const smi = fakeSmi(`case "$1" in --query-gpu=*mig*) cat '${join(fixtures, 'nvidia-smi-8xa100-query.txt')}';; '') cat '${join(fixtures, 'nvidia-smi-8xa100-header.txt')}';; *) exit 2;; esac`);
    try {
      const skipped: string[] = [];
      const gpus = await probeNvidia(smi.bin, 5000, (w) => skipped.push(w));
      assert.deepEqual(gpus.map((g) => [g.index, g.cudaVersion]), [0, 1, 2, 3, 4, 5].map((i) => [i, '12.2']));
      assert.equal(skipped.length, 2);
    } finally {
      smi.done();
    }
  });
  it('an older driver that refuses the MIG field is asked again without it', async () => {
    const smi = fakeSmi(`case "$1" in --query-gpu=*mig*) echo 'Field "mig.mode.current" is not a valid field to query.' >&2; exit 2;; --query-gpu=*) cat '${join(fixtures, 'nvidia-smi-2x4090-driver.txt')}';; '') cat '${join(fixtures, 'nvidia-smi-2x4090-header.txt')}';; esac`);
    try {
      assert.deepEqual((await probeNvidia(smi.bin)).map((g) => [g.index, g.driverVersion, g.cudaVersion]), [[0, '550.54.14', '12.4'], [1, '550.54.14', '12.4']]);
    } finally {
      smi.done();
    }
  });
  it('a failing nvidia-smi (driver not loaded) means no GPUs', async () => {
    const smi = fakeSmi(`cat '${join(fixtures, 'nvidia-smi-failed.txt')}'; exit 9`);
    try {
      assert.deepEqual(await probeNvidia(smi.bin), []);
    } finally {
      smi.done();
    }
  });
});

describe('fake GPUs (DSG_FAKE_GPUS)', () => {
  it('reads a JSON list too, with vendor and versions', () => {
    assert.deepEqual(parseFakeGpus('[{"model":"A100","memory":"80Gi","count":2,"cudaVersion":"12.2"},{"model":"MI210","memory":"64Gi","vendor":"amd"}]').map((g) => [g.index, g.model, g.memoryBytes / MiB, g.vendor, g.cudaVersion]), [
      [0, 'A100', 81920, 'nvidia', '12.2'], [1, 'A100', 81920, 'nvidia', '12.2'], [2, 'MI210', 65536, 'amd', undefined],
    ]);
    for (const bad of ['[', '{}', '[{"model":"x"}]', '[{"model":"x","memory":"8Gi","count":0}]', '[{"model":"x","memory":"8Gi","vendor":"intel"}]']) assert.throws(() => parseFakeGpus(bad), /DSG_FAKE_GPUS: (cannot read|expected a JSON list)/, bad);
  });
  it('reads groups of [N x]MEMORY:MODEL, numbering from 0', () => {
    assert.deepEqual(parseFakeGpus('2x24Gi:NVIDIA GeForce RTX 4090, 1x80Gi:A100').map((g) => [g.index, g.model, g.memoryBytes / MiB, g.uuid]), [
      [0, 'NVIDIA GeForce RTX 4090', 24576, 'GPU-fake-0'], [1, 'NVIDIA GeForce RTX 4090', 24576, 'GPU-fake-1'], [2, 'A100', 81920, 'GPU-fake-2'],
    ]);
    assert.equal(parseFakeGpus('512Mi:tiny')[0]!.memoryBytes, 512 * MiB);
  });
  it('names a group it cannot read, and caps the count', () => {
    for (const bad of ['2x24:RTX', 'RTX 4090', '2x24Gi:', 'x:y']) assert.throws(() => parseFakeGpus(bad), /cannot read/, bad);
    assert.throws(() => parseFakeGpus('65x1Gi:many'), /at most 64/);
  });
});

describe('rocm-smi parser (AMD)', () => {
  it('reads the driver version from "system" (--showdriverversion)', () => {
    assert.deepEqual(parseRocmSmi(fixture('rocm-smi-2xmi210-driver.json')).map((g) => [g.index, g.driverVersion]), [[0, '6.7.0'], [1, '6.7.0']]);
  });
  it('reads two Instinct cards in card order with bytes and unique ids', () => {
    assert.deepEqual(parseRocmSmi(fixture('rocm-smi-2xmi210.json')), [
      { index: 0, model: 'AMD Instinct MI210', memoryBytes: 68702699520, uuid: '0x8f3b1a2c4d5e6f70', vendor: 'amd' },
      { index: 1, model: 'AMD Instinct MI210', memoryBytes: 68702699520, uuid: '0x1c2d3e4f5a6b7c8d', vendor: 'amd' },
    ]);
  });
  it('tolerates key-case drift between ROCm releases, missing ids, non-card keys and junk', () => {
    const out = JSON.stringify({
      system: { 'Driver version': '6.2' },
      card1: { 'Card Series': 'Radeon RX 7900 XTX', 'VRAM Total Memory (B)': '25753026560', 'Unique ID': 'N/A' },
      card0: { 'Card SKU': 'D41205', 'VRAM Total Memory (B)': 'N/A' },
      cardX: { 'Card series': 'ignored' },
      card2: 'not an object',
      card3: { 'VRAM Total Memory (B)': '1' },
    });
    assert.deepEqual(parseRocmSmi(out), [
      { index: 0, model: 'D41205', memoryBytes: 0, uuid: null, vendor: 'amd', driverVersion: '6.2' },
      { index: 1, model: 'Radeon RX 7900 XTX', memoryBytes: 25753026560, uuid: null, vendor: 'amd', driverVersion: '6.2' },
    ]);
  });
  it('non-JSON or empty output means no GPUs', () => {
    assert.deepEqual(parseRocmSmi(''), []);
    assert.deepEqual(parseRocmSmi('ERROR: No AMD GPUs specified'), []);
    assert.deepEqual(parseRocmSmi('[]'), []);
  });
  it('a missing rocm-smi means no GPUs, not a crash', async () => {
    assert.deepEqual(await probeRocm('/nonexistent/rocm-smi'), []);
  });
});

describe('system probe', () => {
  it('reports this machine', async () => {
    const f = await new SystemProbe(process.cwd(), '/nonexistent/nvidia-smi', '/nonexistent/rocm-smi').facts();
    assert.ok(f.cores >= 1);
    assert.ok(f.memoryBytes > 100 * MiB);
    assert.ok(f.diskBytes > 0);
    assert.ok(f.hostname.length > 0);
  });
  it('offers all cores and most memory by default, fewer when asked', () => {
    const f = { hostname: 'h', os: 'linux', arch: 'x64', cpuModel: 'c', cores: 8, memoryBytes: 16 * 1024 * MiB, diskBytes: 1, gpus: [] };
    assert.deepEqual(offeredCapacity(f, {}), { cpuMillis: 8000, memoryBytes: Math.round(16 * 1024 * MiB * 0.9), gpus: 0, diskBytes: 1 });
    assert.equal(offeredCapacity(f, { cpus: 2 }).cpuMillis, 2000);
    assert.equal(offeredCapacity(f, { cpus: 99 }).cpuMillis, 8000);
    assert.equal(offeredCapacity(f, { memoryBytes: 1024 * MiB }).memoryBytes, 1024 * MiB);
  });
});
