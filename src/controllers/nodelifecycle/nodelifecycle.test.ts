import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually, FakeClock } from '../../../test/integration/controllers-node/fakectx.js';
import type { NodeObj, PodObj } from '../../scheduler/cache.js';
import { desiredTaints, evictionTime, nodeHealth, TAINT_UNREACHABLE } from './reconcile.js';
import { startNodeLifecycleController } from './controller.js';

const readyNode = (name: string, status = 'True') => ({ metadata: { name }, spec: {}, status: { conditions: [{ type: 'Ready', status, lastHeartbeatTime: '2026-01-01T00:00:00Z' }] } }) as NodeObj;
const podOn = (name: string, node: string, tolerations?: unknown[]) =>
  ({ metadata: { name, namespace: 'default' }, spec: { nodeName: node, containers: [{ name: 'c' }], tolerations }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }) as PodObj;

t.test('pure: health, taints, eviction times', async (t) => {
  t.equal(nodeHealth(readyNode('a'), 0, 39_000, 40), 'Ready');
  t.equal(nodeHealth(readyNode('a'), 0, 41_000, 40), 'Unknown');
  t.equal(nodeHealth(readyNode('a', 'False'), 0, 1000, 40), 'NotReady');
  const tainted = desiredTaints(readyNode('a'), 'Unknown', '2026-01-01T00:00:00Z')!;
  t.same(tainted, [
    { key: TAINT_UNREACHABLE, effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' },
    { key: TAINT_UNREACHABLE, effect: 'NoExecute', timeAdded: '2026-01-01T00:00:00Z' },
  ]);
  t.same(desiredTaints(readyNode('a', 'False'), 'NotReady', 'x')!.map((x) => `${x.key}:${x.effect}`), ['node.kubernetes.io/not-ready:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute']);
  const n2 = { ...readyNode('a'), spec: { taints: [...tainted, { key: 'mine', effect: 'NoSchedule' }] } } as NodeObj;
  t.equal(desiredTaints(n2, 'Unknown', 'x'), null, 'no change while still unknown');
  t.same(desiredTaints(n2, 'Ready', 'x'), [{ key: 'mine', effect: 'NoSchedule' }], 'recovery removes only our taint');
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  t.equal(evictionTime(podOn('p', 'a'), tainted, 300, t0), t0 + 300_000, 'default toleration');
  t.equal(evictionTime(podOn('p', 'a', [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 5 }]), tainted, 300, t0), t0 + 5000);
  t.equal(evictionTime(podOn('p', 'a', [{ operator: 'Exists' }]), tainted, 300, t0), undefined, 'tolerates forever');
  t.equal(evictionTime(podOn('p', 'a'), [{ key: 'other', effect: 'NoExecute' }], 300, t0), t0, 'untolerated NoExecute taint evicts now');
});

t.test('controller: silent node -> Unknown + taint -> pods not ready -> evicted after toleration', async (t) => {
  const client = new FakeApiClient();
  const clock = new FakeClock();
  const { ctx, informers, recorder } = makeContext({ client, clock, options: { nodeMonitorGracePeriodSeconds: 40, podEvictionTimeoutSeconds: 300 } });
  const c = startNodeLifecycleController(ctx, { monitorPeriodMs: 10 });
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  await client.create(R.nodes, readyNode('n1'));
  await client.create(R.leases, { metadata: { name: 'n1', namespace: 'kube-node-lease' }, spec: { holderIdentity: 'n1', renewTime: '2026-01-01T00:00:00.000000Z', leaseDurationSeconds: 40 } });
  await client.create(R.pods, podOn('plain', 'n1'));
  await client.create(R.pods, podOn('patient', 'n1', [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 1000 }]));
  await client.create(R.pods, podOn('daemon', 'n1', [{ operator: 'Exists' }]));
  await new Promise((r) => setTimeout(r, 50));
  clock.advance(30_000);
  // a lease renewal keeps it alive
  const lease = await client.get(R.leases, 'n1', 'kube-node-lease');
  await client.update(R.leases, { ...lease, spec: { ...(lease.spec as object), renewTime: '2026-01-01T00:00:30.000000Z' } });
  await new Promise((r) => setTimeout(r, 50));
  clock.advance(30_000);
  await new Promise((r) => setTimeout(r, 50));
  t.notOk((await client.get<NodeObj>(R.nodes, 'n1')).spec?.taints?.length, 'heartbeat 30 s ago: healthy');
  clock.advance(15_000);
  const node = await eventually(async () => {
    const n = await client.get<NodeObj>(R.nodes, 'n1');
    return n.spec?.taints?.some((x) => x.key === TAINT_UNREACHABLE) ? n : undefined;
  }, 'unreachable taint');
  t.equal(node.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'Unknown');
  await eventually(async () => (await client.get<PodObj>(R.pods, 'plain', 'default')).status?.conditions?.[0].status === 'False', 'pod marked not ready');
  t.ok(recorder.events.some((e) => e.key === 'n1' && e.reason === 'NodeNotReady'));
  clock.advance(299_000);
  await new Promise((r) => setTimeout(r, 60));
  t.ok(await client.get(R.pods, 'plain', 'default'), 'not yet: toleration still running');
  clock.advance(2_000);
  await eventually(async () => client.get(R.pods, 'plain', 'default').then(() => false, () => true), 'plain evicted after 300 s');
  t.ok(await client.get(R.pods, 'patient', 'default'), 'tolerationSeconds 1000 still running');
  clock.advance(1_000_000);
  await eventually(async () => client.get(R.pods, 'patient', 'default').then(() => false, () => true), 'patient evicted after 1000 s');
  t.ok(await client.get(R.pods, 'daemon', 'default'), 'tolerate-forever pod stays');
  // the kubelet comes back: Ready=True and a fresh lease remove the taint
  const n = await client.get<NodeObj>(R.nodes, 'n1');
  await client.update(R.nodes, { ...n, status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: new Date(clock.now()).toISOString() }] } });
  await eventually(async () => !(await client.get<NodeObj>(R.nodes, 'n1')).spec?.taints?.length, 'taint removed on recovery');
});
