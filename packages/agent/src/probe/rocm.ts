/**
 * AMD GPUs through `rocm-smi --showproductname --showmeminfo vram --showuniqueid --json`.
 * The JSON is one object per card (`card0`, `card1`, …); key names have drifted between ROCm releases
 * ("Card series" / "Card Series", "VRAM Total Memory (B)"), so fields are found by case-insensitive match.
 * Pure parser tested on output in the shape rocm-smi prints; a missing or failing rocm-smi means "no GPUs".
 */
import { execFile } from 'node:child_process';
import type { GpuFacts } from './nvidia.js';

export const ROCM_SMI_ARGS = ['--showproductname', '--showmeminfo', 'vram', '--showuniqueid', '--showdriverversion', '--json'];

const field = (card: Record<string, unknown>, ...names: string[]): string | undefined => {
  for (const [k, v] of Object.entries(card)) {
    if (typeof v === 'string' && names.some((n) => k.toLowerCase() === n.toLowerCase())) return v.trim();
  }
  return undefined;
};

/** Parse rocm-smi JSON. Cards are ordered by their number; non-card keys ("system") and junk are skipped. */
export function parseRocmSmi(output: string): GpuFacts[] {
  let doc: unknown;
  try {
    doc = JSON.parse(output);
  } catch {
    return [];
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return [];
  const gpus: GpuFacts[] = [];
  // `--showdriverversion` puts the driver under "system" (older releases: on each card).
  const system = (doc as Record<string, unknown>)['system'];
  const systemDriver = system && typeof system === 'object' && !Array.isArray(system) ? field(system as Record<string, unknown>, 'Driver version') : undefined;
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const m = /^card(\d+)$/i.exec(key);
    if (!m || !value || typeof value !== 'object' || Array.isArray(value)) continue;
    const card = value as Record<string, unknown>;
    const model = field(card, 'Card series', 'Card SKU', 'Card model');
    if (!model) continue;
    const bytes = Number(field(card, 'VRAM Total Memory (B)') ?? NaN);
    const uid = field(card, 'Unique ID');
    gpus.push({
      index: Number(m[1]),
      model,
      memoryBytes: Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0,
      uuid: uid && uid !== 'N/A' ? uid.slice(0, 200) : null,
      vendor: 'amd',
      ...((): { driverVersion?: string } => {
        const d = field(card, 'Driver version') ?? systemDriver;
        return d && /^[\w.+-]{1,100}$/.test(d) ? { driverVersion: d } : {};
      })(),
    });
  }
  return gpus.sort((a, b) => a.index - b.index);
}

export function probeRocm(bin = 'rocm-smi', timeoutMs = 5000): Promise<GpuFacts[]> {
  return new Promise((resolve) => {
    execFile(bin, ROCM_SMI_ARGS, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      resolve(err ? [] : parseRocmSmi(stdout));
    });
  });
}
