/**
 * The agent's optional native helpers (packages/agent/native/*.c, compiled by scripts/build-native.mjs when there is
 * a C compiler): `dsg-spawn`, the process starter, and `dsg-drop`, the privilege drop. Each is used only when it was
 * built and answers `--version` with the protocol its TypeScript side speaks (checked once, ~1 ms); otherwise the
 * caller falls back (Node's spawn, util-linux setpriv) and says why.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the build puts a helper: next to the bundle (scripts/bundle-cli.mjs copies it), or in the agent's dist. */
function candidates(name: string): string[] {
  return [fileURLToPath(new URL(`./${name}`, import.meta.url)), fileURLToPath(new URL(`../../native/${name}`, import.meta.url))];
}

/**
 * The helper `name` (or `binary`, when given) if it exists and `--version` starts with `version`; else why not, in
 * words for the operator (`what` names it there).
 */
export function findNativeHelper(name: string, version: string, what: string, binary?: string): { file: string } | { file: null; why: string; built: boolean } {
  const file = binary ?? candidates(name).find((f) => existsSync(f));
  if (!file) return { file: null, why: `${what} (${name}) was not built (no C compiler at build time)`, built: false };
  const r = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 || !r.stdout.startsWith(version)) return { file: null, why: `${what} ${file} does not run here (${r.error?.message ?? `exit ${r.status}`})`, built: true };
  return { file };
}
