/**
 * NVIDIA GPUs through `nvidia-smi --query-gpu=index,name,memory.total,uuid,driver_version --format=csv,noheader,nounits`.
 * The parser is pure and tested on recorded output; a missing or failing nvidia-smi means "no GPUs", never a crash.
 */
import { execFile } from 'node:child_process';
import type { NodeFacts } from '@dsg/core';

export type GpuFacts = NodeFacts['gpus'][number];

export const NVIDIA_SMI_ARGS = ['--query-gpu=index,name,memory.total,uuid,driver_version', '--format=csv,noheader,nounits'];

/** Parse nvidia-smi CSV (memory in MiB). Malformed lines are skipped; "[N/A]" memory counts as 0. */
export function parseNvidiaSmi(output: string): GpuFacts[] {
  const gpus: GpuFacts[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const parts = line.split(',').map((p) => p.trim());
    // A trailing driver version (index, name, memory, uuid, driver_version) is taken off first.
    const driver = parts.length >= 5 && /^\d+(\.\d+)+$/.test(parts[parts.length - 1]!) && /^GPU-|^MIG-/i.test(parts[parts.length - 2]!) ? parts.pop()! : null;
    if (parts.length < 3) continue;
    // The name may itself contain commas: index is first, memory and uuid are last.
    const index = Number(parts[0]);
    const hasUuid = parts.length >= 4 && /^GPU-|^MIG-/i.test(parts[parts.length - 1]!);
    const memText = hasUuid ? parts[parts.length - 2]! : parts[parts.length - 1]!;
    const name = parts.slice(1, hasUuid ? -2 : -1).join(', ');
    if (!Number.isInteger(index) || index < 0 || !name) continue;
    const mib = Number(memText);
    gpus.push({
      index,
      model: name,
      memoryBytes: Number.isFinite(mib) && mib > 0 ? Math.round(mib * 1024 * 1024) : 0,
      uuid: hasUuid ? parts[parts.length - 1]! : null,
      vendor: 'nvidia',
      ...(driver ? { driverVersion: driver } : {}),
    });
  }
  return gpus;
}

export function probeNvidia(bin = 'nvidia-smi', timeoutMs = 5000): Promise<GpuFacts[]> {
  return new Promise((resolve) => {
    execFile(bin, NVIDIA_SMI_ARGS, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      resolve(err ? [] : parseNvidiaSmi(stdout));
    });
  });
}
