import t from 'tap';
import type { ReplicaSet, Deployment } from 'kubernetes-types/apps/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import type { ApiClient, ResourceRef } from '../../../src/client/types.js';
import { isNotFound } from '../../../src/controllers/replicaset/common.js';
import { startBackend } from './backend.js';
import { eventually, startHarness } from './harness.js';

function rs(name: string, replicas: number): ReplicaSet & KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: { replicas, selector: { matchLabels: { rs: name } }, template: { metadata: { labels: { rs: name } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
  } as ReplicaSet & KubeObject;
}

async function gone(c: ApiClient, ref: ResourceRef, name: string, ns?: string): Promise<boolean> {
  try {
    await c.get(ref, name, ns);
    return false;
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
}

/**
 * Deletes with a propagation policy. The real apiserver sets the finalizer itself; against
 * FakeApiClient the test does what the apiserver would (finalizer, then delete).
 */
async function deleteWith(c: ApiClient, real: boolean, ref: ResourceRef, name: string, policy: 'Background' | 'Foreground' | 'Orphan'): Promise<void> {
  if (!real && policy !== 'Background') {
    await c.patch(ref, name, { metadata: { finalizers: [policy === 'Orphan' ? 'orphan' : 'foregroundDeletion'] } }, { namespace: 'default', type: 'merge' });
  }
  await c.delete(ref, name, 'default', { propagationPolicy: policy });
}

const podsOf = async (c: ApiClient, sel: string): Promise<KubeObject[]> => (await c.list(R.pods, { namespace: 'default', labelSelector: sel })).items;

t.test('garbage collector: background, orphan and foreground propagation', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const h = await startHarness(be.client, { controllers: ['replicaset', 'deployment', 'garbagecollector'], nodes: ['n1'] });
  be.defer(() => h.stop());
  const c = be.client;

  await t.test('background: dependents go after the owner', async (t) => {
    await c.create(R.replicasets, rs('bg', 2), 'default');
    await eventually('2 pods', async () => (await podsOf(c, 'rs=bg')).length === 2);
    await deleteWith(c, be.real, R.replicasets, 'bg', 'Background');
    await eventually('pods collected', async () => (await podsOf(c, 'rs=bg')).length === 0);
    t.ok(await gone(c, R.replicasets, 'bg', 'default'));
  });

  await t.test('orphan: dependents stay, without the owner reference', async (t) => {
    await c.create(R.replicasets, rs('orph', 2), 'default');
    await eventually('2 pods', async () => (await podsOf(c, 'rs=orph')).length === 2);
    await deleteWith(c, be.real, R.replicasets, 'orph', 'Orphan');
    await eventually('owner gone', () => gone(c, R.replicasets, 'orph', 'default'));
    const pods = await eventually('pods orphaned', async () => {
      const p = await podsOf(c, 'rs=orph');
      return p.length === 2 && p.every((x) => !x.metadata?.ownerReferences?.length) && p;
    });
    t.equal(pods.length, 2);
    for (const p of pods) await c.delete(R.pods, p.metadata!.name!, 'default', { gracePeriodSeconds: 0 });
  });

  await t.test('foreground: the owner stays until blocking dependents are gone', async (t) => {
    const d = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'fg', namespace: 'default' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'fg' } }, template: { metadata: { labels: { app: 'fg' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    } as Deployment & KubeObject;
    await c.create(R.deployments, d, 'default');
    await eventually('2 pods', async () => (await podsOf(c, 'app=fg')).length === 2);
    let ownerSeenWhileRsExisted = false;
    const rsInf = h.informers.get(R.replicasets);
    const dInf = h.informers.get(R.deployments);
    rsInf.addHandlers({ delete: (o) => o.metadata?.labels?.app === 'fg' && dInf.get('default/fg') && (ownerSeenWhileRsExisted = true) });
    await deleteWith(c, be.real, R.deployments, 'fg', 'Foreground');
    await eventually('deployment gone', () => gone(c, R.deployments, 'fg', 'default'));
    t.ok(ownerSeenWhileRsExisted, 'deployment still present when its ReplicaSet was deleted');
    t.equal((await c.list(R.replicasets, { namespace: 'default', labelSelector: 'app=fg' })).items.length, 0);
    await eventually('pods gone', async () => (await podsOf(c, 'app=fg')).length === 0);
  });

  await t.test('a dependent whose owner never existed is collected', async (t) => {
    await c.create(R.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dangling', namespace: 'default', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'nope', uid: '00000000-0000-0000-0000-000000000000' }] } }, 'default');
    await eventually('dangling collected', () => gone(c, R.configmaps, 'dangling', 'default'));
    t.pass();
  });
});

t.test('namespace deletion removes every namespaced object, then the namespace', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const h = await startHarness(be.client, { controllers: ['replicaset', 'deployment', 'garbagecollector', 'namespace'], nodes: ['n1'], tuning: { namespaceRecheckMs: 100 } });
  be.defer(() => h.stop());
  const c = be.client;
  await c.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', ...(be.real ? {} : { finalizers: ['kubernetes'] }) }, spec: { finalizers: ['kubernetes'] } });
  await c.create(R.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'team' }, data: { a: 'b' } }, 'team');
  await c.create(R.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'team' }, data: {} }, 'team');
  await c.create(
    R.deployments,
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'team' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } },
    'team',
  );
  await eventually('pods in team', async () => (await c.list(R.pods, { namespace: 'team' })).items.length === 2);
  await c.delete(R.namespaces, 'team');
  await eventually('namespace gone', () => gone(c, R.namespaces, 'team'), 15_000);
  for (const ref of [R.pods, R.replicasets, R.deployments, R.configmaps, R.secrets]) {
    t.equal((await c.list(ref, { namespace: 'team' })).items.length, 0, `no ${ref.resource} left`);
  }
});
