import t from 'tap';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { startScheduler } from '../../../src/scheduler/index.js';
import type { PodObj } from '../../../src/scheduler/cache.js';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { eventually } from '../controllers-node/fakectx.js';

type Ev = KubeObject & { involvedObject: { name: string }; reason: string; message: string };

const node = (name: string, labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
  spec: { ...extra },
  status: { allocatable: { cpu: '2', memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
});
const pod = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [{ name: 'c', image: 'skiff/pause:3.9', resources: { requests: { cpu: '100m' } } }], ...spec },
});

t.test('scheduler against the real apiserver: binding subresource, filters, events', async (t) => {
  const api = await startTestApiserver();
  const client = api.client;
  const sched = await startScheduler({ client, initialBackoffMs: 50, maxBackoffMs: 200, flushIntervalMs: 500 });
  t.teardown(async () => {
    await sched.stop();
    await api.close();
  });
  await client.create(R.nodes, node('a1', { zone: 'a', disk: 'ssd' }));
  await client.create(R.nodes, node('a2', { zone: 'a' }));
  await client.create(R.nodes, node('b1', { zone: 'b' }, { taints: [{ key: 'dedicated', value: 'batch', effect: 'NoSchedule' }] }));
  const nodeOf = async (n: string) => (await client.get<PodObj>(R.pods, n, 'default')).spec?.nodeName;
  const bound = (n: string) => eventually(() => nodeOf(n), `${n} bound`);

  await client.create(R.pods, pod('ssd', { nodeSelector: { disk: 'ssd' } }), 'default');
  t.equal(await bound('ssd'), 'a1', 'nodeSelector');
  const p = await client.get<PodObj>(R.pods, 'ssd', 'default');
  t.match(p.status?.conditions?.find((c) => c.type === 'PodScheduled'), { status: 'True' }, 'the binding subresource set PodScheduled');

  await client.create(R.pods, pod('batch', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }], affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }] } } } }), 'default');
  t.equal(await bound('batch'), 'b1', 'toleration + required node affinity');

  await client.create(R.pods, pod('db', {}, { app: 'db' }), 'default');
  const dbNode = await bound('db');
  await client.create(R.pods, pod('cache', { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' }] } } }), 'default');
  t.equal(await bound('cache'), dbNode, 'pod affinity on the hostname');
  await client.create(R.pods, pod('replica', { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'zone' }] } } }), 'default');
  await eventually(async () => (await client.list<Ev>(R.events, { namespace: 'default' })).items.find((e) => e.involvedObject.name === 'replica' && e.reason === 'FailedScheduling'), 'anti-affinity leaves no node');
  const ev = (await client.list<Ev>(R.events, { namespace: 'default' })).items.find((e) => e.involvedObject.name === 'replica' && e.reason === 'FailedScheduling')!;
  t.equal(ev.message, "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: batch}, 2 node(s) didn't match pod anti-affinity rules.");
  // a new node in another zone lets it schedule (node add is a cluster event)
  await client.create(R.nodes, node('c1', { zone: 'c' }));
  t.equal(await bound('replica'), 'c1', 'parked pod scheduled once a fitting node appears');

  // a local PV pins its pod
  await client.create(R.persistentvolumes, {
    metadata: { name: 'local-a2' },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'local', local: { path: '/mnt/x' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['a2'] }] }] } } },
  });
  await client.create(R.persistentvolumeclaims, { metadata: { name: 'local', namespace: 'default' }, spec: { volumeName: 'local-a2', storageClassName: 'local', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }, 'default');
  await client.patch(R.persistentvolumeclaims, 'local', { status: { phase: 'Bound' } }, { namespace: 'default', subresource: 'status', type: 'merge' });
  await client.create(R.pods, pod('uses-local', { volumes: [{ name: 'v', persistentVolumeClaim: { claimName: 'local' } }] }), 'default');
  t.equal(await bound('uses-local'), 'a2', 'volume node affinity');

  // cordon: unschedulable nodes are skipped
  for (const n of ['a1', 'a2', 'c1']) await client.patch(R.nodes, n, { spec: { unschedulable: true } }, { type: 'merge' });
  await client.create(R.pods, pod('cordoned'), 'default');
  const ev2 = await eventually(async () => (await client.list<Ev>(R.events, { namespace: 'default' })).items.find((e) => e.involvedObject.name === 'cordoned' && e.reason === 'FailedScheduling'), 'cordoned event');
  t.equal(ev2.message, '0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: batch}, 3 node(s) were unschedulable.');
});
