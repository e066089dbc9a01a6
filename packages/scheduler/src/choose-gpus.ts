/**
 * Which of a node's GPUs a task gets: a pure choice over the node's devices as this pass sees them.
 *
 *   exclusive: whole devices nobody uses, the smallest qualifying ones first (a big GPU stays free for a task that
 *              needs it), then by index;
 *   shared:    best fit by free GPU memory — the qualifying device with the least memory left that still holds the
 *              task's declared memory, then by index — never beyond a device's memory, never on a device held whole.
 *
 * Returns the grants, or null when the node cannot give them now. Whatever it returns passes core's
 * `checkGpuGrants` on the same devices (tested as a property).
 */
import { gpuDeviceHasRoom, gpuDeviceQualifies, type GpuDeviceUse, type GpuGrant, type GpuRequest } from '@dsg/core';

export function chooseGpus(devices: readonly GpuDeviceUse[], req: GpuRequest): GpuGrant[] | null {
  const fit = devices.filter((d) => gpuDeviceQualifies(d, req) && gpuDeviceHasRoom(d, req));
  if (fit.length < req.count) return null;
  const left = (d: GpuDeviceUse): number => (req.shared ? d.memoryBytes - d.sharedBytes : d.memoryBytes);
  fit.sort((a, b) => left(a) - left(b) || a.index - b.index);
  return fit.slice(0, req.count).map((d) => ({ index: d.index, memoryBytes: req.shared ? req.memoryBytes! : null }));
}
