import t from 'tap';
import type { ControllerRevision, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { planHistory } from './history.js';
import { reconcileStatefulSet } from './reconcile.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const rev = { currentHash: 'r1', currentTemplate: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'v1' }] } }, updateHash: 'r1', updateTemplate: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'v1' }] } } };
const rev2 = { ...rev, updateHash: 'r2', updateTemplate: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'v2' }] } } };

function sts(replicas: number, o: Partial<StatefulSet['spec']> = {}): StatefulSet {
  return {
    metadata: { name: 'db', namespace: 'default', uid: 'sts-uid', generation: 2 },
    spec: { replicas, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: rev.updateTemplate, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: {} }], ...o },
  };
}
function pod(i: number, o: { ready?: boolean; hash?: string; deleting?: boolean; phase?: string } = {}): Pod {
  return {
    metadata: {
      name: `db-${i}`,
      namespace: 'default',
      labels: { app: 'db', 'controller-revision-hash': o.hash ?? 'r1' },
      deletionTimestamp: o.deleting ? '2026-01-01T00:00:00Z' : undefined,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'sts-uid', controller: true }],
    },
    spec: { containers: [], nodeName: 'n' },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}
const names = (l: Pod[]) => l.map((p) => p.metadata?.name);

t.test('OrderedReady creates one ordinal at a time, with its claim', async (t) => {
  let plan = reconcileStatefulSet(sts(3), [], new Set(), rev, NOW);
  t.same(names(plan.createPods), ['db-0']);
  t.same(plan.createPVCs.map((c) => c.metadata?.name), ['data-db-0']);
  const p0 = plan.createPods[0];
  t.match(p0, { metadata: { labels: { 'statefulset.kubernetes.io/pod-name': 'db-0', 'apps.kubernetes.io/pod-index': '0', 'controller-revision-hash': 'r1' } }, spec: { hostname: 'db-0', subdomain: 'db', volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }] } });
  plan = reconcileStatefulSet(sts(3), [pod(0, { ready: false })], new Set(['data-db-0']), rev, NOW);
  t.same(names(plan.createPods), [], 'waits for db-0 to be ready');
  plan = reconcileStatefulSet(sts(3), [pod(0)], new Set(['data-db-0']), rev, NOW);
  t.same(names(plan.createPods), ['db-1']);
  t.same(plan.createPVCs.map((c) => c.metadata?.name), ['data-db-1']);
});

t.test('Parallel creates all missing ordinals at once', async (t) => {
  const plan = reconcileStatefulSet(sts(3, { podManagementPolicy: 'Parallel' }), [pod(1, { ready: false })], new Set(), rev, NOW);
  t.same(names(plan.createPods), ['db-0', 'db-2']);
});

t.test('scale down: highest ordinal first, one at a time, only when the rest is healthy', async (t) => {
  let plan = reconcileStatefulSet(sts(1), [pod(0), pod(1), pod(2)], new Set(), rev, NOW);
  t.same(names(plan.deletePods), ['db-2']);
  plan = reconcileStatefulSet(sts(1), [pod(0), pod(1), pod(2, { deleting: true })], new Set(), rev, NOW);
  t.same(names(plan.deletePods), [], 'waits for db-2 to go');
  plan = reconcileStatefulSet(sts(1), [pod(0, { ready: false }), pod(1)], new Set(), rev, NOW);
  t.same(names(plan.deletePods), [], 'waits for db-0 to be healthy');
});

t.test('rolling update honours the partition, highest ordinal first', async (t) => {
  const s = sts(3, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } });
  let plan = reconcileStatefulSet(s, [pod(0), pod(1), pod(2)], new Set(), rev2, NOW);
  t.same(names(plan.deletePods), ['db-2']);
  plan = reconcileStatefulSet(s, [pod(0), pod(1), pod(2, { hash: 'r2' })], new Set(), rev2, NOW);
  t.same(names(plan.deletePods), ['db-1']);
  plan = reconcileStatefulSet(s, [pod(0), pod(1, { hash: 'r2' }), pod(2, { hash: 'r2' })], new Set(), rev2, NOW);
  t.same(names(plan.deletePods), [], 'db-0 is below the partition');
  t.match(plan.status, { replicas: 3, updatedReplicas: 2, currentReplicas: 1, currentRevision: 'r1', updateRevision: 'r2', readyReplicas: 3, observedGeneration: 2 });
  plan = reconcileStatefulSet(s, [pod(1, { hash: 'r2' }), pod(2, { hash: 'r2' })], new Set(), rev2, NOW);
  t.equal(plan.createPods[0].spec?.containers?.[0]?.image, 'v1', 'below the partition, recreated at the current revision');
});

t.test('all pods updated: current revision catches up; failed pods are replaced; OnDelete waits', async (t) => {
  let plan = reconcileStatefulSet(sts(2), [pod(0, { hash: 'r2' }), pod(1, { hash: 'r2' })], new Set(), rev2, NOW);
  t.equal(plan.status.currentRevision, 'r2');
  plan = reconcileStatefulSet(sts(2), [pod(0), pod(1, { phase: 'Failed' })], new Set(), rev, NOW);
  t.same(names(plan.deletePods), ['db-1']);
  plan = reconcileStatefulSet(sts(2, { updateStrategy: { type: 'OnDelete' } }), [pod(0), pod(1)], new Set(), rev2, NOW);
  t.same(names(plan.deletePods), []);
});

t.test('history: create, reuse with renumbering, truncate unused', async (t) => {
  const owner = { metadata: { name: 'db', namespace: 'default', uid: 'sts-uid' }, spec: { template: rev.updateTemplate, revisionHistoryLimit: 1, selector: { matchLabels: { app: 'db' } } } };
  const first = planHistory(owner, 'apps/v1', 'StatefulSet', [], new Set());
  t.equal(first.create?.revision, 1);
  t.equal(first.create?.metadata?.name, `db-${first.updateHash}`);
  const r1 = { ...first.create!, metadata: { ...first.create!.metadata, uid: 'r1' } } as ControllerRevision;
  const owner2 = { ...owner, spec: { ...owner.spec, template: rev2.updateTemplate } };
  const second = planHistory(owner2, 'apps/v1', 'StatefulSet', [r1], new Set());
  t.equal(second.create?.revision, 2);
  t.same(second.delete, [], 'limit 1 keeps one old revision');
  const r2 = second.create! as ControllerRevision;
  const back = planHistory(owner, 'apps/v1', 'StatefulSet', [r1, r2], new Set());
  t.equal(back.create, undefined);
  t.same(back.renumber, [{ name: r1.metadata!.name, revision: 3 }]);
  const owner3 = { ...owner, spec: { ...owner.spec, template: { spec: { containers: [{ name: 'c', image: 'v3' }] } } } };
  const third = planHistory(owner3, 'apps/v1', 'StatefulSet', [r1, r2], new Set([second.updateHash]));
  t.same(third.delete, [r1.metadata!.name], 'oldest unused revision goes; the in-use one stays');
});
