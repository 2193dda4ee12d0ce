import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { SqliteStore } from '../../../src/store/sqlite.js';
import { EtcdStore } from '../../../src/store/etcd.js';
import type { Store, StoreEvent } from '../../../src/store/types.js';

const b = (s: string): Buffer => Buffer.from(s);

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The one Store contract, run against every backend. */
function contract(name: string, make: () => Promise<{ store: Store; close: () => Promise<void> }>): void {
  t.test(`${name}: create/get/update/delete with revisions`, async (t) => {
    const { store, close } = await make();
    t.teardown(close);
    const r1 = await store.create('/t/a', b('1'));
    await t.rejects(store.create('/t/a', b('x')), { code: 'AlreadyExists' });
    const kv = await store.get('/t/a');
    t.equal(kv?.value.toString(), '1');
    t.equal(kv?.modRevision, r1);
    const r2 = await store.update('/t/a', b('2'), r1);
    t.ok(r2 > r1, 'revision grows');
    await t.rejects(store.update('/t/a', b('3'), r1), { code: 'Conflict' }, 'CAS on a stale revision fails');
    await t.rejects(store.update('/t/missing', b('3')), { code: 'NotFound' });
    const r3 = await store.update('/t/a', b('3'));
    t.ok(r3 > r2, 'unconditional update');
    const del = await store.delete('/t/a');
    t.equal(del.prev.value.toString(), '3');
    t.equal(await store.get('/t/a'), null);
    await t.rejects(store.delete('/t/a'), { code: 'NotFound' });
  });

  t.test(`${name}: create guarded by another key's revision`, async (t) => {
    const { store, close } = await make();
    t.teardown(close);
    const ns = await store.create('/g/ns', b('ns'));
    const r = await store.create('/g/ns-items/a', b('a'), { key: '/g/ns', modRevision: ns });
    t.ok(r > ns, 'the guard holds: written');
    await t.rejects(store.create('/g/ns-items/a', b('again'), { key: '/g/ns', modRevision: ns }), { code: 'AlreadyExists' }, 'an existing key is AlreadyExists whatever the guard');
    const ns2 = await store.update('/g/ns', b('ns changed'));
    await t.rejects(store.create('/g/ns-items/b', b('b'), { key: '/g/ns', modRevision: ns }), { code: 'Conflict' }, 'a guard key that moved on');
    t.equal(await store.get('/g/ns-items/b'), null, 'nothing written');
    await store.create('/g/ns-items/b', b('b'), { key: '/g/ns', modRevision: ns2 });
    await store.delete('/g/ns');
    await t.rejects(store.create('/g/ns-items/c', b('c'), { key: '/g/ns', modRevision: ns2 }), { code: 'Conflict' }, 'a guard key that is gone');
    await t.rejects(store.create('/g/ns-items/c', b('c'), { key: '/g/never', modRevision: 0 }), { code: 'Conflict' }, 'an absent guard key is at no revision');
  });

  t.test(`${name}: list with prefix, limit, continue and at a past revision`, async (t) => {
    const { store, close } = await make();
    t.teardown(close);
    for (const k of ['c', 'a', 'b', 'd']) await store.create(`/l/${k}`, b(k));
    await store.create('/other/x', b('x'));
    const all = await store.list('/l/');
    t.same(all.items.map((i) => i.key), ['/l/a', '/l/b', '/l/c', '/l/d']);
    const p1 = await store.list('/l/', { limit: 2 });
    t.same(p1.items.map((i) => i.key), ['/l/a', '/l/b']);
    t.equal(p1.more, true);
    const p2 = await store.list('/l/', { limit: 2, startAfter: '/l/b', revision: p1.revision });
    t.same(p2.items.map((i) => i.key), ['/l/c', '/l/d']);
    const rev = (await store.list('/l/')).revision;
    await store.update('/l/a', b('A'));
    await store.delete('/l/b');
    const past = await store.list('/l/', { revision: rev });
    t.same(past.items.map((i) => `${i.key}=${i.value}`), ['/l/a=a', '/l/b=b', '/l/c=c', '/l/d=d'], 'list at a past revision sees the old state');
    const now = await store.list('/l/');
    t.same(now.items.map((i) => `${i.key}=${i.value}`), ['/l/a=A', '/l/c=c', '/l/d=d']);
  });

  t.test(`${name}: several watches on one prefix from different revisions each get exactly their events`, async (t) => {
    const { store, close } = await make();
    t.teardown(close);
    const r0 = await store.create('/s0', b('before'));
    const r1 = await store.create('/s/a', b('a'));
    await store.create('/s/b', b('b'));
    const seen: Record<string, string[]> = { w1: [], w2: [], w3: [] };
    const watch = (name: string, from: number) => store.watch('/s/', from, (ev) => seen[name].push(ev.key));
    const w1 = await watch('w1', r0);
    const w2 = await watch('w2', r1);
    await waitFor(() => seen.w1.length >= 2 && seen.w2.length >= 1);
    await store.create('/s/c', b('c'));
    await waitFor(() => seen.w1.length >= 3 && seen.w2.length >= 2);
    w1.stop();
    await store.create('/s/d', b('d'));
    const w3 = await watch('w3', r0);
    await waitFor(() => seen.w2.length >= 3 && seen.w3.length >= 4);
    await new Promise((r) => setTimeout(r, 100));
    w2.stop();
    w3.stop();
    t.same(seen.w1, ['/s/a', '/s/b', '/s/c'], 'from r0, stopped before d');
    t.same(seen.w2, ['/s/b', '/s/c', '/s/d'], 'from r1: b on');
    t.same(seen.w3, ['/s/a', '/s/b', '/s/c', '/s/d'], 'a late watch from r0 gets all of it');
  });

  t.test(`${name}: watch from a revision replays, then streams; compaction expires old revisions`, async (t) => {
    const { store, close } = await make();
    t.teardown(close);
    const r0 = await store.create('/w/a', b('1'));
    await store.update('/w/a', b('2'));
    const events: StoreEvent[] = [];
    const w = await store.watch('/w/', r0, (ev) => events.push(ev));
    await store.create('/w/b', b('3'));
    await store.delete('/w/a');
    await store.create('/x/ignored', b('0'));
    await waitFor(() => events.length >= 3);
    w.stop();
    t.same(
      events.map((e) => `${e.type} ${e.key} ${e.value.toString()}${e.created ? ' created' : ''}`),
      ['put /w/a 2', 'put /w/b 3 created', 'delete /w/a 2'],
    );
    const cur = await store.currentRevision();
    await store.compact(cur);
    await t.rejects(store.watch('/w/', r0, () => undefined), { code: 'Expired' });
  });
}

contract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
  const store = new SqliteStore(join(dir, 'store.db'));
  return { store, close: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** A real etcd from apt on loopback ports, one per test. */
async function startEtcd(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const proc: ChildProcess = spawn('etcd', [
    '--data-dir', dir, '--name', 'default',
    '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--log-level', 'error',
  ], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${client}`;
  const probe = new EtcdStore([endpoint]);
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      await probe.currentRevision();
      break;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await probe.close();
  return {
    endpoint,
    stop: async () => {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

contract('etcd', async () => {
  const etcd = await startEtcd();
  const store = new EtcdStore([etcd.endpoint]);
  return { store, close: async () => { await store.close(); await etcd.stop(); } };
});
