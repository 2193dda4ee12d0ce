import t from 'tap';
import type { Deployment, ReplicaSet } from 'kubernetes-types/apps/v1.js';
import { templateHash } from '../replicaset/common.js';
import { findNewRS, reconcileDeployment } from './reconcile.js';
import { maxSurge, maxUnavailable, scaledValue } from './rollout.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const tmpl = (image: string) => ({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image }] } });

function dep(image: string, o: { replicas?: number; surge?: number | string; unavail?: number | string; recreate?: boolean; paused?: boolean; generation?: number; status?: Deployment['status']; annotations?: Record<string, string> } = {}): Deployment {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'd-uid', generation: o.generation ?? 1, annotations: o.annotations },
    spec: {
      replicas: o.replicas ?? 3,
      paused: o.paused,
      selector: { matchLabels: { app: 'web' } },
      strategy: o.recreate ? { type: 'Recreate' } : { type: 'RollingUpdate', rollingUpdate: { maxSurge: o.surge ?? 1, maxUnavailable: o.unavail ?? 0 } },
      template: tmpl(image),
    },
    status: o.status,
  };
}

function rs(image: string, revision: number, spec: number, available = spec, created = `2026-01-01T00:0${revision}:00Z`, desired = '3'): ReplicaSet {
  const hash = templateHash(tmpl(image));
  return {
    metadata: {
      name: `web-${hash}`,
      namespace: 'default',
      uid: `rs-${revision}`,
      creationTimestamp: created,
      annotations: { 'deployment.kubernetes.io/revision': String(revision), 'deployment.kubernetes.io/desired-replicas': desired, 'deployment.kubernetes.io/max-replicas': '4' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd-uid', controller: true }],
    },
    spec: { replicas: spec, selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } }, template: { metadata: { labels: { app: 'web', 'pod-template-hash': hash } }, spec: tmpl(image).spec } },
    status: { replicas: spec, readyReplicas: available, availableReplicas: available },
  };
}

t.test('first sync creates revision 1 with the template hash', async (t) => {
  const plan = reconcileDeployment(dep('img:1'), [], [], NOW);
  const created = plan.createRS!;
  const hash = templateHash(tmpl('img:1'));
  t.equal(created.metadata?.name, `web-${hash}`);
  t.equal(created.spec?.replicas, 3);
  t.equal(created.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  t.same(created.spec?.selector?.matchLabels, { app: 'web', 'pod-template-hash': hash });
  t.equal(created.spec?.template?.metadata?.labels?.['pod-template-hash'], hash);
  t.match(created.metadata?.ownerReferences, [{ kind: 'Deployment', uid: 'd-uid', controller: true, blockOwnerDeletion: true }]);
  t.same(plan.annotations, { 'deployment.kubernetes.io/revision': '1' });
  t.match(plan.status.conditions?.find((c) => c.type === 'Progressing'), { status: 'True', reason: 'NewReplicaSetCreated' });
});

t.test('template change: new RS at revision 2 starts at maxSurge', async (t) => {
  const plan = reconcileDeployment(dep('img:2'), [rs('img:1', 1, 3)], [], NOW);
  t.equal(plan.createRS?.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
  t.equal(plan.createRS?.spec?.replicas, 1, '3 + surge 1 - 3 existing');
});

t.test('rolling steps: scale old down by what is available beyond the minimum', async (t) => {
  // new RS has 1 available: total 4 = 3 old + 1 new, min available 3 → old may lose 1
  const plan = reconcileDeployment(dep('img:2'), [rs('img:1', 1, 3), rs('img:2', 2, 1, 1, '2026-01-01T00:05:00Z')], [], NOW);
  t.same(plan.updateRS.filter((c) => c.replicas !== undefined), [{ name: `web-${templateHash(tmpl('img:1'))}`, replicas: 2 }]);
  // new RS not yet available: nothing may go
  const wait = reconcileDeployment(dep('img:2'), [rs('img:1', 1, 3), rs('img:2', 2, 1, 0, '2026-01-01T00:05:00Z')], [], NOW);
  t.same(wait.updateRS.filter((c) => c.replicas !== undefined), []);
  // old 2, new 1 (available): new may grow to 2
  const grow = reconcileDeployment(dep('img:2'), [rs('img:1', 1, 2), rs('img:2', 2, 1, 1, '2026-01-01T00:05:00Z')], [], NOW);
  t.same(grow.updateRS.filter((c) => c.replicas !== undefined), [{ name: `web-${templateHash(tmpl('img:2'))}`, replicas: 2 }]);
});

t.test('unhealthy old replicas are removed first', async (t) => {
  // total 4, min available 2, new RS healthy: budget 2 goes to the 2 unavailable old pods
  const plan = reconcileDeployment(dep('img:2', { unavail: 1 }), [rs('img:1', 1, 3, 1), rs('img:2', 2, 1, 1, '2026-01-01T00:05:00Z')], [], NOW);
  const old = plan.updateRS.find((c) => c.replicas !== undefined);
  t.equal(old?.replicas, 1, 'the 2 unavailable old pods go');
  const none = reconcileDeployment(dep('img:2', { unavail: 0 }), [rs('img:1', 1, 3, 1), rs('img:2', 2, 1, 0, '2026-01-01T00:05:00Z')], [], NOW);
  t.same(none.updateRS.filter((c) => c.replicas !== undefined), [], 'no budget while the new RS is unavailable');
});

t.test('complete rollout: status, conditions, cleanup beyond revisionHistoryLimit', async (t) => {
  const d = dep('img:3', { status: { conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', lastUpdateTime: '2025-12-31T23:59:00Z', lastTransitionTime: '2025-12-31T23:59:00Z' }] } });
  d.spec!.revisionHistoryLimit = 1;
  const plan = reconcileDeployment(d, [rs('img:1', 1, 0, 0), rs('img:2', 2, 0, 0), rs('img:3', 3, 3, 3, '2026-01-01T00:05:00Z')], [], NOW);
  t.same(plan.deleteRS, [`web-${templateHash(tmpl('img:1'))}`]);
  t.match(plan.status, { replicas: 3, updatedReplicas: 3, availableReplicas: 3, readyReplicas: 3, unavailableReplicas: 0, observedGeneration: 1 });
  const prog = plan.status.conditions?.find((c) => c.type === 'Progressing');
  t.match(prog, { status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "web-${templateHash(tmpl('img:3'))}" has successfully progressed.` });
  t.match(plan.status.conditions?.find((c) => c.type === 'Available'), { status: 'True', reason: 'MinimumReplicasAvailable' });
});

t.test('rollback: the old RS matching the template becomes the newest revision', async (t) => {
  const plan = reconcileDeployment(dep('img:1'), [rs('img:1', 1, 0, 0), rs('img:2', 2, 3, 3, '2026-01-01T00:05:00Z')], [], NOW);
  t.equal(plan.createRS, undefined);
  const bump = plan.updateRS.find((c) => c.annotations?.['deployment.kubernetes.io/revision']);
  t.same(bump?.annotations, { 'deployment.kubernetes.io/revision': '3', 'deployment.kubernetes.io/revision-history': '1' });
  t.same(plan.annotations, { 'deployment.kubernetes.io/revision': '3' });
  t.match(plan.status.conditions?.find((c) => c.type === 'Progressing'), { reason: 'FoundNewReplicaSet' });
  t.equal(findNewRS(dep('img:1'), [rs('img:1', 1, 0), rs('img:2', 2, 3)])?.metadata?.uid, 'rs-1');
});

t.test('progress deadline: no progress past the deadline sets ProgressDeadlineExceeded', async (t) => {
  const d = dep('img:2', { status: { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3, conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', lastUpdateTime: '2025-12-31T23:00:00Z', lastTransitionTime: '2025-12-31T23:00:00Z' }] } });
  d.spec!.progressDeadlineSeconds = 60;
  const all = [rs('img:1', 1, 3), { ...rs('img:2', 2, 1, 0, '2026-01-01T00:05:00Z'), status: { replicas: 1, readyReplicas: 0, availableReplicas: 0 } }];
  const plan = reconcileDeployment(d, all, [], NOW);
  t.match(plan.status.conditions?.find((c) => c.type === 'Progressing'), { status: 'False', reason: 'ProgressDeadlineExceeded' });
  t.ok(plan.events.some((e) => e.reason === 'ProgressDeadlineExceeded'));
  d.spec!.progressDeadlineSeconds = 7200;
  const before = reconcileDeployment(d, all, [], NOW);
  t.equal(before.requeueAfterMs, 3600_000 + 10);
});

t.test('Recreate: old scaled to 0 first; the new RS waits for old pods to be gone', async (t) => {
  const d = dep('img:2', { recreate: true });
  const p1 = reconcileDeployment(d, [rs('img:1', 1, 3)], [], NOW);
  t.same(p1.updateRS.filter((c) => c.replicas !== undefined).map((c) => c.replicas), [0]);
  t.equal(p1.createRS, undefined);
  const oldPod = { metadata: { name: 'x', namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'a', uid: 'rs-1', controller: true }] }, status: { phase: 'Running' } };
  const p2 = reconcileDeployment(d, [rs('img:1', 1, 0, 0)], [oldPod], NOW);
  t.equal(p2.createRS, undefined, 'waits for the old pod');
  const p3 = reconcileDeployment(d, [rs('img:1', 1, 0, 0)], [], NOW);
  t.equal(p3.createRS?.spec?.replicas, 3);
});

t.test('paused: scaling only, no new ReplicaSet', async (t) => {
  const plan = reconcileDeployment(dep('img:2', { paused: true, replicas: 5 }), [rs('img:1', 1, 3)], [], NOW);
  t.equal(plan.createRS, undefined);
  t.same(plan.updateRS.filter((c) => c.replicas !== undefined).map((c) => c.replicas), [5]);
  t.match(plan.status.conditions?.find((c) => c.type === 'Progressing'), { status: 'Unknown', reason: 'DeploymentPaused' });
});

t.test('scaling event mid-rollout is proportional across active ReplicaSets', async (t) => {
  // 2 old + 2 new (desired was 3, surge 1 → 4), scale to 6 → allowed 7: +3 split by size
  const d = dep('img:2', { replicas: 6 });
  const plan = reconcileDeployment(d, [rs('img:1', 1, 2), rs('img:2', 2, 2, 2, '2026-01-01T00:05:00Z')], [], NOW);
  const sizes = Object.fromEntries(plan.updateRS.filter((c) => c.replicas !== undefined).map((c) => [c.name, c.replicas]));
  t.same(sizes, { [`web-${templateHash(tmpl('img:2'))}`]: 4, [`web-${templateHash(tmpl('img:1'))}`]: 3 }, 'leftover goes to the newer RS');
  t.equal(plan.createRS, undefined);
});

t.test('surge/unavailable arithmetic', async (t) => {
  t.equal(scaledValue('25%', 10, true, '25%'), 3);
  t.equal(scaledValue('25%', 10, false, '25%'), 2);
  t.equal(maxUnavailable(dep('x', { surge: 0, unavail: 0 })), 1, 'both zero: unavailable 1');
  t.equal(maxSurge(dep('x', { surge: '50%', replicas: 3 })), 2);
  t.equal(maxUnavailable(dep('x', { recreate: true })), 0);
});
