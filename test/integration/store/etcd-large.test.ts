import t from 'tap';
import { EtcdStore } from '../../../src/store/etcd.js';
import type { StoreEvent } from '../../../src/store/types.js';
import { startEtcd } from '../../../scripts/bench/apiserver-lib.js';

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('etcd: a list larger than gRPC default 4 MiB message limit succeeds', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const store = new EtcdStore([etcd.endpoint]);
  t.teardown(() => store.close());
  const value = Buffer.alloc(1024 * 1024, 120); // 1 MiB, under etcd's 1.5 MiB request limit
  for (let i = 0; i < 5; i++) await store.create(`/big/${i}`, value);
  const list = await store.list('/big/');
  t.equal(list.items.length, 5);
  t.equal(list.items.reduce((n, kv) => n + kv.value.length, 0), 5 * 1024 * 1024);
});

t.test('etcd: watchers of the same prefix receive one shared event object per change', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const store = new EtcdStore([etcd.endpoint]);
  t.teardown(() => store.close());
  const from = await store.currentRevision();
  const got: StoreEvent[][] = [[], [], []];
  const watches = await Promise.all(got.map((into) => store.watch('/s/', from, (ev) => into.push(ev))));
  t.teardown(() => watches.forEach((w) => w.stop()));
  await store.create('/s/a', Buffer.from('1'));
  await store.update('/s/a', Buffer.from('2'));
  await waitFor(() => got.every((g) => g.length === 2));
  t.same(got[0].map((e) => `${e.type} ${e.key} ${e.value} ${e.prevValue ?? '-'} ${e.created}`), ['put /s/a 1 - true', 'put /s/a 2 1 false']);
  for (const g of got.slice(1)) {
    t.same(g, got[0], 'same content');
    t.ok(g.every((e, i) => e === got[0][i]), 'same objects (decoded once upstream)');
  }
});
