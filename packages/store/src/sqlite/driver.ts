/**
 * The SQLite driver under SqliteStore and the process lock: one small synchronous interface (prepare, run / get /
 * all / iterate, exec, pragma, transactions, close) with two adapters:
 *
 *  - `better-sqlite3`: the native add-on (v13 ships prebuilt Node-API binaries: nothing compiles);
 *  - `node`: the built-in `node:sqlite` (Node ≥ 22.13; no native code at all).
 *
 * `auto` (the default) takes better-sqlite3 when it loads, else node:sqlite (a platform without a prebuilt
 * binary); docs/ARCHITECTURE.md ("SQLite driver") has the measurements behind that order. Both run the same Store
 * conformance suite.
 *
 * Where the two differ, this module makes `node` behave like better-sqlite3, because the store was written for it:
 *  - errors: node:sqlite throws `code: 'ERR_SQLITE_ERROR'` with a numeric `errcode`; the adapter puts the SQLite
 *    name in `code` (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, …) as better-sqlite3 does, so callers match one way;
 *  - `undefined` parameters bind as NULL (node:sqlite refuses them);
 *  - an integer beyond ±2^53 read by a SELECT comes back as the nearest double (better-sqlite3's default) instead
 *    of node:sqlite's ERR_OUT_OF_RANGE: the SELECT is re-run reading BigInts and converted. Only SELECTs are re-run
 *    (re-running a write would apply it twice); a write's RETURNING of such a value still throws. A JavaScript
 *    number never stores an integer that is not exactly a double, so what the store wrote reads back exactly;
 *  - nested transactions use SAVEPOINTs, as better-sqlite3's `transaction()` does;
 *  - rows have a null prototype under node:sqlite: the store maps every row to its own object before returning it.
 *
 * One process must not open the same database file with both drivers: each bundles its own SQLite library, and
 * POSIX file locks belong to the process, so closing the file in one library drops locks the other still holds.
 * Tools and tests that look inside a store's file use `openSqliteDatabase` with the store's driver.
 */
import { createRequire } from 'node:module';
import { DsgError } from '@dsg/core';

export const SQLITE_DRIVERS = ['node', 'better-sqlite3'] as const;
export type SqliteDriverName = (typeof SQLITE_DRIVERS)[number];
/** What a user may ask for: one driver, or `auto` (better-sqlite3 when it loads, else node:sqlite). */
export type SqliteDriverChoice = SqliteDriverName | 'auto';

export type SqlValue = string | number | bigint | null | Uint8Array | undefined;
/** Positional values, or one object of named values (`@name`, `:name` or `$name` in the SQL; bare keys). */
export type SqlParams = SqlValue[] | [Readonly<Record<string, SqlValue>>];

export interface SqlRunResult {
  readonly changes: number;
  readonly lastInsertRowid: number | bigint;
}

export interface SqlStatement {
  run(...params: SqlParams): SqlRunResult;
  /** The first row, or undefined. */
  get(...params: SqlParams): unknown;
  all(...params: SqlParams): unknown[];
  iterate(...params: SqlParams): IterableIterator<unknown>;
}

export interface SqlDatabase {
  readonly driver: SqliteDriverName;
  readonly isOpen: boolean;
  prepare(sql: string): SqlStatement;
  exec(sql: string): void;
  /** Runs `PRAGMA <text>` and returns the first column of its first row (undefined when it returns none). */
  pragma(text: string): unknown;
  /**
   * Runs `fn` in a transaction (BEGIN … COMMIT; a SAVEPOINT when nested) and returns its result; rolls back and
   * rethrows if it throws. `fn` must be synchronous: nothing may interleave with an open transaction.
   */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export interface OpenSqliteOptions {
  /** Default `auto`. */
  readonly driver?: SqliteDriverChoice;
  /** Open read-only (the file must exist). Default false. */
  readonly readonly?: boolean;
  /** How long a statement waits for another connection's lock before SQLITE_BUSY. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

/** The oldest Node whose node:sqlite loads without a flag. */
export const NODE_SQLITE_MIN = '22.13.0';

const require = createRequire(import.meta.url);

// ── loading the drivers (lazily: a process loads only the one it uses) ───────────────────────────────────────
interface NodeSqliteModule {
  DatabaseSync: new (file: string, options?: { readOnly?: boolean; open?: boolean }) => NodeDatabaseSync;
}
interface NodeStatementSync {
  run(...p: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...p: unknown[]): unknown;
  all(...p: unknown[]): unknown[];
  iterate(...p: unknown[]): IterableIterator<unknown>;
  setReadBigInts(on: boolean): void;
}
interface NodeDatabaseSync {
  prepare(sql: string): NodeStatementSync;
  exec(sql: string): void;
  close(): void;
}
type BetterSqlite3Ctor = new (file: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => BetterDatabase;
interface BetterDatabase {
  readonly open: boolean;
  prepare(sql: string): SqlStatement;
  exec(sql: string): void;
  pragma(text: string, options: { simple: true }): unknown;
  transaction<T>(fn: () => T): () => T;
  close(): void;
}

let nodeSqlite: NodeSqliteModule | Error | undefined;
let betterSqlite3: BetterSqlite3Ctor | Error | undefined;

function loadNodeSqlite(): NodeSqliteModule | Error {
  if (nodeSqlite) return nodeSqlite;
  // Node 22 prints "ExperimentalWarning: SQLite is an experimental feature" when the module loads (Node 24 does
  // not). Drop exactly that one warning, only while loading; every other warning passes through.
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const text = typeof warning === 'string' ? warning : warning.message;
    if (type === 'ExperimentalWarning' && /^SQLite is an experimental feature/.test(text)) return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    nodeSqlite = require('node:sqlite') as NodeSqliteModule;
  } catch (e) {
    nodeSqlite = new DsgError('unavailable',
      `the SQLite driver "node" (the built-in node:sqlite) needs Node ${NODE_SQLITE_MIN} or newer; this is Node ${process.versions.node} ` +
      `(${(e as { code?: string }).code ?? (e as Error).message}). Use a newer Node, or choose the driver better-sqlite3 (DSG_SQLITE_DRIVER=better-sqlite3).`);
  } finally {
    process.emitWarning = emit;
  }
  return nodeSqlite;
}

function loadBetterSqlite3(): BetterSqlite3Ctor | Error {
  if (betterSqlite3) return betterSqlite3;
  try {
    const ctor = require('better-sqlite3') as BetterSqlite3Ctor;
    // The add-on itself loads on first use: open a throwaway database so a missing or wrong-ABI build shows here.
    new ctor(':memory:').close();
    betterSqlite3 = ctor;
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = (e as Error).message ?? String(e);
    betterSqlite3 = new DsgError('unavailable', code === 'MODULE_NOT_FOUND' && /'better-sqlite3'/.test(message)
      ? 'the SQLite driver "better-sqlite3" is not installed: run `npm install` (or `npm install better-sqlite3`), ' +
        'or choose the driver "node" (DSG_SQLITE_DRIVER=node, Node 22.13 or newer).'
      : /NODE_MODULE_VERSION|was compiled against a different Node/.test(message)
        ? `better-sqlite3 was built for another Node version than this one (${process.versions.node}): run \`npm rebuild better-sqlite3\`, or choose the driver "node" (DSG_SQLITE_DRIVER=node).`
        : `the SQLite driver "better-sqlite3" cannot load here (${process.platform}-${process.arch}; its prebuilt binaries cover Linux, macOS and Windows on x64 and arm64): ${message.split('\n')[0]}. Choose the driver "node" (DSG_SQLITE_DRIVER=node, Node 22.13 or newer).`);
  }
  return betterSqlite3;
}

/**
 * What a worker thread requires to open the same SQLite library as `driver` here: better-sqlite3's resolved path
 * (the add-on this process already loaded), or null for `node` (node:sqlite is built in).
 */
export function sqliteModulePath(driver: SqliteDriverName): string | null {
  return driver === 'node' ? null : require.resolve('better-sqlite3');
}

/** Whether a driver can be used in this process: true, or the error that says why not and what to do. */
export function sqliteDriverAvailable(driver: SqliteDriverName): true | Error {
  const m = driver === 'node' ? loadNodeSqlite() : loadBetterSqlite3();
  return m instanceof Error ? m : true;
}

/**
 * The driver a choice means here. `auto`: better-sqlite3 when it loads, else node:sqlite (docs/ARCHITECTURE.md,
 * "SQLite driver", has the measurements). Throws the drivers' own "why not and what to do" errors when neither loads.
 */
export function resolveSqliteDriver(choice: SqliteDriverChoice = 'auto'): SqliteDriverName {
  if (choice !== 'auto') {
    if (!(SQLITE_DRIVERS as readonly string[]).includes(choice))
      throw new DsgError('validation', `unknown SQLite driver ${JSON.stringify(choice)}: expected auto, node or better-sqlite3`);
    return choice;
  }
  const better = sqliteDriverAvailable('better-sqlite3');
  if (better === true) return 'better-sqlite3';
  const node = sqliteDriverAvailable('node');
  if (node === true) return 'node';
  throw new DsgError('unavailable', `no SQLite driver loads: ${better.message} And ${node.message}`);
}

/** Open a database file (or `:memory:`) with the chosen driver. */
export function openSqliteDatabase(file: string, options: OpenSqliteOptions = {}): SqlDatabase {
  const driver = resolveSqliteDriver(options.driver ?? 'auto');
  const busy = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busy) || busy < 0) throw new DsgError('validation', `busyTimeoutMs must be a whole number of milliseconds ≥ 0, got ${busy}`);
  const db = driver === 'node' ? NodeDatabase.open(file, options.readonly ?? false) : BetterDatabaseAdapter.open(file, options.readonly ?? false);
  db.pragma(`busy_timeout = ${busy}`);
  return db;
}

// ── node:sqlite ─────────────────────────────────────────────────────────────────────────────────────────────
/** SQLite's result codes by number (primary codes, and the extended ones worth telling apart). */
const SQLITE_CODES: Readonly<Record<number, string>> = {
  1: 'SQLITE_ERROR', 2: 'SQLITE_INTERNAL', 3: 'SQLITE_PERM', 4: 'SQLITE_ABORT', 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM', 8: 'SQLITE_READONLY', 9: 'SQLITE_INTERRUPT', 10: 'SQLITE_IOERR', 11: 'SQLITE_CORRUPT', 12: 'SQLITE_NOTFOUND',
  13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN', 15: 'SQLITE_PROTOCOL', 16: 'SQLITE_EMPTY', 17: 'SQLITE_SCHEMA', 18: 'SQLITE_TOOBIG',
  19: 'SQLITE_CONSTRAINT', 20: 'SQLITE_MISMATCH', 21: 'SQLITE_MISUSE', 22: 'SQLITE_NOLFS', 23: 'SQLITE_AUTH', 24: 'SQLITE_FORMAT',
  25: 'SQLITE_RANGE', 26: 'SQLITE_NOTADB',
  261: 'SQLITE_BUSY_RECOVERY', 517: 'SQLITE_BUSY_SNAPSHOT', 773: 'SQLITE_BUSY_TIMEOUT', 262: 'SQLITE_LOCKED_SHAREDCACHE',
  264: 'SQLITE_READONLY_RECOVERY', 520: 'SQLITE_READONLY_CANTLOCK', 776: 'SQLITE_READONLY_ROLLBACK', 1032: 'SQLITE_READONLY_DBMOVED',
  275: 'SQLITE_CONSTRAINT_CHECK', 531: 'SQLITE_CONSTRAINT_COMMITHOOK', 787: 'SQLITE_CONSTRAINT_FOREIGNKEY', 1043: 'SQLITE_CONSTRAINT_FUNCTION',
  1299: 'SQLITE_CONSTRAINT_NOTNULL', 1555: 'SQLITE_CONSTRAINT_PRIMARYKEY', 1811: 'SQLITE_CONSTRAINT_TRIGGER', 2067: 'SQLITE_CONSTRAINT_UNIQUE',
  2323: 'SQLITE_CONSTRAINT_VTAB', 2579: 'SQLITE_CONSTRAINT_ROWID',
};

/** Give a node:sqlite error better-sqlite3's `code` (the SQLite name); its numeric `errcode` stays. */
function withSqliteCode(e: unknown): unknown {
  const err = e as { code?: unknown; errcode?: unknown };
  if (err && err.code === 'ERR_SQLITE_ERROR' && typeof err.errcode === 'number') {
    const name = SQLITE_CODES[err.errcode] ?? SQLITE_CODES[err.errcode & 0xff] ?? `SQLITE_UNKNOWN_${err.errcode}`;
    try {
      Object.defineProperty(e, 'code', { value: name, writable: true, configurable: true, enumerable: true });
    } catch {
      /* a frozen error keeps its code */
    }
  }
  return e;
}

/** node:sqlite refuses `undefined`; better-sqlite3 binds it as NULL, and the store relies on that. */
function bindable(params: SqlParams): unknown[] {
  if (params.length === 1 && params[0] !== null && typeof params[0] === 'object' && !(params[0] instanceof Uint8Array)) {
    const named = params[0] as Record<string, SqlValue>;
    for (const k in named) if (named[k] === undefined) return [Object.fromEntries(Object.entries(named).map(([key, v]) => [key, v ?? null]))];
    return params;
  }
  for (let i = 0; i < params.length; i++) if (params[i] === undefined) return params.map((v) => (v === undefined ? null : v));
  return params;
}

const isOutOfRange = (e: unknown): boolean => (e as { code?: string }).code === 'ERR_OUT_OF_RANGE';
const READ_ONLY_SQL = /^\s*(SELECT|EXPLAIN)\b/i;

function toNumbers<T>(row: T): T {
  if (row && typeof row === 'object') for (const [k, v] of Object.entries(row)) if (typeof v === 'bigint') (row as Record<string, unknown>)[k] = Number(v);
  return row;
}

class NodeStatement implements SqlStatement {
  private wide: NodeStatementSync | null = null;
  constructor(private readonly db: NodeDatabaseSync, private readonly s: NodeStatementSync, private readonly sql: string) {}

  /** The same SELECT reading integers as BigInt (then converted), for a result with an integer beyond ±2^53. */
  private widened(e: unknown): NodeStatementSync {
    if (!isOutOfRange(e) || !READ_ONLY_SQL.test(this.sql)) throw withSqliteCode(e);
    if (!this.wide) {
      this.wide = this.db.prepare(this.sql);
      this.wide.setReadBigInts(true);
    }
    return this.wide;
  }

  run(...params: SqlParams): SqlRunResult {
    try {
      // node:sqlite's own result: `changes` is a number (this statement never reads BigInts); no copy on the hot path.
      return this.s.run(...bindable(params)) as SqlRunResult;
    } catch (e) {
      throw withSqliteCode(e);
    }
  }

  get(...params: SqlParams): unknown {
    const p = bindable(params);
    try {
      return this.s.get(...p);
    } catch (e) {
      return toNumbers(this.widened(e).get(...p));
    }
  }

  all(...params: SqlParams): unknown[] {
    const p = bindable(params);
    try {
      return this.s.all(...p);
    } catch (e) {
      return this.widened(e).all(...p).map(toNumbers);
    }
  }

  *iterate(...params: SqlParams): IterableIterator<unknown> {
    const p = bindable(params);
    let seen = 0;
    try {
      for (const row of this.s.iterate(...p)) {
        seen++;
        yield row;
      }
    } catch (e) {
      // The rows already handed out were read fine; carry on from the one that was out of range.
      let i = 0;
      for (const row of this.widened(e).iterate(...p)) if (i++ >= seen) yield toNumbers(row);
    }
  }
}

class NodeDatabase implements SqlDatabase {
  readonly driver = 'node' as const;
  private open = true;
  private depth = 0;
  private readonly begin: NodeStatementSync;
  private readonly commit: NodeStatementSync;

  static open(file: string, readOnly: boolean): NodeDatabase {
    const m = loadNodeSqlite();
    if (m instanceof Error) throw m;
    try {
      return new NodeDatabase(new m.DatabaseSync(file, readOnly ? { readOnly: true } : {}));
    } catch (e) {
      throw withSqliteCode(e);
    }
  }

  private constructor(private readonly db: NodeDatabaseSync) {
    this.begin = db.prepare('BEGIN');
    this.commit = db.prepare('COMMIT');
  }

  get isOpen(): boolean {
    return this.open;
  }

  prepare(sql: string): SqlStatement {
    try {
      return new NodeStatement(this.db, this.db.prepare(sql), sql);
    } catch (e) {
      throw withSqliteCode(e);
    }
  }

  exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (e) {
      throw withSqliteCode(e);
    }
  }

  pragma(text: string): unknown {
    try {
      const row = this.db.prepare(`PRAGMA ${text}`).get() as Record<string, unknown> | undefined;
      return row ? Object.values(row)[0] : undefined;
    } catch (e) {
      throw withSqliteCode(e);
    }
  }

  transaction<T>(fn: () => T): T {
    const savepoint = this.depth > 0 ? `dsg_tx_${this.depth}` : null;
    try {
      if (savepoint) this.db.exec(`SAVEPOINT ${savepoint}`);
      else this.begin.run();
    } catch (e) {
      throw withSqliteCode(e);
    }
    this.depth++;
    let result: T;
    try {
      result = fn();
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function')
        throw new TypeError('a transaction function must be synchronous: it returned a promise, and nothing may interleave with an open transaction');
      if (savepoint) this.db.exec(`RELEASE ${savepoint}`);
      else this.commit.run();
    } catch (e) {
      // Roll back what is still open (a failed COMMIT leaves the transaction open, as in better-sqlite3).
      try {
        if (savepoint) this.db.exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
        else this.db.exec('ROLLBACK');
      } catch {
        /* SQLite already rolled it back (some errors do) */
      }
      throw withSqliteCode(e);
    } finally {
      this.depth--;
    }
    return result;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.db.close();
  }
}

// ── better-sqlite3 ──────────────────────────────────────────────────────────────────────────────────────────
class BetterDatabaseAdapter implements SqlDatabase {
  readonly driver = 'better-sqlite3' as const;

  static open(file: string, readonly: boolean): BetterDatabaseAdapter {
    const ctor = loadBetterSqlite3();
    if (ctor instanceof Error) throw ctor;
    // Its own default busy timeout is 5 s; openSqliteDatabase sets the one asked for right after.
    return new BetterDatabaseAdapter(new ctor(file, readonly ? { readonly: true, fileMustExist: true } : {}));
  }

  private constructor(private readonly db: BetterDatabase) {}

  get isOpen(): boolean {
    return this.db.open;
  }

  // Its statements already have this interface (and bind undefined as NULL, read big integers as doubles).
  prepare(sql: string): SqlStatement {
    return this.db.prepare(sql);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  pragma(text: string): unknown {
    return this.db.pragma(text, { simple: true });
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
