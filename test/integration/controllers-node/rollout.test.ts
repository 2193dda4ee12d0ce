// Needs the workload controllers (replicaset, deployment) of the other half of issue 4.
import t from 'tap';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import type { PodObj } from '../../../src/scheduler/cache.js';
import { startReplicaSetController } from '../../../src/controllers/replicaset/controller.js';
import { startDeploymentController } from '../../../src/controllers/deployment/controller.js';
import { eventually } from './fakectx.js';
import { startCluster } from './cluster.js';

type Slice = KubeObject & EndpointSlice;
type Deploy = KubeObject & { spec: { template: { spec: { containers: { name: string; image: string; env?: unknown[] }[] } } } };

const deployment = (replicas: number) => ({
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'skiff/pause:3.9', ports: [{ name: 'http', containerPort: 8080 }], resources: { requests: { cpu: '100m' } } }] } },
  },
});
const slicesOf = async (client: import('../../../src/client/types.js').ApiClient) =>
  (await client.list<Slice>(R.endpointslices, { namespace: 'default', labelSelector: 'kubernetes.io/service-name=web' })).items.flatMap((s) => s.endpoints ?? []);

t.test('EndpointSlice contents during a rolling update: terminating endpoints with serving/ready flags', async (t) => {
  const c = await startCluster({ extra: [startReplicaSetController, startDeploymentController] });
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(R.services, { metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } }, 'default');
  await client.create(R.deployments, deployment(3), 'default');
  await eventually(async () => {
    const eps = await slicesOf(client);
    return eps.length === 3 && eps.every((e) => e.conditions?.ready);
  }, '3 ready endpoints', 15_000);
  const oldPods = new Set((await client.list<PodObj>(R.pods, { namespace: 'default' })).items.map((p) => p.metadata!.name!));
  c.kubelet.holdTerminating = true;
  const d = await client.get<Deploy>(R.deployments, 'web', 'default');
  d.spec.template.spec.containers[0].env = [{ name: 'VERSION', value: '2' }];
  await client.update(R.deployments, d);
  // mid-rollout: an old pod terminating is still listed, serving but not ready
  const term = await eventually(async () => (await slicesOf(client)).find((e) => e.conditions?.terminating), 'a terminating endpoint during the rollout', 15_000);
  t.ok(oldPods.has(term.targetRef!.name!), 'the terminating endpoint is an old pod');
  t.same(term.conditions, { ready: false, serving: true, terminating: true });
  const mid = await slicesOf(client);
  t.ok(mid.filter((e) => e.conditions?.ready).length >= 3, 'maxUnavailable 0: never fewer than 3 ready endpoints');
  await c.kubelet.releaseTerminating();
  const done = await eventually(async () => {
    const eps = await slicesOf(client);
    return eps.length === 3 && eps.every((e) => e.conditions?.ready && !oldPods.has(e.targetRef!.name!)) ? eps : undefined;
  }, 'only new pods remain, all ready', 20_000);
  t.equal(done.length, 3);
});

t.test('node going silent: taint, eviction, replacement pods scheduled elsewhere', async (t) => {
  const c = await startCluster({ extra: [startReplicaSetController, startDeploymentController], options: { nodeMonitorGracePeriodSeconds: 1, podEvictionTimeoutSeconds: 1 } });
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(R.deployments, deployment(3), 'default');
  const pods = await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items;
    return items.length === 3 && items.every((p) => p.status?.phase === 'Running') ? items : undefined;
  }, '3 pods running', 15_000);
  const victim = pods[0].spec!.nodeName!;
  const lost = pods.filter((p) => p.spec?.nodeName === victim).map((p) => p.metadata!.name!);
  c.kubelet.silence(victim);
  await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items;
    const live = items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running');
    return live.length === 3 && live.every((p) => p.spec?.nodeName !== victim) && lost.every((n) => items.find((p) => p.metadata?.name === n)?.metadata?.deletionTimestamp || !items.find((p) => p.metadata?.name === n));
  }, 'replacements running on the other nodes', 20_000);
  t.pass('pods replaced elsewhere');
});
