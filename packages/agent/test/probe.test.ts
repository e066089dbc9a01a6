import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { offeredCapacity, parseNvidiaSmi, parseRocmSmi, probeNvidia, probeRocm, SystemProbe } from '@dsg/agent';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const MiB = 1024 * 1024;

describe('nvidia-smi parser (recorded output)', () => {
  it('reads one consumer GPU', () => {
    assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-rtx3090.txt')), [
      { index: 0, model: 'NVIDIA GeForce RTX 3090', memoryBytes: 24576 * MiB, uuid: 'GPU-5f3c1a2e-8d1b-4a9e-9c0f-3b2a1d4e5f60' },
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

describe('rocm-smi parser (AMD)', () => {
  it('reads two Instinct cards in card order with bytes and unique ids', () => {
    assert.deepEqual(parseRocmSmi(fixture('rocm-smi-2xmi210.json')), [
      { index: 0, model: 'AMD Instinct MI210', memoryBytes: 68702699520, uuid: '0x8f3b1a2c4d5e6f70' },
      { index: 1, model: 'AMD Instinct MI210', memoryBytes: 68702699520, uuid: '0x1c2d3e4f5a6b7c8d' },
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
      { index: 0, model: 'D41205', memoryBytes: 0, uuid: null },
      { index: 1, model: 'Radeon RX 7900 XTX', memoryBytes: 25753026560, uuid: null },
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
