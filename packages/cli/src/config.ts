/**
 * Configuration for every dsg command, parsed once per process. Precedence: defaults < config file < DSG_* env
 * < flags. This is the only module that reads `process.env`; the resolvers are pure functions over an env
 * object, so tests pass their own.
 *
 * Client settings come from, in order: --coordinator/--token flags; DSG_COORDINATOR / DSG_TOKEN; the config file
 * (`$XDG_CONFIG_HOME/dsg/config.json` or `~/.config/dsg/config.json`, written by `dsg up`); and last
 * `./.dsg/credentials.json` (written by a coordinator whose data dir is the current directory's `.dsg`). Each
 * setting remembers its source, so a bad URL or a rejected token is reported with where it came from.
 *
 * Waiting commands' give-up time: --give-up-after > DSG_GIVE_UP_AFTER > 5 minutes.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { DsgError, parseDuration, ValidationError } from '@dsg/core/base';

export type Env = Readonly<Record<string, string | undefined>>;

/** Where one client setting came from, so an error can send the user to the right place. */
export interface SettingSource {
  readonly kind: 'flag' | 'env' | 'file' | 'credentials';
  /** `--coordinator`, `DSG_TOKEN`, or the file's path. */
  readonly name: string;
  /** The value as written there (before an `http://` was assumed). */
  readonly raw: string;
}

export interface ClientConfig {
  /** The coordinator's base URL, normalised (`127.0.0.1:7070` reads as `http://127.0.0.1:7070`). */
  readonly coordinator: string;
  readonly token: string;
  /** Where the settings came from, for error messages. */
  readonly source: string;
  readonly coordinatorSource: SettingSource;
  readonly tokenSource: SettingSource;
  /**
   * The coordinator certificate's pinned fingerprint (`sha256:…`), for `https://` coordinators with a self-signed
   * certificate: --tls-fingerprint > DSG_TLS_FINGERPRINT > the file the URL came from. Null: verify the usual way.
   */
  readonly tlsFingerprint: string | null;
  /**
   * The coordinator's local API socket (`<dataDir>/api.sock`), tried before the URL: from the config file or the
   * credentials the URL came from, unless DSG_NO_LOCAL_SOCKET=1. Null: the URL only.
   */
  readonly localSocket: string | null;
}

export interface ConfigFile {
  coordinator?: string;
  token?: string;
  tlsFingerprint?: string;
  /** The grid's local API socket, written by `dsg up` with the URL (see ClientConfig.localSocket). */
  socket?: string;
}

export interface CredentialsFile {
  url?: string;
  adminToken?: string;
  joinToken?: string;
  /** Set when the coordinator serves TLS with its own self-signed certificate. */
  tlsFingerprint?: string;
  /** Set when the coordinator serves its API on a local Unix socket too. */
  socket?: string;
}

export function configFilePath(env: Env): string {
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'dsg', 'config.json');
}

export function stateDirDefault(env: Env): string {
  const base = env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state');
  return join(base, 'dsg-agent');
}

/** How a source is named in a message: "--token", "DSG_COORDINATOR", "/home/u/.config/dsg/config.json: token". */
export function sourceLabel(src: SettingSource, key: string): string {
  return src.kind === 'flag' || src.kind === 'env' ? src.name : `${src.name}: ${key}`;
}

/** The same source in a sentence: "the --token flag", "the DSG_TOKEN environment variable", "the config file X". */
export function describeSource(src: SettingSource): string {
  switch (src.kind) {
    case 'flag':
      return `the ${src.name} flag`;
    case 'env':
      return `the ${src.name} environment variable`;
    case 'file':
      return `the config file ${src.name}`;
    case 'credentials':
      return `the grid credentials ${src.name}`;
  }
}

/**
 * Check a coordinator URL before anything is sent. A bare `host:port` (what people type, and what `ss` prints)
 * is read as `http://host:port`; anything else that is not an http(s) URL is refused, naming where it came from
 * (`where`, e.g. "DSG_COORDINATOR"). Returns the URL without a trailing slash.
 */
export function normalizeCoordinatorUrl(value: string, where: string): string {
  const text = value.trim();
  const bad = (why: string): never => {
    throw new ValidationError([{ path: where, message: `${why}; expected a coordinator URL like http://127.0.0.1:7070, got "${value}"` }]);
  };
  if (text === '') bad('empty');
  if (/\s/.test(text)) bad('a URL cannot contain spaces');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (scheme && !/^https?$/i.test(scheme[1]!)) bad(`the scheme must be http:// or https://, not ${scheme[1]}://`);
  if (!scheme && /^:?\d+$/.test(text)) bad('a port alone is not enough: add the host');
  let url: URL;
  try {
    url = new URL(scheme ? text : `http://${text}`);
  } catch {
    return bad('not a valid URL');
  }
  if (!url.hostname) bad('no host name');
  if (url.username || url.password) bad('put the token in --token or DSG_TOKEN, not in the URL');
  if (url.search || url.hash) bad('the URL should not have a ?query or #fragment');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Pure: pick the client settings from flags, env, config file and local credentials. Throws on a bad URL. */
export function resolveClientConfig(input: {
  flags: { coordinator?: string | undefined; token?: string | undefined; tlsFingerprint?: string | undefined };
  env: Env;
  file: ConfigFile | null;
  filePath: string;
  credentials: CredentialsFile | null;
  credentialsPath: string;
}): ClientConfig | null {
  const { flags, env, file, credentials } = input;
  const pick = (...c: Array<[string | undefined, SettingSource['kind'], string]>): SettingSource | null => {
    for (const [v, kind, name] of c) if (v) return { kind, name, raw: v };
    return null;
  };
  const coordinator = pick([flags.coordinator, 'flag', '--coordinator'], [env['DSG_COORDINATOR'], 'env', 'DSG_COORDINATOR'], [file?.coordinator, 'file', input.filePath], [credentials?.url, 'credentials', input.credentialsPath]);
  const token = pick([flags.token, 'flag', '--token'], [env['DSG_TOKEN'], 'env', 'DSG_TOKEN'], [file?.token, 'file', input.filePath], [credentials?.adminToken, 'credentials', input.credentialsPath]);
  if (!coordinator && !token) return null;
  // Half a configuration is a mistake worth naming, not "nothing configured".
  if (!token)
    throw new ValidationError([{ path: '--token', message: `no API token (the coordinator URL came from ${describeSource(coordinator!)}): pass --token or set DSG_TOKEN to the adminToken in the grid's credentials.json` }]);
  if (!coordinator)
    throw new ValidationError([{ path: '--coordinator', message: `no coordinator URL (the token came from ${describeSource(token)}): pass --coordinator or set DSG_COORDINATOR, e.g. http://127.0.0.1:7070` }]);
  const url = normalizeCoordinatorUrl(coordinator.raw, sourceLabel(coordinator, coordinator.kind === 'credentials' ? 'url' : 'coordinator'));
  // A pin belongs with the URL it was made for: a file's fingerprint counts only when the URL came from that file.
  const pin = flags.tlsFingerprint ?? env['DSG_TLS_FINGERPRINT']
    ?? (coordinator.kind === 'file' ? file?.tlsFingerprint : coordinator.kind === 'credentials' ? credentials?.tlsFingerprint : undefined);
  // The local socket, like the pin, belongs with the URL: it is the same coordinator's only when both came from one file.
  const socketOf = coordinator.kind === 'file' ? file?.socket : coordinator.kind === 'credentials' ? credentials?.socket : undefined;
  if (socketOf !== undefined && (typeof socketOf !== 'string' || !isAbsolute(socketOf)))
    throw new ValidationError([{ path: sourceLabel(coordinator, 'socket'), message: `expected the absolute path of the grid's local API socket, got ${JSON.stringify(socketOf)}; fix or delete it (\`dsg up\` writes it)` }]);
  return {
    coordinator: url,
    token: token.raw.trim(),
    tlsFingerprint: pin ? pin.trim() : null,
    localSocket: socketOf !== undefined && env['DSG_NO_LOCAL_SOCKET'] !== '1' ? socketOf : null,
    source: coordinator.name === token.name ? coordinator.name : `${coordinator.name} + ${token.name}`,
    coordinatorSource: coordinator,
    tokenSource: token,
  };
}

/** A missing file is null; a file that exists but is not JSON is an error naming it (not silently ignored). */
function readJson<T>(path: string): T | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as T;
  } catch (e) {
    throw new ValidationError([{ path, message: `not a valid settings file (${e instanceof Error ? e.message : String(e)}); fix or delete it (\`dsg up\` writes a new one)` }]);
  }
}

/**
 * Where Snakemake looks for a profile named "dsg" (`snakemake --profile dsg`): its user config directory,
 * `$XDG_CONFIG_HOME/snakemake/dsg` or `~/.config/snakemake/dsg`.
 */
export function snakemakeProfileDir(env: Env = processEnv): string {
  return join(env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config'), 'snakemake', 'dsg');
}

/** The process environment, read here and nowhere else. */
export const processEnv: Env = process.env;

export function loadClientConfig(flags: { coordinator?: string | undefined; token?: string | undefined; tlsFingerprint?: string | undefined }, env: Env = processEnv, cwd = process.cwd()): ClientConfig {
  const filePath = configFilePath(env);
  const credentialsPath = join(cwd, '.dsg', 'credentials.json');
  const c = resolveClientConfig({ flags, env, file: readJson<ConfigFile>(filePath), filePath, credentials: readJson<CredentialsFile>(credentialsPath), credentialsPath });
  if (!c)
    throw new DsgError('unavailable', 'no coordinator configured: start one with `npm start` (or `dsg up`), or set DSG_COORDINATOR and DSG_TOKEN');
  return c;
}

/**
 * Save a fingerprint the user gave (and the coordinator just matched) in the config file at `path`, for the
 * coordinator that file names. Only the fingerprint changes; an unreadable file is left alone.
 */
export function rememberClientPin(path: string, fingerprint: string, env: Env = processEnv): void {
  let file: ConfigFile | null;
  try {
    file = readJson<ConfigFile>(path);
  } catch {
    return;
  }
  if (!file || file.tlsFingerprint === fingerprint || path !== configFilePath(env)) return;
  writeClientConfig({ ...file, tlsFingerprint: fingerprint }, env);
}

/** How long waiting commands keep trying an unreachable coordinator, unless told otherwise. */
export const DEFAULT_GIVE_UP_AFTER_MS = 5 * 60_000;

/**
 * The give-up time of `dsg wait`, `submit --wait` and `logs --follow`: --give-up-after > DSG_GIVE_UP_AFTER > 5m.
 * `0` gives up at the first failed request.
 */
export function resolveGiveUpAfter(flag: string | undefined, env: Env = processEnv): { ms: number; source: string } {
  const [text, source] = flag !== undefined ? [flag, '--give-up-after'] : env['DSG_GIVE_UP_AFTER'] ? [env['DSG_GIVE_UP_AFTER'], 'DSG_GIVE_UP_AFTER'] : [null, 'default'];
  if (text === null) return { ms: DEFAULT_GIVE_UP_AFTER_MS, source };
  const ms = text.trim() === '0' ? 0 : parseDuration(text);
  if (ms === null) throw new ValidationError([{ path: source, message: `expected a duration like 30s, 5m or 1h (0 gives up at once), got "${text}"` }]);
  return { ms, source };
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

/**
 * Where the agent's Linux volunteer-policy readers look: `$DISPLAY` for `xprintidle`; `DSG_AGENT_SYS_ROOT` and
 * `DSG_AGENT_PROC_ROOT` replace /sys and /proc (for tests that fake a battery or a thermal zone; not for users).
 */
export function policyReaderOptions(env: Env = processEnv): { display?: string; sysRoot?: string; procRoot?: string } {
  return {
    ...(env['DISPLAY'] ? { display: env['DISPLAY'] } : {}),
    ...(env['DSG_AGENT_SYS_ROOT'] ? { sysRoot: env['DSG_AGENT_SYS_ROOT'] } : {}),
    ...(env['DSG_AGENT_PROC_ROOT'] ? { procRoot: env['DSG_AGENT_PROC_ROOT'] } : {}),
  };
}
