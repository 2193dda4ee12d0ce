import t from 'tap';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { FakeApiClient } from '../client/fake.js';
import { InformerFactory } from '../client/factory.js';
import { componentLogger } from '../util/log.js';
import { eventually } from '../../test/integration/controllers-node/fakectx.js';
import { Controller, enqueueHandlers } from './run.js';

const log = componentLogger('run-test');
const cm = (name: string, owner?: string): KubeObject => ({ metadata: { name, namespace: 'default', labels: owner ? { owner } : {} } });

t.test('handlers enqueue the keys of the old and the new object; undefined keys are skipped', async (t) => {
  const got: string[] = [];
  const h = enqueueHandlers<KubeObject>((k) => got.push(k), (o) => (o.metadata?.labels?.owner ? [`default/${o.metadata.labels.owner}`] : undefined));
  h.add!(cm('a', 'x'));
  h.update!(cm('a', 'x'), cm('a', 'y')); // moved from owner x to y: both must resync
  h.update!(cm('b'), cm('b')); // no owner: nothing
  h.delete!(cm('a', 'y'));
  t.same(got, ['default/x', 'default/x', 'default/y', 'default/y']);
  const own: string[] = [];
  enqueueHandlers<KubeObject>((k) => own.push(k)).update!(cm('a'), cm('a'));
  t.same(own, ['default/a', 'default/a'], 'default key: objectKey (the queue merges the repeat)');
});

t.test('workers start only once the caches have synced; a failed sync is retried with backoff; stop ends it', async (t) => {
  const client = new FakeApiClient();
  for (const n of ['a', 'b', 'c']) client.seed(R.configmaps, cm(n));
  const informers = new InformerFactory(client);
  const cms = informers.get(R.configmaps);
  const c = new Controller({ name: 'run-test', log, baseDelayMs: 5, maxDelayMs: 20 });
  const seen: { key: string; cached: number }[] = [];
  let failB = 2;
  cms.addHandlers(c.handlers());
  const running = c.run({
    informers: [cms],
    workers: 2,
    sync: async (key) => {
      seen.push({ key, cached: cms.list().length });
      if (key === 'default/b' && failB-- > 0) throw new Error('transient');
    },
  });
  t.teardown(() => informers.stop());
  t.equal(seen.length, 0, 'nothing runs before the informers start');
  informers.start();
  await eventually(() => seen.filter((s) => s.key === 'default/b').length === 3, 'b synced three times (two failures, then ok)');
  t.ok(seen.every((s) => s.cached === 3), 'every sync saw the complete cache');
  t.same([...new Set(seen.map((s) => s.key))].sort(), ['default/a', 'default/b', 'default/c']);
  t.equal(c.queue.numRequeues('default/b'), 0, 'success forgets the failures');
  running.stop();
  c.enqueue('default/a');
  t.equal(c.queue.length, 0, 'a stopped controller takes no more keys');
});
