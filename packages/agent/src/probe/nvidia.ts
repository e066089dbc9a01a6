/**
 * NVIDIA GPUs through `nvidia-smi --query-gpu=index,name,memory.total,uuid,driver_version,mig.mode.current
 * --format=csv,noheader,nounits`, and the CUDA version from the header of plain `nvidia-smi` (the query has no
 * field for it). A driver too old for the `mig.mode.current` field is asked again without it. GPUs in MIG mode are
 * left out (`offeredNvidiaGpus`): CUDA then sees only their MIG instances, which DSG does not schedule yet, so
 * handing out the whole GPU would not work. The parsers are pure and tested on nvidia-smi's output format; a
 * missing or failing nvidia-smi means "no GPUs", never a crash.
 */
import { execFile } from 'node:child_process';
import type { NodeFacts } from '@dsg/core';

export type GpuFacts = NodeFacts['gpus'][number];

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total,uuid,driver_version,mig.mode.current', '--format=csv,noheader,nounits'];
/** The query older drivers understand (no MIG field). */
export const NVIDIA_SMI_ARGS_OLD = ['--query-gpu=index,name,memory.total,uuid,driver_version', '--format=csv,noheader,nounits'];

/** A parsed GPU, with whether it is in MIG mode (not part of the wire facts). */
export type NvidiaGpu = GpuFacts & { readonly mig?: boolean };

const NA = /^\[?N\/A\]?$/i;
const UUID = /^(GPU|MIG)-/i;
const VERSION = /^\d+(\.\d+)+$/;

/**
 * Parse nvidia-smi CSV (memory in MiB), any of the query's generations: `index, name, memory[, uuid[, driver[, mig]]]`.
 * The name may contain commas, so fields are taken from the end. Malformed lines are skipped; "[N/A]" memory
 * counts as 0, an "[N/A]" uuid as none.
 */
export function parseNvidiaSmi(output: string): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const parts = line.split(',').map((p) => p.trim());
    let mig: boolean | null = null;
    if (parts.length >= 6 && /^(enabled|disabled)$|^\[?N\/A\]?$/i.test(parts[parts.length - 1]!) && (VERSION.test(parts[parts.length - 2]!) || NA.test(parts[parts.length - 2]!))) {
      const m = parts.pop()!;
      mig = /^enabled$/i.test(m);
    }
    let driver: string | null = null;
    if (parts.length >= 5 && (VERSION.test(parts[parts.length - 1]!) || NA.test(parts[parts.length - 1]!)) && (UUID.test(parts[parts.length - 2]!) || NA.test(parts[parts.length - 2]!))) {
      const d = parts.pop()!;
      driver = NA.test(d) ? null : d;
    }
    if (parts.length < 3) continue;
    const index = Number(parts[0]);
    const last = parts[parts.length - 1]!;
    // A uuid column: a GPU-/MIG- id, or "[N/A]" after a memory figure.
    const hasUuid = parts.length >= 4 && (UUID.test(last) || (NA.test(last) && /^\d+$|^\[?N\/A\]?$/i.test(parts[parts.length - 2]!)));
    const memText = hasUuid ? parts[parts.length - 2]! : last;
    const name = parts.slice(1, hasUuid ? -2 : -1).join(', ');
    if (!Number.isInteger(index) || index < 0 || index > 1023 || !name) continue;
    const mib = Number(memText);
    gpus.push({
      index,
      model: name.slice(0, 200),
      memoryBytes: Number.isFinite(mib) && mib > 0 ? Math.round(mib * 1024 * 1024) : 0,
      uuid: hasUuid && UUID.test(last) ? last.slice(0, 200) : null,
      vendor: 'nvidia',
      ...(driver ? { driverVersion: driver } : {}),
      ...(mig !== null ? { mig } : {}),
    });
  }
  return gpus;
}

/** The CUDA version (and driver version) from plain `nvidia-smi`'s header: "Driver Version: 550.54.14   CUDA Version: 12.4". */
export function parseNvidiaSmiHeader(output: string): { driverVersion: string | null; cudaVersion: string | null } {
  const cuda = /CUDA Version:\s*(\d+(?:\.\d+)+)/i.exec(output);
  const driver = /Driver Version:\s*(\d+(?:\.\d+)+)/i.exec(output);
  return { cudaVersion: cuda?.[1] ?? null, driverVersion: driver?.[1] ?? null };
}

/**
 * The GPUs a node offers: those not in MIG mode and with a known memory size (a GPU whose memory reads "[N/A]"
 * could never be packed by memory). What is left out is returned with why, for the agent's log.
 */
export function offeredNvidiaGpus(gpus: readonly NvidiaGpu[], cudaVersion: string | null): { gpus: GpuFacts[]; skipped: string[] } {
  const out: GpuFacts[] = [];
  const skipped: string[] = [];
  for (const g of gpus) {
    if (g.mig) skipped.push(`GPU ${g.index} (${g.model}) is in MIG mode: CUDA sees only its MIG instances, which DSG does not schedule yet`);
    else if (g.memoryBytes === 0) skipped.push(`GPU ${g.index} (${g.model}) reports no memory size ([N/A])`);
    else {
      const { mig: _mig, ...facts } = g;
      out.push({ ...facts, ...(cudaVersion ? { cudaVersion } : {}) });
    }
  }
  return { gpus: out, skipped };
}

const run = (bin: string, args: readonly string[], timeoutMs: number): Promise<string | null> =>
  new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => resolve(err ? null : stdout));
  });

/** Probe NVIDIA GPUs; `onSkip` hears about GPUs left out (MIG mode, no memory size). */
export async function probeNvidia(bin = 'nvidia-smi', timeoutMs = 5000, onSkip?: (why: string) => void): Promise<GpuFacts[]> {
  const out = (await run(bin, NVIDIA_SMI_ARGS, timeoutMs)) ?? (await run(bin, NVIDIA_SMI_ARGS_OLD, timeoutMs));
  if (out === null) return [];
  const parsed = parseNvidiaSmi(out);
  if (parsed.length === 0) return [];
  const header = await run(bin, [], timeoutMs);
  const { gpus, skipped } = offeredNvidiaGpus(parsed, header === null ? null : parseNvidiaSmiHeader(header).cudaVersion);
  for (const s of skipped) onSkip?.(s);
  return gpus;
}
