import t, { type Test } from 'tap';
import { R } from '../api/registry.js';
import { FakeApiClient } from '../client/fake.js';
import { InformerFactory } from '../client/factory.js';
import { FakeEventRecorder } from '../client/events.js';
import type { KubeObject } from '../api/object.js';
import { eventually } from '../../test/integration/controllers-node/fakectx.js';
import { Scheduler, type Binder } from './scheduler.js';
import type { PodObj } from './cache.js';
import { SchedulingQueue } from './queue.js';

/** Binds like the apiserver does: sets spec.nodeName (refusing pods that are already bound). */
class FakeBinder implements Binder {
  failNext = 0;
  binds = 0;
  constructor(private readonly client: FakeApiClient) {}
  async bind(pod: PodObj, nodeName: string): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw Object.assign(new Error('conflict'), { code: 409 });
    }
    const cur = await this.client.get<PodObj>(R.pods, pod.metadata!.name!, pod.metadata!.namespace);
    if (cur.spec?.nodeName) throw Object.assign(new Error('already bound'), { code: 409 });
    await this.client.patch(R.pods, pod.metadata!.name!, { spec: { nodeName } }, { namespace: pod.metadata!.namespace });
    this.binds++;
  }
}

const node = (name: string, cpu = '2') => ({ metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: {}, status: { allocatable: { cpu, memory: '4Gi', pods: '110' } } });
const pod = (name: string, cpu = '500m', extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'x', resources: { requests: { cpu } } }], ...extra },
});

async function setup(t: Test) {
  const client = new FakeApiClient();
  const informers = new InformerFactory(client);
  const recorder = new FakeEventRecorder();
  const binder = new FakeBinder(client);
  const s = new Scheduler({ client, informers, recorder, binder, initialBackoffMs: 10, maxBackoffMs: 50, flushIntervalMs: 60_000 });
  informers.start();
  await informers.waitForSync();
  await s.start();
  t.teardown(async () => {
    await s.stop();
    informers.stop();
  });
  return { client, recorder, binder, s };
}

t.test('binds pending pods, spreads by free resources, explains an unschedulable pod and retries it when a node appears', async (t) => {
  const { client, recorder } = await setup(t);
  await client.create(R.nodes, node('n1'));
  await client.create(R.nodes, node('n2'));
  for (let i = 0; i < 4; i++) await client.create(R.pods, pod(`p${i}`));
  const placed = await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods)).items;
    return items.every((p) => p.spec?.nodeName) ? items : undefined;
  }, 'all pods bound');
  const per = placed.reduce<Record<string, number>>((m, p) => ((m[p.spec!.nodeName!] = (m[p.spec!.nodeName!] ?? 0) + 1), m), {});
  t.same(per, { n1: 2, n2: 2 });
  await client.create(R.pods, pod('huge', '3'));
  const ev = await eventually(() => recorder.events.find((e) => e.key === 'default/huge' && e.reason === 'FailedScheduling'), 'FailedScheduling event');
  t.equal(ev.message, '0/2 nodes are available: 2 Insufficient cpu.');
  const cond = await eventually(async () => (await client.get<PodObj>(R.pods, 'huge', 'default')).status?.conditions?.find((c) => c.type === 'PodScheduled'), 'PodScheduled condition');
  t.match(cond, { status: 'False', reason: 'Unschedulable' });
  await client.create(R.nodes, node('big', '8'));
  await eventually(async () => (await client.get<PodObj>(R.pods, 'huge', 'default')).spec?.nodeName === 'big', 'huge bound once a big node appears');
  const scheduled = await eventually(() => recorder.events.find((e) => e.key === 'default/huge' && e.reason === 'Scheduled'), 'Scheduled event (written after the bindings)');
  t.equal(scheduled.message, 'Successfully assigned default/huge to big');
});

t.test('a failed binding is retried with backoff; other schedulers and bound pods are ignored', async (t) => {
  const { client, binder } = await setup(t);
  await client.create(R.nodes, node('n1'));
  binder.failNext = 2;
  await client.create(R.pods, pod('p'));
  await client.create(R.pods, pod('mine-not', '100m', { schedulerName: 'other' }));
  await eventually(async () => (await client.get<PodObj>(R.pods, 'p', 'default')).spec?.nodeName === 'n1', 'bound after two failures');
  t.equal(binder.binds, 1);
  t.notOk((await client.get<PodObj>(R.pods, 'mine-not', 'default')).spec?.nodeName, 'pod of another scheduler untouched');
});

t.test('freed resources reschedule parked pods (pod deletion is a cluster event)', async (t) => {
  const { client } = await setup(t);
  await client.create(R.nodes, node('n1', '1'));
  await client.create(R.pods, pod('a', '800m'));
  await eventually(async () => (await client.get<PodObj>(R.pods, 'a', 'default')).spec?.nodeName, 'a bound');
  await client.create(R.pods, pod('b', '800m'));
  await eventually(async () => (await client.get<KubeObject & PodObj>(R.pods, 'b', 'default')).status?.conditions?.length, 'b parked');
  t.equal((await client.get<PodObj>(R.pods, 'b', 'default')).spec?.nodeName, undefined, 'b waits while a holds the cpu');
  await client.delete(R.pods, 'a', 'default');
  const bound = await eventually(async () => (await client.get<PodObj>(R.pods, 'b', 'default')).spec?.nodeName, 'b bound after a is gone');
  t.equal(bound, 'n1');
});

t.test('queue: priority order, backoff, unschedulable moves', async (t) => {
  let now = 1000;
  const q = new SchedulingQueue({ initialBackoffMs: 100, maxBackoffMs: 400, now: () => now });
  t.teardown(() => q.close());
  q.add('low', 0);
  q.add('high', 10);
  q.add('low2', 0);
  t.equal(await q.pop(), 'high');
  t.equal(await q.pop(), 'low');
  t.equal(await q.pop(), 'low2');
  q.markUnschedulable('x');
  t.equal(q.backoffMs('x'), 100);
  q.markUnschedulable('x');
  t.equal(q.backoffMs('x'), 200, 'backoff doubles');
  now += 1000;
  q.moveAllUnschedulable();
  t.same(q.stats(), { active: 1, backoff: 0, unschedulable: 0 }, 'backoff expired: straight to active');
  t.equal(await q.pop(), 'x');
  q.markUnschedulable('y');
  q.moveAllUnschedulable();
  t.same(q.stats(), { active: 0, backoff: 1, unschedulable: 0 }, 'still backing off');
  q.forget('y');
  t.same(q.stats(), { active: 0, backoff: 0, unschedulable: 0 });
});
