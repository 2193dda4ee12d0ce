import t from 'tap';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ReplicaSet } from 'kubernetes-types/apps/v1.js';
import { claimObjects, templateHash } from './common.js';
import { compareForDeletion, reconcileReplicaSet } from './reconcile.js';

const NOW = Date.parse('2026-01-01T00:10:00Z');

function rs(replicas: number, extra: Partial<ReplicaSet['spec']> = {}): ReplicaSet {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'rs-uid', generation: 3 },
    spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i' }] } }, ...extra },
  };
}

function pod(name: string, o: { node?: string; phase?: string; ready?: boolean; readySince?: string; created?: string; owner?: string; labels?: Record<string, string>; restarts?: number } = {}): Pod {
  return {
    metadata: {
      name,
      namespace: 'default',
      labels: o.labels ?? { app: 'web' },
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
      ownerReferences: o.owner === undefined ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }] : o.owner ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'x', uid: o.owner, controller: true }] : [],
    },
    spec: { containers: [], nodeName: o.node },
    status: {
      phase: o.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: o.readySince ?? '2026-01-01T00:01:00Z' }],
      containerStatuses: [{ name: 'c', restartCount: o.restarts ?? 0, ready: !!o.ready, image: 'i', imageID: '' }],
    },
  } as Pod;
}

t.test('scale up creates the missing pods and reports status', async (t) => {
  const plan = reconcileReplicaSet(rs(3), [pod('a', { node: 'n1', ready: true })], NOW);
  t.equal(plan.create, 1 + 1);
  t.same(plan.delete, []);
  t.match(plan.status, { replicas: 1, readyReplicas: 1, availableReplicas: 1, fullyLabeledReplicas: 1, observedGeneration: 3 });
});

t.test('scale down deletes the least valuable pods first', async (t) => {
  const pods = [
    pod('ready-old', { node: 'n1', ready: true, readySince: '2026-01-01T00:01:00Z' }),
    pod('ready-new', { node: 'n1', ready: true, readySince: '2026-01-01T00:05:00Z' }),
    pod('notready', { node: 'n1', ready: false }),
    pod('pending', { node: 'n1', phase: 'Pending' }),
    pod('unscheduled', { phase: 'Pending' }),
    pod('restarty', { node: 'n1', ready: true, readySince: '2026-01-01T00:01:00Z', restarts: 4 }),
  ];
  const plan = reconcileReplicaSet(rs(1), pods, NOW);
  t.same(
    plan.delete.map((p) => p.metadata?.name),
    ['unscheduled', 'pending', 'notready', 'ready-new', 'restarty'],
  );
  t.equal(plan.create, 0);
});

t.test('newer pods go first when otherwise equal', async (t) => {
  const a = pod('a', { node: 'n', ready: true, created: '2026-01-01T00:00:00Z' });
  const b = pod('b', { node: 'n', ready: true, created: '2026-01-01T00:02:00Z' });
  t.ok(compareForDeletion(b, a) < 0);
});

t.test('no creation or deletion while expectations are pending', async (t) => {
  const plan = reconcileReplicaSet(rs(5), [], NOW, false);
  t.equal(plan.create, 0);
  t.equal(plan.status.replicas, 0);
});

t.test('adopts matching orphans, releases non-matching owned pods, ignores others', async (t) => {
  const orphan = pod('orphan', { owner: '', node: 'n' });
  const mislabeled = pod('mislabeled', { labels: { app: 'other' } });
  const foreign = pod('foreign', { owner: 'other-uid' });
  const plan = reconcileReplicaSet(rs(1), [orphan, mislabeled, foreign], NOW);
  t.same(plan.adopt.map((p) => p.metadata?.name), ['orphan']);
  t.same(plan.release.map((p) => p.metadata?.name), ['mislabeled']);
  t.equal(plan.create, 0);
  t.equal(plan.status.replicas, 1);
});

t.test('terminal and deleting pods do not count', async (t) => {
  const done = pod('done', { phase: 'Succeeded' });
  const base = pod('gone', { node: 'n' });
  const gone = { ...base, metadata: { ...base.metadata, deletionTimestamp: '2026-01-01T00:09:00Z' } };
  const plan = reconcileReplicaSet(rs(2), [done, gone], NOW);
  t.equal(plan.create, 2);
  t.equal(plan.status.replicas, 0);
});

t.test('minReadySeconds delays availability', async (t) => {
  const p = pod('a', { node: 'n', ready: true, readySince: new Date(NOW - 5000).toISOString() });
  t.equal(reconcileReplicaSet(rs(1, { minReadySeconds: 10 }), [p], NOW).status.availableReplicas, 0);
  t.equal(reconcileReplicaSet(rs(1, { minReadySeconds: 10 }), [p], NOW + 6000).status.availableReplicas, 1);
});

t.test('claim does not adopt into an owner being deleted', async (t) => {
  const base = rs(1);
  const owner = { ...base, metadata: { ...base.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
  t.same(claimObjects(owner, owner.spec?.selector, [pod('o', { owner: '' })]).adopt, []);
});

t.test('template hash is stable and label-safe', async (t) => {
  const h = templateHash({ b: 1, a: [1, 2] });
  t.equal(h, templateHash({ a: [1, 2], b: 1 }));
  t.not(h, templateHash({ a: [1, 2], b: 1 }, 1));
  t.match(h, /^[bcdfghjklmnpqrstvwxz2456789]{10}$/);
});
