/**
 * What isolation this node can give its tasks, decided once at agent start and reported in its facts:
 *
 * - `sandbox+cgroups`: bubblewrap sandbox (see executor/sandbox.ts) and per-task cgroup limits;
 * - `sandbox`: the sandbox without limits (an agent that is not root, with unprivileged user namespaces);
 * - `cgroups`: limits and whole-task kill, but tasks see the machine (no bubblewrap, or `--isolation cgroups`);
 * - `none`: plain processes in a process group (not Linux, not root, or `--isolation none`).
 *
 * Each step down has a reason, logged at start so the operator knows what to install or change.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroups } from '../executor/cgroups.js';
import { findPrivilegeDrop, type PrivilegeDrop } from '../executor/drop-privileges.js';
import type { SandboxSettings } from '../executor/sandbox.js';

export const ISOLATION_LEVELS = ['none', 'cgroups', 'sandbox', 'sandbox+cgroups'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];
/** What the operator asks for (`--isolation`). */
export type IsolationRequest = 'none' | 'cgroups' | 'sandbox';

/** Serialisable: what the executor (in the agent or the launcher helper) applies to every task. */
export interface IsolationSettings {
  /** Put each task in a cgroup with its limits (the executor finds the cgroup file system itself). */
  readonly cgroups: boolean;
  readonly sandbox: SandboxSettings | null;
  /** Process (and thread) limit per task. */
  readonly maxProcesses: number;
  /** Whether a job that asks for network access gets it. */
  readonly allowNetwork: boolean;
  /** Without a sandbox, an agent running as root still starts tasks as this user (through dsg-drop or setpriv). */
  readonly user: { readonly drop: PrivilegeDrop; readonly uid: number; readonly gid: number } | null;
}

export interface IsolationProbe {
  readonly level: IsolationLevel;
  readonly settings: IsolationSettings;
  /** Why the level is lower than `sandbox+cgroups`, in words for the operator. */
  readonly notes: readonly string[];
}

export const DEFAULT_MAX_PROCESSES = 1024;
export const DEFAULT_TASK_UID = 65534;

export interface IsolationProbeOptions {
  /** The strongest isolation to use. Default `sandbox` (the strongest available). */
  readonly isolation?: IsolationRequest;
  readonly maxProcesses?: number;
  readonly allowNetwork?: boolean;
  /** User id tasks run as when the agent is root. Default 65534 (nobody). */
  readonly taskUid?: number;
  /** Directories tasks must not see: the agent's state directory, its work directory, others. */
  readonly hide: readonly string[];
  /** Which sandbox program to use. Default bubblewrap, else `unshare` (root only). Tests force `unshare`. */
  readonly sandboxTool?: 'bwrap' | 'unshare';
}

function findProgram(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(['/usr/bin', '/bin'])) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

export function probeIsolation(o: IsolationProbeOptions): IsolationProbe {
  const want = o.isolation ?? 'sandbox';
  const notes: string[] = [];
  const maxProcesses = o.maxProcesses ?? DEFAULT_MAX_PROCESSES;
  const allowNetwork = o.allowNetwork ?? true;
  const linux = process.platform === 'linux';
  let cgroups = false;
  if (want !== 'none') {
    if (!linux) notes.push(`${process.platform} has no cgroups: declared memory and cores are not enforced`);
    else {
      const d = detectCgroups();
      if (d.ok) cgroups = true;
      else notes.push(`no per-task limits: ${d.why}`);
    }
  }
  // Found once (it runs `dsg-drop --version`), whether the sandbox or the plain task user needs it.
  let dropFound: ReturnType<typeof findPrivilegeDrop> | undefined;
  const privilegeDrop = (): PrivilegeDrop | null => {
    if (!dropFound) {
      dropFound = findPrivilegeDrop(findProgram);
      if (dropFound.note) notes.push(dropFound.note);
    }
    return dropFound.drop;
  };
  let sandbox: SandboxSettings | null = null;
  if (want === 'sandbox') {
    if (!linux) notes.push(`no sandbox on ${process.platform}: tasks run as the agent's user and see its files`);
    else {
      const root = process.getuid?.() === 0;
      const bwrap = o.sandboxTool === 'unshare' ? null : findProgram('bwrap');
      const unshare = root && o.sandboxTool !== 'bwrap' ? findProgram('unshare') : null;
      const drop = root ? privilegeDrop() : null;
      const uid = root ? (o.taskUid ?? DEFAULT_TASK_UID) : null;
      if (root && !drop) notes.push('no sandbox: setpriv (util-linux) is not installed and dsg-drop was not built, so tasks cannot run as an unprivileged user');
      else if (bwrap) {
        const candidate: SandboxSettings = { tool: 'bwrap', bwrap, drop, uid, gid: uid, hide: [...o.hide] };
        // Try it once: user namespaces may be disabled, or a container may forbid mounts.
        const r = spawnSync(bwrap, root ? ['--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'] : ['--unshare-all', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], { encoding: 'utf8', timeout: 10_000 });
        if (r.status === 0) sandbox = candidate;
        else notes.push(`no sandbox: bubblewrap does not work here (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()})`);
      } else if (unshare) {
        const candidate: SandboxSettings = { tool: 'unshare', bwrap: unshare, drop, uid, gid: uid, hide: [...o.hide] };
        const r = spawnSync(unshare, ['--mount', '--pid', '--fork', '--kill-child', '--ipc', '--uts', '--net', '--mount-proc', '--propagation', 'private', 'true'], { encoding: 'utf8', timeout: 10_000 });
        if (r.status === 0) {
          sandbox = candidate;
          notes.push('bubblewrap is not installed: the sandbox is built with unshare (apt-get install bubblewrap for the usual one)');
        } else notes.push(`no sandbox: bubblewrap is not installed and unshare does not work here (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()})`);
      } else notes.push(root ? 'no sandbox: neither bubblewrap nor unshare is installed (apt-get install bubblewrap)' : 'no sandbox: bubblewrap is not installed (apt-get install bubblewrap, dnf install bubblewrap)');
    }
  }
  let user: IsolationSettings['user'] = null;
  if (!sandbox && want !== 'none' && linux && process.getuid?.() === 0) {
    const drop = privilegeDrop();
    const uid = o.taskUid ?? DEFAULT_TASK_UID;
    if (drop) user = { drop, uid, gid: uid };
    else notes.push('tasks run as root: setpriv (util-linux) is not installed and dsg-drop was not built');
  }
  const level: IsolationLevel = sandbox ? (cgroups ? 'sandbox+cgroups' : 'sandbox') : cgroups ? 'cgroups' : 'none';
  if (want !== 'sandbox' && want !== 'none' && !sandbox) notes.push('no sandbox: --isolation cgroups');
  if (want === 'none') notes.push('--isolation none: tasks run as plain processes, as the agent\'s user');
  return { level, settings: { cgroups, sandbox, maxProcesses, allowNetwork, user }, notes };
}
