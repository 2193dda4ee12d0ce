import t from 'tap';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import type { NodeObj, PodObj } from '../../../src/scheduler/cache.js';
import type { PvcObj, PvObj } from '../../../src/controllers/volume/reconcile.js';
import type { SvcObj } from '../../../src/controllers/endpointslice/reconcile.js';
import type { HpaObj } from '../../../src/controllers/hpa/reconcile.js';
import { eventually } from './fakectx.js';
import { startCluster } from './cluster.js';

type Slice = KubeObject & EndpointSlice;
type Ev = KubeObject & { involvedObject: { name: string }; reason: string; message: string };

const pod = (name: string, labels: Record<string, string>, cpu = '100m', extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [{ name: 'c', image: 'skiff/busybox:1.36', ports: [{ name: 'http', containerPort: 8080 }], resources: { requests: { cpu, memory: '64Mi' } } }], ...extra },
});

t.test('pods scheduled on fake nodes back EndpointSlices; terminating endpoints keep serving until gone', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(R.services, { metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } }, 'default');
  for (let i = 0; i < 6; i++) await client.create(R.pods, pod(`web-${i}`, { app: 'web' }), 'default');
  const pods = await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items;
    return items.length === 6 && items.every((p) => p.spec?.nodeName && p.status?.podIP) ? items : undefined;
  }, 'all pods bound and running');
  const perNode = new Set(pods.map((p) => p.spec!.nodeName));
  t.equal(perNode.size, 3, 'spread over the three nodes');
  const slice = await eventually(async () => {
    const s = (await client.list<Slice>(R.endpointslices, { namespace: 'default', labelSelector: 'kubernetes.io/service-name=web' })).items;
    return s.length === 1 && s[0].endpoints?.length === 6 && s[0].endpoints.every((e) => e.conditions?.ready) ? s[0] : undefined;
  }, 'slice with 6 ready endpoints');
  t.same(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  t.ok(slice.endpoints!.every((e) => e.nodeName && e.targetRef?.kind === 'Pod'));
  // graceful deletion: the endpoint stays, terminating and still serving, until the kubelet finishes
  c.kubelet.holdTerminating = true;
  await client.delete(R.pods, 'web-0', 'default');
  const term = await eventually(async () => {
    const s = (await client.list<Slice>(R.endpointslices, { namespace: 'default', labelSelector: 'kubernetes.io/service-name=web' })).items[0];
    return s?.endpoints?.find((e) => e.targetRef?.name === 'web-0' && e.conditions?.terminating);
  }, 'terminating endpoint');
  t.same(term.conditions, { ready: false, serving: true, terminating: true });
  const ep = await client.get<KubeObject & { subsets: { addresses: unknown[] }[] }>(R.endpoints, 'web', 'default');
  t.ok(ep.subsets[0].addresses.length <= 6);
  await c.kubelet.releaseTerminating();
  await eventually(async () => {
    const s = (await client.list<Slice>(R.endpointslices, { namespace: 'default', labelSelector: 'kubernetes.io/service-name=web' })).items[0];
    return s?.endpoints?.length === 5;
  }, 'endpoint gone after the pod is');
  await eventually(async () => (await client.get<KubeObject & { subsets: { addresses: unknown[] }[] }>(R.endpoints, 'web', 'default')).subsets[0].addresses.length === 5, 'Endpoints follow');
});

t.test('an unschedulable pod is explained by its event; nodes get pod CIDRs; namespaces get a default SA', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(R.pods, pod('greedy', { app: 'x' }, '64'), 'default');
  const ev = await eventually(async () => (await client.list<Ev>(R.events, { namespace: 'default' })).items.find((e) => e.involvedObject.name === 'greedy' && e.reason === 'FailedScheduling'), 'FailedScheduling event');
  t.equal(ev.message, '0/3 nodes are available: 3 Insufficient cpu.');
  const cond = await eventually(async () => (await client.get<PodObj>(R.pods, 'greedy', 'default')).status?.conditions?.find((x) => x.type === 'PodScheduled'), 'PodScheduled=False');
  t.match(cond, { status: 'False', reason: 'Unschedulable' });
  const cidrs = await eventually(async () => {
    const nodes = (await client.list<NodeObj>(R.nodes)).items;
    return nodes.every((n) => n.spec?.podCIDR) ? nodes.map((n) => n.spec!.podCIDR).sort() : undefined;
  }, 'pod CIDRs');
  t.same(cidrs, ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24']);
  await client.create(R.namespaces, { metadata: { name: 'team-a' } });
  await eventually(() => client.get(R.serviceaccounts, 'default', 'team-a'), 'default ServiceAccount');
  t.pass('default SA present');
});

t.test('LoadBalancer Services get pool addresses; a pending one is explained', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const { client } = c;
  const lb = (name: string) => ({ metadata: { name, namespace: 'default' }, spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80 }] } });
  for (const n of ['a', 'b', 'c']) await client.create(R.services, lb(n), 'default');
  const ips = await eventually(async () => {
    const s = (await client.list<SvcObj>(R.services, { namespace: 'default' })).items.filter((x) => x.spec?.type === 'LoadBalancer');
    const got = s.map((x) => x.status?.loadBalancer?.ingress?.[0]?.ip).filter(Boolean);
    return got.length === 2 ? got.sort() : undefined;
  }, 'two of three get addresses');
  t.same(ips, ['192.0.2.10', '192.0.2.11']);
  const ev = await eventually(async () => (await client.list<Ev>(R.events, { namespace: 'default' })).items.find((e) => e.reason === 'AllocationFailed'), 'AllocationFailed event');
  t.equal(ev.message, 'the LoadBalancer address pool is exhausted');
  const holder = (await client.list<SvcObj>(R.services, { namespace: 'default' })).items.find((x) => x.status?.loadBalancer?.ingress?.length)!;
  await client.delete(R.services, holder.metadata!.name!, 'default');
  await eventually(async () => {
    const s = (await client.list<SvcObj>(R.services, { namespace: 'default' })).items.filter((x) => x.spec?.type === 'LoadBalancer');
    return s.length === 2 && s.every((x) => x.status?.loadBalancer?.ingress?.length);
  }, 'released address goes to the pending Service');
});

t.test('a silent node becomes Unknown, gets the unreachable taint and its pods are evicted', async (t) => {
  const c = await startCluster({ options: { nodeMonitorGracePeriodSeconds: 1, podEvictionTimeoutSeconds: 1 } });
  t.teardown(() => c.close());
  const { client } = c;
  for (let i = 0; i < 3; i++) await client.create(R.pods, pod(`p-${i}`, { app: 'p' }), 'default');
  const placed = await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items;
    return items.every((p) => p.status?.phase === 'Running') ? items : undefined;
  }, 'pods running');
  const victim = placed[0].spec!.nodeName!;
  c.kubelet.silence(victim);
  const node = await eventually(async () => {
    const n = await client.get<NodeObj>(R.nodes, victim);
    return n.spec?.taints?.some((x) => x.key === 'node.kubernetes.io/unreachable' && x.effect === 'NoExecute') ? n : undefined;
  }, 'unreachable taint', 8000);
  t.equal(node.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'Unknown');
  await eventually(async () => {
    const items = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items.filter((p) => p.spec?.nodeName === victim);
    return items.length > 0 && items.every((p) => p.metadata?.deletionTimestamp);
  }, 'pods on the silent node evicted (graceful deletion pending on the lost kubelet)', 8000);
  const others = (await client.list<PodObj>(R.pods, { namespace: 'default' })).items.filter((p) => p.spec?.nodeName !== victim);
  t.ok(others.every((p) => !p.metadata?.deletionTimestamp), 'pods on healthy nodes untouched');
  await client.create(R.pods, pod('after', { app: 'q' }), 'default');
  const after = await eventually(async () => (await client.get<PodObj>(R.pods, 'after', 'default')).spec?.nodeName, 'new pod bound');
  t.not(after, victim, 'the scheduler avoids the tainted node');
});

t.test('PVC bound to a provisioned PV; PDB blocks an eviction with 429', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(R.persistentvolumeclaims, { metadata: { name: 'data', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }, 'default');
  const pvc = await eventually(async () => {
    const x = await client.get<PvcObj>(R.persistentvolumeclaims, 'data', 'default');
    return x.status?.phase === 'Bound' ? x : undefined;
  }, 'claim bound');
  const pv = await client.get<PvObj>(R.persistentvolumes, pvc.spec!.volumeName!);
  t.equal(pv.spec?.storageClassName, 'standard');
  t.ok(pv.spec?.hostPath?.path.startsWith(c.dataDir));
  await client.create(R.pods, pod('user', { app: 'db' }, '100m', { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] }), 'default');
  await eventually(async () => (await client.get<PodObj>(R.pods, 'user', 'default')).spec?.nodeName, 'pod with a bound claim scheduled');

  for (const n of ['db-1', 'db-2']) await client.create(R.pods, pod(n, { app: 'db' }), 'default');
  await client.create(R.poddisruptionbudgets, { metadata: { name: 'db', namespace: 'default' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'db' } } } }, 'default');
  await eventually(async () => {
    const p = await client.get<KubeObject & { status?: { currentHealthy?: number; disruptionsAllowed?: number } }>(R.poddisruptionbudgets, 'db', 'default');
    return p.status?.currentHealthy === 3 && p.status.disruptionsAllowed === 1;
  }, 'budget allows one disruption');
  const evict = (name: string) =>
    client.request('POST', `/api/v1/namespaces/default/pods/${name}/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' } }).then(
      (r) => r.status,
      (err: { code?: number }) => err.code,
    );
  t.equal(await evict('db-1'), 201);
  t.equal(await evict('db-2'), 429, 'second eviction would break minAvailable=2');
  t.notOk((await client.get<PodObj>(R.pods, 'db-2', 'default')).metadata?.deletionTimestamp);
});

t.test('HPA scales a target on synthetic CPU figures', async (t) => {
  const c = await startCluster();
  t.teardown(() => c.close());
  const { client } = c;
  await client.create(
    R.deployments,
    { metadata: { name: 'api', namespace: 'default' }, spec: { replicas: 2, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'c', image: 'skiff/busybox:1.36' }] } } } },
    'default',
  );
  for (const n of ['api-1', 'api-2']) {
    await client.create(R.pods, pod(n, { app: 'api' }, '200m'), 'default');
    c.metrics.set('default', n, 400);
  }
  await eventually(async () => (await client.list<PodObj>(R.pods, { namespace: 'default' })).items.every((p) => p.status?.phase === 'Running'), 'pods running');
  await client.create(
    R.horizontalpodautoscalers,
    { metadata: { name: 'api', namespace: 'default' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' }, minReplicas: 1, maxReplicas: 7, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] } },
    'default',
  );
  await eventually(async () => (await client.get<KubeObject & { spec: { replicas: number } }>(R.deployments, 'api', 'default')).spec.replicas === 6, 'scaled 2 -> 6 (rate limit: +4 pods per 15 s)');
  const h = await eventually(async () => {
    const x = await client.get<HpaObj>(R.horizontalpodautoscalers, 'api', 'default');
    return x.status?.desiredReplicas === 6 ? x : undefined;
  }, 'HPA status');
  t.match(h.status?.currentMetrics?.[0], { resource: { name: 'cpu', current: { averageUtilization: 200 } } });
});
