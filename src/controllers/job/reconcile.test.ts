import t from 'tap';
import type { Job } from 'kubernetes-types/batch/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { formatIndexes, reconcileJob } from './reconcile.js';

const NOW = Date.parse('2026-01-01T01:00:00Z');
const tuning = { backoffBaseMs: 10_000, backoffMaxMs: 360_000 };

function job(spec: Partial<NonNullable<Job['spec']>> = {}, status?: Job['status']): Job {
  return { metadata: { name: 'j', namespace: 'default', uid: 'job-uid' }, spec: { template: { spec: { containers: [], restartPolicy: 'Never' } }, ...spec }, status };
}
let n = 0;
function pod(phase: string, o: { index?: number; at?: number } = {}): Pod {
  const at = new Date(o.at ?? NOW - 60_000).toISOString();
  return {
    metadata: { name: `p${n++}`, namespace: 'default', creationTimestamp: at, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'job-uid', controller: true }], annotations: o.index !== undefined ? { 'batch.kubernetes.io/job-completion-index': String(o.index) } : undefined },
    spec: { containers: [] },
    status: { phase, conditions: [{ type: 'Ready', status: phase === 'Running' ? 'True' : 'False', lastTransitionTime: at }] },
  };
}

t.test('starts parallelism pods, bounded by remaining completions', async (t) => {
  let plan = reconcileJob(job({ completions: 5, parallelism: 3 }), [], NOW, tuning);
  t.equal(plan.create.length, 3);
  t.equal(plan.status.startTime, new Date(NOW).toISOString());
  plan = reconcileJob(job({ completions: 5, parallelism: 3 }), [pod('Succeeded'), pod('Succeeded'), pod('Succeeded'), pod('Running')], NOW, tuning);
  t.equal(plan.create.length, 1, '2 remaining, 1 running');
  t.match(plan.status, { succeeded: 3, active: 1, ready: 1 });
});

t.test('completes when enough pods succeeded, with Complete condition', async (t) => {
  const plan = reconcileJob(job({ completions: 2 }), [pod('Succeeded'), pod('Succeeded')], NOW, tuning);
  t.equal(plan.create.length, 0);
  t.ok(plan.status.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'));
  t.equal(plan.status.completionTime, new Date(NOW).toISOString());
});

t.test('work queue job (no completions) completes on first success once none are active', async (t) => {
  t.equal(reconcileJob(job({ parallelism: 2 }), [pod('Succeeded'), pod('Running')], NOW, tuning).create.length, 0);
  t.notOk(reconcileJob(job({ parallelism: 2 }), [pod('Succeeded'), pod('Running')], NOW, tuning).status.conditions?.length);
  t.ok(reconcileJob(job({ parallelism: 2 }), [pod('Succeeded')], NOW, tuning).status.conditions?.some((c) => c.type === 'Complete'));
});

t.test('failed pods are replaced after an exponential backoff', async (t) => {
  const f1 = pod('Failed', { at: NOW - 5_000 });
  let plan = reconcileJob(job({ backoffLimit: 3 }), [f1], NOW, tuning);
  t.equal(plan.create.length, 0, 'within 10 s of the failure');
  t.equal(plan.requeueAfterMs, 5_000);
  plan = reconcileJob(job({ backoffLimit: 3 }), [f1], NOW + 5_000, tuning);
  t.equal(plan.create.length, 1);
  const f2 = pod('Failed', { at: NOW });
  plan = reconcileJob(job({ backoffLimit: 3 }), [f1, f2], NOW + 15_000, tuning);
  t.equal(plan.create.length, 0, 'second failure waits 20 s');
  t.equal(plan.status.failed, 2);
});

t.test('backoffLimit exceeded fails the job and stops active pods', async (t) => {
  const running = pod('Running');
  const plan = reconcileJob(job({ backoffLimit: 1, parallelism: 2 }), [pod('Failed'), pod('Failed'), running], NOW, tuning);
  t.ok(plan.status.conditions?.some((c) => c.type === 'Failed' && c.reason === 'BackoffLimitExceeded'));
  t.same(plan.delete, [running]);
  t.equal(plan.create.length, 0);
});

t.test('activeDeadlineSeconds fails the job; before it, a requeue is planned', async (t) => {
  const start = new Date(NOW - 30_000).toISOString();
  let plan = reconcileJob(job({ activeDeadlineSeconds: 60 }, { startTime: start }), [pod('Running')], NOW, tuning);
  t.equal(plan.requeueAfterMs, 30_000);
  plan = reconcileJob(job({ activeDeadlineSeconds: 20 }, { startTime: start }), [pod('Running')], NOW, tuning);
  t.ok(plan.status.conditions?.some((c) => c.type === 'Failed' && c.reason === 'DeadlineExceeded'));
  t.equal(plan.delete.length, 1);
});

t.test('suspend deletes active pods; resume resets startTime', async (t) => {
  const plan = reconcileJob(job({ suspend: true }, { startTime: new Date(NOW - 1000).toISOString() }), [pod('Running')], NOW, tuning);
  t.equal(plan.delete.length, 1);
  t.ok(plan.status.conditions?.some((c) => c.type === 'Suspended' && c.status === 'True'));
  const resumed = reconcileJob(job({}, plan.status), [], NOW + 5000, tuning);
  t.equal(resumed.create.length, 1);
  t.equal(resumed.status.startTime, new Date(NOW + 5000).toISOString());
  t.ok(resumed.status.conditions?.some((c) => c.type === 'Suspended' && c.status === 'False'));
});

t.test('ttlSecondsAfterFinished deletes the finished job when it expires', async (t) => {
  const done = { completionTime: new Date(NOW - 10_000).toISOString(), conditions: [{ type: 'Complete', status: 'True' }] };
  t.equal(reconcileJob(job({ ttlSecondsAfterFinished: 5 }, done), [], NOW, tuning).deleteJob, true);
  const later = reconcileJob(job({ ttlSecondsAfterFinished: 60 }, done), [], NOW, tuning);
  t.equal(later.deleteJob, false);
  t.equal(later.requeueAfterMs, 50_000);
});

t.test('indexed jobs create the missing indexes and report completedIndexes', async (t) => {
  const plan = reconcileJob(job({ completionMode: 'Indexed', completions: 5, parallelism: 2 }), [pod('Succeeded', { index: 0 }), pod('Succeeded', { index: 2 }), pod('Running', { index: 1 })], NOW, tuning);
  t.same(plan.create, [{ index: 3 }]);
  t.equal(plan.status.completedIndexes, '0,2');
  t.equal(formatIndexes([4, 0, 1, 2, 7, 8]), '0-2,4,7-8');
});
