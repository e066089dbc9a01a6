/**
 * What the machine is doing right now, sent with every heartbeat for the dashboard: the 1-minute load average
 * (runnable processes, all of the machine's, not only tasks) and memory in use by everything. Reading both is a
 * syscall each (no process spawned). Windows has no load average: Node reports 0 there.
 */
import { freemem, loadavg, totalmem } from 'node:os';
import type { HostUsageWire } from '@dsg/core';

export function sampleUsage(): HostUsageWire {
  const load1 = loadavg()[0] ?? 0;
  return { load1: Math.round(Math.max(0, load1) * 100) / 100, memoryUsedBytes: Math.max(0, totalmem() - freemem()) };
}
