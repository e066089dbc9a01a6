export * from './store.js';
export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';
export { MIGRATIONS, type Migration } from './sqlite/migrations.js';
export { runStoreConformance, type StoreFactoryResult } from './conformance.js';
export { acquireProcessLock, type LockAttempt, type LockOwner } from './sqlite/process-lock.js';
export {
  openSqliteDatabase,
  resolveSqliteDriver,
  sqliteDriverAvailable,
  NODE_SQLITE_MIN,
  SQLITE_DRIVERS,
  type OpenSqliteOptions,
  type SqlDatabase,
  type SqliteDriverChoice,
  type SqliteDriverName,
  type SqlStatement,
} from './sqlite/driver.js';
