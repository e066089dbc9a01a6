/**
 * The task sandbox: bubblewrap (`bwrap`) around the task's command, built here as an argv prefix.
 *
 * What a sandboxed task sees: `/` read-only, its own `/dev`, `/proc` (its own PID namespace: no other process, no
 * `/proc/<agent>/environ`), a private `/tmp`, IPC and UTS namespaces of its own, its working directory as the only
 * writable place, tmpfs over the agent's state directory and every other hidden path (the input cache, other
 * tasks' working directories, a coordinator's data directory), and no network (a namespace with only loopback)
 * unless the job asked for it and the node allows it.
 *
 * As root, bwrap runs privileged (no user namespace: it can bind working dirs under a 0700 state directory) and the
 * task is then started through `dsg-drop` (else util-linux `setpriv`: drop-privileges.ts) as an unprivileged user
 * (default 65534, "nobody") with no capabilities and `no_new_privs`, so setuid programs cannot raise it back. As
 * another user, bwrap uses an unprivileged user namespace and the task keeps that user.
 *
 * Without bubblewrap, a root agent builds the same view with util-linux `unshare` (mount, PID, IPC, UTS and
 * network namespaces, its own /proc) and a short `sh` script run inside before the privilege drop: every mount
 * remounted read-only, tmpfs on /tmp and the hidden directories, the working directory bound back read-write.
 */
import { existsSync } from 'node:fs';
import { dropPrivilegesArgv, type PrivilegeDrop } from './drop-privileges.js';

/**
 * Runs inside the new mount namespace, as root, before the task: `sh -c UNSHARE_SETUP sh CWD HELPER N HIDE… -- TASK…`.
 * The working directory is held open (`cd`) before the tmpfs mounts cover it, then bound back from
 * /proc/self/cwd (not by name: the name now leads into the tmpfs). HELPER (the privilege drop, or empty) is held
 * open the same way and bound back read-only when a tmpfs covers it (a checkout under /tmp, say).
 */
const UNSHARE_SETUP = [
  'set -e',
  'cwd=$1; helper=$2; n=$3; shift 3',
  'cd "$cwd"',
  'if [ -n "$helper" ]; then exec 9<"$helper"; fi',
  'for m in $(awk \'{print $5}\' /proc/self/mountinfo | sort -r); do case "$m" in /proc|/proc/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac; done',
  'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp',
  'while [ "$n" -gt 0 ]; do if [ -d "$1" ]; then mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$1"; fi; shift; n=$((n-1)); done',
  'shift',
  'mkdir -p "$cwd"',
  'mount --no-canonicalize --bind /proc/self/cwd "$cwd"',
  'mount -o remount,bind,rw "$cwd"',
  'if [ -n "$helper" ] && [ ! -e "$helper" ]; then mkdir -p "${helper%/*}"; : > "$helper"; mount --no-canonicalize --bind /proc/self/fd/9 "$helper"; mount -o remount,bind,ro "$helper"; fi',
  'if [ -n "$helper" ]; then exec 9<&-; fi',
  'cd "$cwd"',
  'exec "$@"',
].join('\n');

export interface SandboxSettings {
  /** Which sandbox program: bubblewrap, or util-linux unshare (root only) where bubblewrap is missing. */
  readonly tool: 'bwrap' | 'unshare';
  /** Path of the program (bwrap or unshare). */
  readonly bwrap: string;
  /** The program that drops to `uid` when the agent runs as root (dsg-drop, else setpriv: drop-privileges.ts). */
  readonly drop: PrivilegeDrop | null;
  /** User and group the task runs as (only when the agent is root); null keeps the agent's. */
  readonly uid: number | null;
  readonly gid: number | null;
  /** Directories the task must not see (tmpfs mounted over them). */
  readonly hide: readonly string[];
}

/** The argv that runs `argv` in the sandbox with `cwd` as its only writable directory (`devices`: the host's /dev, for GPUs). */
export function sandboxArgv(s: SandboxSettings, cwd: string, network: boolean, argv: readonly string[], devices = false): string[] {
  const root = s.uid !== null && s.drop !== null;
  if (s.tool === 'unshare') {
    // Root only (the probe makes sure). Devices: the host's /dev is visible (read-only mount, device nodes work).
    void devices;
    const hide = [...new Set(s.hide)].sort((a, b) => a.length - b.length);
    return [
      s.bwrap, '--mount', '--pid', '--fork', '--kill-child', '--ipc', '--uts', ...(network ? [] : ['--net']), '--mount-proc', '--propagation', 'private', '--',
      '/bin/sh', '-c', UNSHARE_SETUP, 'sh', cwd, s.drop?.kind === 'dsg-drop' ? s.drop.program : '', String(hide.length), ...hide, '--',
      ...dropPrivilegesArgv(s.drop!, s.uid!, s.gid ?? s.uid!),
      ...argv,
    ];
  }
  const out = [s.bwrap];
  // As root: every namespace but the user one (see above). Otherwise --unshare-all includes a user namespace.
  if (root) out.push('--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try', ...(network ? [] : ['--unshare-net']));
  else out.push('--unshare-all', ...(network ? ['--share-net'] : []));
  // A GPU task needs the host's device nodes (/dev/nvidia*); others get a minimal /dev.
  out.push('--die-with-parent', '--ro-bind', '/', '/', ...(devices ? ['--dev-bind', '/dev', '/dev'] : ['--dev', '/dev']), '--proc', '/proc', '--perms', '1777', '--tmpfs', '/tmp');
  // Outermost first, so a hidden directory inside another is mounted on top of it, not covered by it.
  const hide = [...new Set(s.hide)].filter((h) => existsSync(h)).sort((a, b) => a.length - b.length);
  for (const h of hide) out.push('--tmpfs', h);
  // bwrap makes the missing parents of a bind's destination 0700 (root's): the task could use relative paths only.
  // Create them searchable (not listable) between the deepest tmpfs holding the working dir and the dir itself.
  const mounts = ['/tmp', ...hide];
  const deepest = mounts.filter((m) => cwd.startsWith(`${m}/`)).sort((a, b) => b.length - a.length)[0];
  if (deepest) {
    const parts = cwd.slice(deepest.length + 1).split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) out.push('--perms', '0711', '--dir', `${deepest}/${parts.slice(0, i).join('/')}`);
  }
  out.push('--bind', cwd, cwd, '--chdir', cwd);
  // dsg-drop runs inside, as root, from where it was built: bound back read-only when a tmpfs covers it (a
  // checkout under /tmp), after the working dir's parents were made (the ones they share stay searchable).
  if (root && s.drop!.kind === 'dsg-drop' && mounts.some((m) => s.drop!.program.startsWith(`${m}/`))) out.push('--ro-bind', s.drop!.program, s.drop!.program);
  if (root) {
    out.push(...dropPrivilegesArgv(s.drop!, s.uid!, s.gid ?? s.uid!));
  } else out.push('--');
  return [...out, ...argv];
}
