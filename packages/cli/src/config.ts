/**
 * Configuration for every dsg command, parsed once per process. Precedence: defaults < config file < DSG_* env
 * < flags. This is the only module that reads `process.env`; the resolvers are pure functions over an env
 * object, so tests pass their own.
 *
 * Client settings come from, in order: --coordinator/--token flags; DSG_COORDINATOR / DSG_TOKEN; the config file
 * (`$XDG_CONFIG_HOME/dsg/config.json` or `~/.config/dsg/config.json`, written by `dsg up`); and last
 * `./.dsg/credentials.json` (written by a coordinator whose data dir is the current directory's `.dsg`).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DsgError } from '@dsg/core';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ClientConfig {
  readonly coordinator: string;
  readonly token: string;
  /** Where the settings came from, for error messages. */
  readonly source: string;
}

export interface ConfigFile {
  coordinator?: string;
  token?: string;
}

export interface CredentialsFile {
  url?: string;
  adminToken?: string;
  joinToken?: string;
}

export function configFilePath(env: Env): string {
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'dsg', 'config.json');
}

export function stateDirDefault(env: Env): string {
  const base = env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state');
  return join(base, 'dsg-agent');
}

/** Pure: pick the client settings from flags, env, config file and local credentials. */
export function resolveClientConfig(input: {
  flags: { coordinator?: string | undefined; token?: string | undefined };
  env: Env;
  file: ConfigFile | null;
  filePath: string;
  credentials: CredentialsFile | null;
  credentialsPath: string;
}): ClientConfig | null {
  const { flags, env, file, credentials } = input;
  const pick = (...c: Array<[string | undefined, string]>): [string, string] | null => {
    for (const [v, src] of c) if (v) return [v, src];
    return null;
  };
  const coordinator = pick([flags.coordinator, '--coordinator'], [env['DSG_COORDINATOR'], 'DSG_COORDINATOR'], [file?.coordinator, input.filePath], [credentials?.url, input.credentialsPath]);
  const token = pick([flags.token, '--token'], [env['DSG_TOKEN'], 'DSG_TOKEN'], [file?.token, input.filePath], [credentials?.adminToken, input.credentialsPath]);
  if (!coordinator || !token) return null;
  return { coordinator: coordinator[0], token: token[0], source: coordinator[1] === token[1] ? coordinator[1] : `${coordinator[1]} + ${token[1]}` };
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** The process environment, read here and nowhere else. */
export const processEnv: Env = process.env;

export function loadClientConfig(flags: { coordinator?: string | undefined; token?: string | undefined }, env: Env = processEnv, cwd = process.cwd()): ClientConfig {
  const filePath = configFilePath(env);
  const credentialsPath = join(cwd, '.dsg', 'credentials.json');
  const c = resolveClientConfig({ flags, env, file: readJson<ConfigFile>(filePath), filePath, credentials: readJson<CredentialsFile>(credentialsPath), credentialsPath });
  if (!c)
    throw new DsgError('unavailable', 'no coordinator configured: start one with `npm start` (or `dsg up`), or set DSG_COORDINATOR and DSG_TOKEN');
  return c;
}

export function writeClientConfig(c: ConfigFile, env: Env = processEnv): string {
  const path = configFilePath(env);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return path;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The environment tasks inherit from the agent: enough to find programs and behave normally, nothing secret. */
export function taskBaseEnv(env: Env): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'USER', 'LOGNAME', 'SHELL'];
  const out: Record<string, string> = {};
  for (const k of keep) {
    const v = env[k];
    if (v) out[k] = v;
  }
  out['PATH'] ??= '/usr/local/bin:/usr/bin:/bin';
  return out;
}

export const debugEnabled = (env: Env = processEnv): boolean => env['DSG_DEBUG'] === '1';
