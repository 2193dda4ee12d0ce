import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from './sqlite.js';
import type { StoreEvent } from './types.js';

const b = (s: string): Buffer => Buffer.from(s);

function tempStore(t: Tap.Test): { file: string; store: SqliteStore } {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
  const file = join(dir, 'store.db');
  const store = new SqliteStore(file);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { file, store };
}

t.test('writes issued together are group-committed: consecutive revisions, per-write failures', async (t) => {
  const { file, store } = tempStore(t);
  const base = await store.currentRevision();
  const results = await Promise.allSettled([
    store.create('/g/a', b('1')),
    store.create('/g/a', b('dup')),
    store.update('/g/missing', b('x')),
    store.create('/g/b', b('2')),
    store.update('/g/a', b('3')),
    store.delete('/g/b'),
  ]);
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? (typeof r.value === 'number' ? r.value : r.value.revision) : (r.reason as { code: string }).code)),
    [base + 1, 'AlreadyExists', 'NotFound', base + 2, base + 3, base + 4],
    'each write sees the ones before it in the batch; only the failed ones fail',
  );
  t.equal(await store.currentRevision(), base + 4);
  t.equal((await store.get('/g/a'))?.value.toString(), '3');
  t.equal(await store.get('/g/b'), null);
  // acknowledged means committed: another connection sees it
  const other = new Database(file, { readonly: true });
  t.teardown(() => other.close());
  t.same(other.prepare('SELECT key, rev FROM current ORDER BY key').all(), [{ key: '/g/a', rev: base + 3 }]);
});

t.test('a watch opened while a batch awaits its fsync gets each event exactly once, in order', async (t) => {
  const { store } = tempStore(t);
  for (let round = 0; round < 20; round++) {
    const from = await store.currentRevision();
    const writes = [store.create(`/w${round}/a`, b('1')), store.create(`/w${round}/b`, b('2'))];
    // let the batch commit (its fsync may still be running), then watch from before it
    await new Promise((r) => setImmediate(r));
    const events: StoreEvent[] = [];
    const w = await store.watch(`/w${round}/`, from, (ev) => events.push(ev));
    await Promise.all(writes);
    await store.update(`/w${round}/a`, b('3'));
    w.stop();
    t.same(
      events.map((e) => `${e.type} ${e.key} ${e.value.toString()}`),
      [`put /w${round}/a 1`, `put /w${round}/b 2`, `put /w${round}/a 3`],
      `round ${round}`,
    );
  }
});

t.test('acknowledged writes survive reopening; revisions continue', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'store.db');
  const s1 = new SqliteStore(file);
  const revs = await Promise.all(Array.from({ length: 50 }, (_, i) => s1.create(`/r/${i}`, b(String(i)))));
  await s1.close();
  const s2 = new SqliteStore(file);
  t.teardown(() => s2.close());
  const list = await s2.list('/r/');
  t.equal(list.items.length, 50);
  t.equal(list.revision, Math.max(...revs));
  t.equal(await s2.create('/r/next', b('x')), Math.max(...revs) + 1);
});

t.test('closed store refuses writes', async (t) => {
  const { store } = tempStore(t);
  await store.close();
  await t.rejects(store.create('/c/a', b('1')), { code: 'Unavailable' });
});

t.test('a store written with values in the live index opens, reads and writes as before', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'store.db');
  // the layout before the live index lost its value column: every value in `log` and in `current`
  const old = new Database(file);
  old.exec(`
    CREATE TABLE log (rev INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL, create_rev INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, prev_rev INTEGER);
    CREATE INDEX log_key_rev ON log(key, rev);
    CREATE TABLE current (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE meta (name TEXT PRIMARY KEY, num INTEGER NOT NULL);
    INSERT INTO meta(name, num) VALUES ('compacted', 0), ('rev', 3);
    INSERT INTO log VALUES (1, '/m/a', CAST('a1' AS BLOB), 1, 0, NULL), (2, '/m/b', CAST('b1' AS BLOB), 2, 0, NULL), (3, '/m/a', CAST('a2' AS BLOB), 1, 0, 1);
    INSERT INTO current VALUES ('/m/a', 3, 1, CAST('a2' AS BLOB)), ('/m/b', 2, 2, CAST('b1' AS BLOB));
  `);
  old.close();
  const s = new SqliteStore(file);
  t.teardown(() => s.close());
  t.same(await s.get('/m/a'), { key: '/m/a', value: b('a2'), modRevision: 3, createRevision: 1 });
  t.same((await s.list('/m/')).items.map((kv) => `${kv.key}=${kv.value.toString()}@${kv.modRevision}`), ['/m/a=a2@3', '/m/b=b1@2']);
  t.same((await s.list('/m/', { revision: 2 })).items.map((kv) => `${kv.key}=${kv.value.toString()}`), ['/m/a=a1', '/m/b=b1'], 'history is intact');
  await t.rejects(s.create('/m/b', b('dup')), { code: 'AlreadyExists' });
  t.equal(await s.update('/m/b', b('b2'), 2), 4);
  t.equal((await s.get('/m/b'))?.value.toString(), 'b2');
});
