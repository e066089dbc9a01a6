/**
 * How an agent running as root starts a task as an unprivileged user (uid/gid 65534 by default), with no
 * capabilities (bounding, inheritable and ambient sets empty), no supplementary groups and `no_new_privs`: the
 * last step of the sandbox's argv, or the only one without a sandbox.
 *
 * Two programs do it. `dsg-drop` (packages/agent/native/dsg-drop.c, built with dsg-spawn when there is a C compiler)
 * checks each step and costs ~2.2 ms of CPU per task on the 2-core VM; util-linux `setpriv`, the fallback, ~5.5 ms
 * (libcap-ng, locales). `dsg-drop` is used when it was built and answers `--version` here.
 */
import { findNativeHelper } from './native-helpers.js';

export interface PrivilegeDrop {
  readonly kind: 'dsg-drop' | 'setpriv';
  /** Absolute path of the program. */
  readonly program: string;
}

/** What `dsg-drop --version` answers: the interface this file speaks. */
const DROP_VERSION = 'dsg-drop 1';

/** The argv prefix that runs what follows it as `uid`/`gid`, unprivileged. */
export function dropPrivilegesArgv(d: PrivilegeDrop, uid: number, gid: number): string[] {
  if (d.kind === 'dsg-drop') return [d.program, String(uid), String(gid), '--'];
  return [d.program, `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
}

/**
 * dsg-drop when it was built and runs here, else setpriv found on `findProgram`, else null (with why, for the
 * operator: the notes at agent start).
 */
export function findPrivilegeDrop(findProgram: (name: string) => string | null): { drop: PrivilegeDrop | null; note: string | null } {
  const found = findNativeHelper('dsg-drop', DROP_VERSION, 'the privilege drop helper');
  if (found.file !== null) return { drop: { kind: 'dsg-drop', program: found.file }, note: null };
  const setpriv = findProgram('setpriv');
  // Not built is the expected case without a compiler (setpriv is then what the operator knows); built but not
  // running is worth a line.
  return { drop: setpriv ? { kind: 'setpriv', program: setpriv } : null, note: found.built ? `${found.why}: using setpriv` : null };
}
