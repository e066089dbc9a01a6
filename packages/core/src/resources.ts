/**
 * A bundle of resources: what a task asks for, what a node offers, what is allocated on it.
 * CPU is counted in millicores so that fractional requests (`cpu: 0.5`) add up without float drift.
 */
export interface Resources {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  readonly gpus: number;
  readonly diskBytes: number;
}

export const ZERO_RESOURCES: Resources = Object.freeze({ cpuMillis: 0, memoryBytes: 0, gpus: 0, diskBytes: 0 });

export const addResources = (a: Resources, b: Resources): Resources => ({
  cpuMillis: a.cpuMillis + b.cpuMillis,
  memoryBytes: a.memoryBytes + b.memoryBytes,
  gpus: a.gpus + b.gpus,
  diskBytes: a.diskBytes + b.diskBytes,
});

export const subtractResources = (a: Resources, b: Resources): Resources => ({
  cpuMillis: a.cpuMillis - b.cpuMillis,
  memoryBytes: a.memoryBytes - b.memoryBytes,
  gpus: a.gpus - b.gpus,
  diskBytes: a.diskBytes - b.diskBytes,
});

/** The dimensions in which `want` exceeds `have` (empty when it fits). */
export function shortfalls(want: Resources, have: Resources): Array<keyof Resources> {
  const out: Array<keyof Resources> = [];
  if (want.cpuMillis > have.cpuMillis) out.push('cpuMillis');
  if (want.memoryBytes > have.memoryBytes) out.push('memoryBytes');
  if (want.gpus > have.gpus) out.push('gpus');
  if (want.diskBytes > have.diskBytes) out.push('diskBytes');
  return out;
}

export const fits = (want: Resources, have: Resources): boolean => shortfalls(want, have).length === 0;
