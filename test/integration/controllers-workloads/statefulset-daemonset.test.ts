import t from 'tap';
import type { DaemonSet, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { startBackend } from './backend.js';
import { createNodes, eventually, startHarness } from './harness.js';

type STS = StatefulSet & KubeObject;
type DS = DaemonSet & KubeObject;
type P = Pod & KubeObject;
const isReady = (p: Pod): boolean => !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

t.test('statefulset: ordered creation, claims, partitioned rolling update, ordered scale down', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const h = await startHarness(be.client, { controllers: ['statefulset'], nodes: ['n1', 'n2'] });
  be.defer(() => h.stop());
  const c = be.client;
  const created: string[] = [];
  const violations: string[] = [];
  h.pods.addHandlers({
    add: (p) => {
      if (!p.metadata?.name?.startsWith('db-')) return;
      const ord = Number(p.metadata.name.slice(3));
      created.push(p.metadata.name);
      for (let i = 0; i < ord; i++) {
        const prev = h.pods.get(`default/db-${i}`);
        if (!prev || !isReady(prev)) violations.push(`db-${ord} created before db-${i} was ready`);
      }
    },
  });
  await c.create(
    R.statefulsets,
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db', namespace: 'default' },
      spec: {
        replicas: 3,
        serviceName: 'db',
        selector: { matchLabels: { app: 'db' } },
        template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'db:1' }] } },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      },
    } as STS,
    'default',
  );
  const ready = async (n: number): Promise<STS | false> => {
    const s = await c.get<STS>(R.statefulsets, 'db', 'default');
    return s.status?.readyReplicas === n && s.status.replicas === n && (s.status.observedGeneration ?? 0) >= (s.metadata?.generation ?? 1) && s;
  };
  const s1 = await eventually('3 ready', () => ready(3));
  t.same(created, ['db-0', 'db-1', 'db-2'], 'created in ordinal order');
  t.same(violations, []);
  t.equal(s1.status?.currentRevision, s1.status?.updateRevision);
  const pod1 = await c.get<P>(R.pods, 'db-1', 'default');
  t.equal(pod1.spec?.hostname, 'db-1');
  t.equal(pod1.spec?.subdomain, 'db');
  t.equal(pod1.metadata?.labels?.['statefulset.kubernetes.io/pod-name'], 'db-1');
  t.same(pod1.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: 'data-db-1' });
  const pvcs = (await c.list(R.persistentvolumeclaims, { namespace: 'default' })).items.map((x) => x.metadata?.name).sort();
  t.same(pvcs, ['data-db-0', 'data-db-1', 'data-db-2']);
  t.ok((await c.list(R.controllerrevisions, { namespace: 'default' })).items.length >= 1, 'a ControllerRevision');

  // rolling update with partition 1: db-2 then db-1 move to the new revision, db-0 stays
  await c.patch(R.statefulsets, 'db', { spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } }, template: { spec: { containers: [{ name: 'c', image: 'db:2' }] } } } }, { namespace: 'default', type: 'merge' });
  const s2 = await eventually('partitioned update', async () => {
    const s = await c.get<STS>(R.statefulsets, 'db', 'default');
    return s.status?.updatedReplicas === 2 && s.status.readyReplicas === 3 && s;
  });
  const image = async (n: string): Promise<string | undefined> => (await c.get<P>(R.pods, n, 'default')).spec?.containers?.[0]?.image;
  t.equal(await image('db-0'), 'db:1');
  t.equal(await image('db-1'), 'db:2');
  t.equal(await image('db-2'), 'db:2');
  t.not(s2.status?.currentRevision, s2.status?.updateRevision, 'not fully rolled out while partitioned');
  t.equal((await c.list(R.controllerrevisions, { namespace: 'default' })).items.length, 2);

  // scale down removes the highest ordinal first
  const deleted: string[] = [];
  h.pods.addHandlers({ update: (_o, n) => n.metadata?.deletionTimestamp && !deleted.includes(n.metadata.name!) && deleted.push(n.metadata.name!), delete: (p) => !deleted.includes(p.metadata!.name!) && deleted.push(p.metadata!.name!) });
  await c.patch(R.statefulsets, 'db', { spec: { replicas: 1 } }, { namespace: 'default', type: 'merge' });
  await eventually('scaled to 1', () => ready(1));
  t.same(deleted, ['db-2', 'db-1']);
});

t.test('daemonset: one pod per eligible node (3 fake nodes), taints, rolling update', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const c = be.client;
  await createNodes(c, ['a', 'b'], () => ({}));
  await createNodes(c, ['tainted'], () => ({ spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] } }));
  const h = await startHarness(c, { controllers: ['daemonset'], nodes: ['a', 'b', 'tainted'] });
  be.defer(() => h.stop());
  await c.create(
    R.daemonsets,
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', namespace: 'default' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'agent:1' }] } } },
    } as DS,
    'default',
  );
  const rolled = async (n: number, image: string): Promise<boolean> => {
    const ds = await c.get<DS>(R.daemonsets, 'agent', 'default');
    const pods = (await c.list<P>(R.pods, { namespace: 'default', labelSelector: 'app=agent' })).items.filter((p) => !p.metadata?.deletionTimestamp);
    return ds.status?.desiredNumberScheduled === n && ds.status.numberAvailable === n && ds.status.updatedNumberScheduled === n && pods.length === n && pods.every((p) => p.spec?.containers?.[0]?.image === image);
  };
  await eventually('2 daemon pods', () => rolled(2, 'agent:1'));
  const nodesOf = async (): Promise<string[]> =>
    (await c.list<P>(R.pods, { namespace: 'default', labelSelector: 'app=agent' })).items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => p.spec?.nodeName ?? '')
      .sort();
  t.same(await nodesOf(), ['a', 'b'], 'not on the tainted node');

  await c.patch(R.daemonsets, 'agent', { spec: { template: { spec: { tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] } } } }, { namespace: 'default', type: 'merge' });
  await eventually('3 daemon pods', () => rolled(3, 'agent:1'));
  t.same(await nodesOf(), ['a', 'b', 'tainted']);

  let maxUnavailable = 0;
  h.pods.addHandlers({
    update: () => {
      const live = h.pods.list('default').filter((p) => p.metadata?.labels?.app === 'agent' && !p.metadata?.deletionTimestamp && isReady(p));
      maxUnavailable = Math.max(maxUnavailable, 3 - live.length);
    },
  });
  await c.patch(R.daemonsets, 'agent', { spec: { template: { spec: { containers: [{ name: 'c', image: 'agent:2' }] } } } }, { namespace: 'default', type: 'merge' });
  await eventually('rolled to agent:2', () => rolled(3, 'agent:2'));
  t.ok(maxUnavailable <= 1, `at most 1 unavailable during the update (saw ${maxUnavailable})`);

  await c.patch(R.nodes, 'b', { metadata: { labels: { role: 'edge' } } }, { type: 'merge' });
  await c.patch(R.daemonsets, 'agent', { spec: { template: { spec: { nodeSelector: { role: 'edge' } } } } }, { namespace: 'default', type: 'merge' });
  await eventually('only on b', async () => (await nodesOf()).join() === 'b' && rolled(1, 'agent:2'));
  t.pass('nodeSelector restricts the daemon pods');
});
