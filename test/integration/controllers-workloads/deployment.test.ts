import t from 'tap';
import type { Deployment, ReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import { startBackend } from './backend.js';
import { eventually, startHarness } from './harness.js';

type D = Deployment & KubeObject;
type RS = ReplicaSet & KubeObject;

function deployment(name: string, replicas: number, image: string, strategy?: Deployment['spec'] extends infer S ? (S extends { strategy?: infer X } ? X : never) : never): D {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: { app: name } },
      strategy: strategy ?? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image }] } },
    },
  } as D;
}

/** What `kubectl rollout status` waits for. */
function rolledOut(d: D | undefined): boolean {
  if (!d?.status) return false;
  const want = d.spec?.replicas ?? 1;
  const s = d.status;
  return (
    (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
    s.updatedReplicas === want &&
    s.replicas === want &&
    s.availableReplicas === want &&
    !!s.conditions?.some((c) => c.type === 'Progressing' && c.status === 'True' && c.reason === 'NewReplicaSetAvailable')
  );
}

async function replicaSets(client: import('../../../src/client/types.js').ApiClient, app: string): Promise<RS[]> {
  return (await client.list<RS>(R.replicasets, { namespace: 'default', labelSelector: `app=${app}` })).items;
}

t.test('deployment: rollout, image update, rollback (kubectl rollout undo), history limit', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const h = await startHarness(be.client, { controllers: ['replicaset', 'deployment'], nodes: ['n1', 'n2'] });
  be.defer(() => h.stop());
  const c = be.client;

  await c.create(R.deployments, deployment('web', 3, 'img:1'), 'default');
  const d1 = await eventually('first rollout', async () => {
    const d = await c.get<D>(R.deployments, 'web', 'default');
    return rolledOut(d) && d;
  });
  t.equal(d1.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  t.ok(d1.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True'));
  let rss = await replicaSets(c, 'web');
  t.equal(rss.length, 1);
  const rs1 = rss[0];
  t.match(rs1.metadata, { annotations: { 'deployment.kubernetes.io/revision': '1' }, ownerReferences: [{ kind: 'Deployment', name: 'web', uid: d1.metadata?.uid, controller: true }] });
  const hash1 = rs1.metadata?.labels?.['pod-template-hash'];
  t.ok(hash1, 'pod-template-hash label');
  const pods = (await c.list<Pod & KubeObject>(R.pods, { namespace: 'default', labelSelector: 'app=web' })).items;
  t.equal(pods.length, 3);
  t.ok(pods.every((p) => p.metadata?.labels?.['pod-template-hash'] === hash1));

  // image update: a second ReplicaSet takes over, never more than 3+1 pods, never fewer than 3 available
  let maxPods = 0;
  h.pods.addHandlers({ add: () => (maxPods = Math.max(maxPods, h.pods.list('default').filter((p) => !p.metadata?.deletionTimestamp).length)) });
  await c.patch(R.deployments, 'web', { spec: { template: { spec: { containers: [{ name: 'c', image: 'img:2' }] } } } }, { namespace: 'default', type: 'merge' });
  const d2 = await eventually('second rollout', async () => {
    const d = await c.get<D>(R.deployments, 'web', 'default');
    return d.metadata?.annotations?.['deployment.kubernetes.io/revision'] === '2' && rolledOut(d) && d;
  });
  t.ok(d2);
  t.ok(maxPods <= 4, `surge respected (max ${maxPods} pods)`);
  rss = await replicaSets(c, 'web');
  t.equal(rss.length, 2);
  const old = rss.find((r) => r.metadata?.name === rs1.metadata?.name)!;
  const cur = rss.find((r) => r.metadata?.name !== rs1.metadata?.name)!;
  t.equal(old.spec?.replicas, 0, 'old RS scaled to 0');
  t.equal(cur.spec?.replicas, 3);
  t.equal(cur.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
  t.ok(h.events.events.some((e) => e.reason === 'ScalingReplicaSet' && /Scaled down replica set web-/.test(e.message)));

  // kubectl rollout undo: patch the template back to revision 1's (minus pod-template-hash)
  const tmpl = structuredClone(old.spec!.template!) as { metadata?: { labels?: Record<string, string> } };
  delete tmpl.metadata!.labels!['pod-template-hash'];
  await c.patch(R.deployments, 'web', { spec: { template: tmpl } }, { namespace: 'default', type: 'merge' });
  await eventually('rollback', async () => {
    const d = await c.get<D>(R.deployments, 'web', 'default');
    return d.metadata?.annotations?.['deployment.kubernetes.io/revision'] === '3' && rolledOut(d);
  });
  rss = await replicaSets(c, 'web');
  t.equal(rss.length, 2, 'the old ReplicaSet is re-used, not re-created');
  const back = rss.find((r) => r.metadata?.name === rs1.metadata?.name)!;
  t.equal(back.spec?.replicas, 3);
  t.equal(back.metadata?.annotations?.['deployment.kubernetes.io/revision'], '3');
  t.equal(back.metadata?.annotations?.['deployment.kubernetes.io/revision-history'], '1');
  await eventually('revision 2 scaled down', async () => (await c.get<RS>(R.replicasets, cur.metadata!.name!, 'default')).spec?.replicas === 0);

  // history limit 0 removes old ReplicaSets once complete
  await c.patch(R.deployments, 'web', { spec: { revisionHistoryLimit: 0 } }, { namespace: 'default', type: 'merge' });
  await eventually('old RS cleaned up', async () => (await replicaSets(c, 'web')).length === 1);
});

t.test('deployment: Recreate stops old pods before starting new ones; scaling; paused', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const h = await startHarness(be.client, { controllers: ['replicaset', 'deployment'], nodes: ['n1'] });
  be.defer(() => h.stop());
  const c = be.client;
  await c.create(R.deployments, deployment('rec', 2, 'img:1', { type: 'Recreate' }), 'default');
  await eventually('rollout', async () => rolledOut(await c.get<D>(R.deployments, 'rec', 'default')));
  let overlap = false;
  h.pods.addHandlers({
    add: (p) => {
      if (p.spec?.containers?.[0]?.image !== 'img:2') return;
      if (h.pods.list('default').some((o) => o.metadata?.labels?.app === 'rec' && o.spec?.containers?.[0]?.image === 'img:1')) overlap = true;
    },
  });
  await c.patch(R.deployments, 'rec', { spec: { template: { spec: { containers: [{ name: 'c', image: 'img:2' }] } } } }, { namespace: 'default', type: 'merge' });
  await eventually('recreate rollout', async () => {
    const d = await c.get<D>(R.deployments, 'rec', 'default');
    return d.metadata?.annotations?.['deployment.kubernetes.io/revision'] === '2' && rolledOut(d);
  });
  t.notOk(overlap, 'no new pod while an old one existed');

  await c.patch(R.deployments, 'rec', { spec: { replicas: 4 } }, { namespace: 'default', type: 'merge' });
  await eventually('scaled to 4', async () => rolledOut(await c.get<D>(R.deployments, 'rec', 'default')));
  t.equal((await c.list(R.pods, { namespace: 'default', labelSelector: 'app=rec' })).items.length, 4);

  await c.patch(R.deployments, 'rec', { spec: { paused: true, template: { spec: { containers: [{ name: 'c', image: 'img:3' }] } } } }, { namespace: 'default', type: 'merge' });
  const paused = await eventually('paused condition', async () => {
    const d = await c.get<D>(R.deployments, 'rec', 'default');
    return d.status?.conditions?.some((x) => x.type === 'Progressing' && x.reason === 'DeploymentPaused') && d;
  });
  t.equal((await replicaSets(c, 'rec')).length, 2, 'no new ReplicaSet while paused');
  t.equal(paused.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
});
