import t from 'tap';
import type { ReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { startBackend } from './backend.js';
import { eventually, startHarness, type PodFate } from './harness.js';

type P = Pod & KubeObject;

t.test('replicaset: adopts matching orphans, scales down the least valuable pods first', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const fate = (p: Pod): PodFate => (p.metadata?.labels?.fate as PodFate | undefined) ?? 'run';
  const h = await startHarness(be.client, { controllers: ['replicaset'], nodes: ['n1', 'n2'], fate });
  be.defer(() => h.stop());
  const c = be.client;
  const rs = await c.create(
    R.replicasets,
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    } as ReplicaSet & KubeObject,
    'default',
  );
  const live = async (): Promise<P[]> => (await c.list<P>(R.pods, { namespace: 'default', labelSelector: 'app=web' })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const ready = await eventually('3 ready pods', async () => {
    const s = await c.get<ReplicaSet & KubeObject>(R.replicasets, 'web', 'default');
    return s.status?.readyReplicas === 3 && s.status.replicas === 3 && live();
  });
  const original = ready.map((p) => p.metadata!.name!).sort();

  // two orphans that match the selector: one never scheduled, one running but not ready
  for (const [name, f] of [['unscheduled', 'pending'], ['notready', 'notready']]) {
    await c.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: 'web', fate: f } }, spec: { containers: [{ name: 'c', image: 'i' }] } } as P, 'default');
  }
  await eventually('orphans gone again', async () => {
    const names = (await live()).map((p) => p.metadata!.name!).sort();
    return names.join() === original.join();
  });
  t.pass('the 3 ready pods survived; the unscheduled and not-ready orphans were adopted and deleted');
  const deletes = h.events.events.filter((e) => e.reason === 'SuccessfulDelete').map((e) => e.message);
  t.ok(deletes.some((m) => /unscheduled/.test(m)) && deletes.some((m) => /notready/.test(m)), 'both orphans deleted by the ReplicaSet');
  t.notOk(deletes.some((m) => original.some((n) => m.includes(n))), 'no ready pod deleted');

  // releasing: a pod relabelled out of the selector loses its owner reference and is replaced
  await c.patch(R.pods, original[0], { metadata: { labels: { app: 'debug' } } }, { namespace: 'default', type: 'merge' });
  const released = await eventually('released', async () => {
    const p = await c.get<P>(R.pods, original[0], 'default');
    return !p.metadata?.ownerReferences?.some((r) => r.uid === rs.metadata?.uid) && p;
  });
  t.ok(released);
  await eventually('replacement', async () => (await live()).length === 3);

  // scale down to 1: the pods that became ready last go first
  await c.patch(R.replicasets, 'web', { spec: { replicas: 1 } }, { namespace: 'default', type: 'merge' });
  await eventually('scaled to 1', async () => (await live()).length === 1);
});
