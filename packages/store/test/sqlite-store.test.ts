import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS, openSqliteStore, runStoreConformance, type Store } from '@dsg/store';

runStoreConformance('SqliteStore on a temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dsg-store-'));
  const file = join(dir, 'dsg.sqlite');
  const opened: Store[] = [openSqliteStore({ file })];
  return {
    store: opened[0]!,
    reopen: async () => {
      await opened[opened.length - 1]!.close();
      const s = openSqliteStore({ file });
      opened.push(s);
      return s;
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

it('migrations are numbered from 1 without gaps, recorded, and re-running init is a no-op', async () => {
  assert.deepEqual(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1));
  const dir = await mkdtemp(join(tmpdir(), 'dsg-mig-'));
  try {
    const file = join(dir, 'x.sqlite');
    const s = openSqliteStore({ file });
    await s.init();
    await s.init();
    await s.close();
    const db = new Database(file, { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), MIGRATIONS.map((m) => ({ version: m.version })));
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
