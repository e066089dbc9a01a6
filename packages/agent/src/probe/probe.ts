/**
 * The Probe port: what this machine has. `SystemProbe` reads the OS; `FakeProbe` returns fixed facts for tests.
 * `offeredCapacity` turns facts and owner limits (--cpus, --memory) into what the node offers the grid.
 */
import { statfs } from 'node:fs/promises';
import { arch, availableParallelism, cpus, hostname, platform, release, totalmem } from 'node:os';
import type { NodeFacts, Resources } from '@dsg/core';
import { probeNvidia } from './nvidia.js';
import { probeRocm } from './rocm.js';

export interface Probe {
  facts(): Promise<NodeFacts>;
}

export class SystemProbe implements Probe {
  /** `fakeGpus`: report these GPUs instead of probing (tests and demos on machines without one; see parseFakeGpus). */
  constructor(
    private readonly workDir: string,
    private readonly nvidiaSmi = 'nvidia-smi',
    private readonly rocmSmi = 'rocm-smi',
    private readonly fakeGpus: NodeFacts['gpus'] | null = null,
    /** Hears about GPUs left out (MIG mode, unknown memory), for the agent's log. */
    private readonly onSkip?: (why: string) => void,
  ) {}

  async facts(): Promise<NodeFacts> {
    let diskBytes = 0;
    try {
      const s = await statfs(this.workDir);
      diskBytes = Number(s.bavail) * Number(s.bsize);
    } catch {
      /* unknown: offer none */
    }
    return {
      hostname: hostname(),
      os: `${platform()} ${release()}`,
      arch: arch(),
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      memoryBytes: totalmem(),
      diskBytes,
      gpus: await this.gpus(),
    };
  }

  /**
   * NVIDIA first, AMD (rocm-smi) when there is none: both number their cards from 0, so a machine with both
   * vendors reports its NVIDIA cards only until GPU facts carry a vendor (issue 8).
   */
  private async gpus(): Promise<NodeFacts['gpus']> {
    if (this.fakeGpus) return this.fakeGpus;
    const nvidia = await probeNvidia(this.nvidiaSmi, 5000, this.onSkip);
    return nvidia.length > 0 ? nvidia : probeRocm(this.rocmSmi);
  }
}

const GPU_SIZE = /^(\d+(?:\.\d+)?)(Gi|Mi)$/;

/**
 * Fake GPUs for tests and demos (`DSG_FAKE_GPUS`): groups separated by commas, each `[N x]MEMORY:MODEL`, e.g.
 * `2x24Gi:NVIDIA GeForce RTX 4090` or `1x80Gi:A100,1x16Gi:T4`. Indexes count from 0 in order; uuids are
 * `GPU-fake-<index>`. Throws a message naming the bad group. At most 64 GPUs.
 */
export function parseFakeGpus(text: string): NodeFacts['gpus'] {
  if (text.trim().startsWith('[')) return parseFakeGpuList(text);
  const out: Array<NodeFacts['gpus'][number]> = [];
  for (const raw of text.split(',')) {
    const group = raw.trim();
    const m = /^(?:(\d+)\s*x\s*)?([^:]+):(.+)$/i.exec(group);
    const size = m ? GPU_SIZE.exec(m[2]!.trim()) : null;
    if (!m || !size || !m[3]!.trim())
      throw new Error(`DSG_FAKE_GPUS: cannot read "${group}"; expected groups like 2x24Gi:NVIDIA GeForce RTX 4090, separated by commas`);
    const n = m[1] === undefined ? 1 : Number(m[1]);
    const bytes = Math.round(Number(size[1]) * (size[2] === 'Gi' ? 2 ** 30 : 2 ** 20));
    for (let i = 0; i < n; i++) {
      if (out.length >= 64) throw new Error('DSG_FAKE_GPUS: at most 64 GPUs');
      out.push({ index: out.length, model: m[3]!.trim(), memoryBytes: bytes, uuid: `GPU-fake-${out.length}`, vendor: 'nvidia' });
    }
  }
  return out;
}

/**
 * The JSON form of DSG_FAKE_GPUS: `[{ "model": "A100", "memory": "80Gi", "count": 2, "vendor": "nvidia",
 * "cudaVersion": "12.4", "driverVersion": "550.54.14" }]` (count, vendor and versions optional).
 */
function parseFakeGpuList(text: string): NodeFacts['gpus'] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`DSG_FAKE_GPUS: cannot read the JSON list (${(e as Error).message}); expected [{ "model": "A100", "memory": "80Gi" }]`);
  }
  if (!Array.isArray(doc)) throw new Error('DSG_FAKE_GPUS: expected a JSON list like [{ "model": "A100", "memory": "80Gi" }]');
  const out: Array<NodeFacts['gpus'][number]> = [];
  doc.forEach((item: unknown, i) => {
    const o = (item && typeof item === 'object' ? item : {}) as Record<string, unknown>;
    const size = typeof o['memory'] === 'string' ? GPU_SIZE.exec(o['memory']) : null;
    const count = o['count'] === undefined ? 1 : o['count'];
    const vendor = o['vendor'] ?? 'nvidia';
    const version = (k: string): string | undefined => (typeof o[k] === 'string' && /^\d+(\.\d+)*$/.test(o[k] as string) ? (o[k] as string) : undefined);
    if (typeof o['model'] !== 'string' || !o['model'].trim() || o['model'].length > 200 || !size || !Number.isInteger(count) || (count as number) < 1 || (vendor !== 'nvidia' && vendor !== 'amd'))
      throw new Error(`DSG_FAKE_GPUS: cannot read item ${i}; expected { "model": "A100", "memory": "80Gi", "count": 1, "vendor": "nvidia" | "amd" }`);
    for (let k = 0; k < (count as number); k++) {
      if (out.length >= 64) throw new Error('DSG_FAKE_GPUS: at most 64 GPUs');
      const cuda = version('cudaVersion');
      const driver = version('driverVersion');
      out.push({
        index: out.length, model: o['model'].trim(), memoryBytes: Math.round(Number(size[1]) * (size[2] === 'Gi' ? 2 ** 30 : 2 ** 20)), uuid: `GPU-fake-${out.length}`, vendor,
        ...(driver ? { driverVersion: driver } : {}), ...(cuda && vendor === 'nvidia' ? { cudaVersion: cuda } : {}),
      });
    }
  });
  return out;
}

export class FakeProbe implements Probe {
  constructor(private readonly fixed: NodeFacts) {}
  async facts(): Promise<NodeFacts> {
    return this.fixed;
  }
}

const MiB = 1024 * 1024;

/**
 * Cores: all, or `cpus` (at most all). Memory: `memoryBytes`, or total minus 10% (at least 256 MiB kept back).
 * GPUs: all, or those `gpus` names by index or UUID (a volunteer's share limits).
 */
export function offeredCapacity(f: NodeFacts, limits: { cpus?: number | undefined; memoryBytes?: number | undefined; gpus?: ReadonlyArray<number | string> | undefined }): Resources {
  const cores = limits.cpus !== undefined ? Math.min(limits.cpus, f.cores) : f.cores;
  const keep = Math.max(256 * MiB, Math.round(f.memoryBytes * 0.1));
  const memory = limits.memoryBytes !== undefined ? Math.min(limits.memoryBytes, f.memoryBytes) : Math.max(0, f.memoryBytes - keep);
  return { cpuMillis: Math.round(cores * 1000), memoryBytes: memory, gpus: sharedGpus(f, limits.gpus).length, diskBytes: f.diskBytes };
}

/** The GPUs offered: all, or those named by index or UUID. */
export function sharedGpus(f: NodeFacts, selection: ReadonlyArray<number | string> | undefined): NodeFacts['gpus'] {
  if (selection === undefined) return f.gpus;
  return f.gpus.filter((g) => selection.some((s) => (typeof s === 'number' ? g.index === s : g.uuid === s || String(g.index) === s)));
}
