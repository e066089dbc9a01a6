export * from './store.js';
export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';
export { MIGRATIONS, type Migration } from './sqlite/migrations.js';
export { runStoreConformance, type StoreFactoryResult } from './conformance.js';
export { acquireProcessLock, type LockAttempt, type LockOwner } from './sqlite/process-lock.js';
