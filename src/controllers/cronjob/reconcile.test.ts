import t from 'tap';
import type { CronJob, Job } from 'kubernetes-types/batch/v1.js';
import { jobName, missedRuns, parseSchedule, reconcileCronJob } from './reconcile.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
function cj(spec: Partial<CronJob['spec']> = {}, status?: CronJob['status']): CronJob {
  return {
    metadata: { name: 'cj', namespace: 'default', uid: 'cj-uid', creationTimestamp: new Date(T0).toISOString() },
    spec: { schedule: '*/5 * * * *', jobTemplate: { metadata: { labels: { a: 'b' } }, spec: { template: { spec: { containers: [] } } } }, ...spec },
    status,
  };
}
function job(name: string, at: number, state?: 'Complete' | 'Failed'): Job {
  return {
    metadata: { name, namespace: 'default', uid: name, annotations: { 'batch.kubernetes.io/cronjob-scheduled-timestamp': new Date(at).toISOString() }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'cj', uid: 'cj-uid', controller: true }] },
    status: state ? { conditions: [{ type: state, status: 'True' }], completionTime: new Date(at + 1000).toISOString() } : {},
  };
}

t.test('nothing before the first scheduled time; requeue for it', async (t) => {
  const plan = reconcileCronJob(cj(), [], T0 + 60_000);
  t.notOk(plan.createJob);
  t.equal(plan.requeueAfterMs, 4 * 60_000);
});

t.test('fires the most recent missed time once', async (t) => {
  const plan = reconcileCronJob(cj(), [], T0 + 11 * 60_000);
  t.equal(plan.createJob?.metadata?.name, jobName(cj(), T0 + 10 * 60_000));
  t.equal(plan.createJob?.metadata?.name, `cj-${Math.floor((T0 + 600_000) / 60_000)}`);
  t.match(plan.createJob?.metadata, { labels: { a: 'b' }, ownerReferences: [{ kind: 'CronJob', uid: 'cj-uid', controller: true }] });
  t.equal(plan.status.lastScheduleTime, new Date(T0 + 10 * 60_000).toISOString());
  const again = reconcileCronJob(cj({}, plan.status), [job(plan.createJob!.metadata!.name!, T0 + 600_000)], T0 + 11 * 60_000);
  t.notOk(again.createJob, 'already started');
  t.equal(again.status.active?.length, 1);
});

t.test('time zones', async (t) => {
  const c = parseSchedule('0 9 * * *', 'America/New_York');
  t.equal(c.nextRun(new Date(T0))?.toISOString(), '2026-01-01T14:00:00.000Z');
  t.equal(parseSchedule('CRON_TZ=Asia/Tokyo 0 9 * * *').nextRun(new Date(T0))?.toISOString(), '2026-01-02T00:00:00.000Z');
  const plan = reconcileCronJob(cj({ schedule: '0 9 * * *', timeZone: 'America/New_York' }), [], Date.parse('2026-01-01T14:00:30Z'));
  t.ok(plan.createJob);
});

t.test('concurrencyPolicy Forbid skips, Replace deletes the running job', async (t) => {
  const running = job('cj-old', T0);
  const status = { lastScheduleTime: new Date(T0 + 5 * 60_000).toISOString() };
  const forbid = reconcileCronJob(cj({ concurrencyPolicy: 'Forbid' }, status), [running], T0 + 10 * 60_000);
  t.notOk(forbid.createJob);
  t.ok(forbid.events.some((e) => e.reason === 'JobAlreadyActive'));
  const replace = reconcileCronJob(cj({ concurrencyPolicy: 'Replace' }, status), [running], T0 + 10 * 60_000);
  t.ok(replace.createJob);
  t.same(replace.deleteJobs.map((d) => d.name), ['cj-old']);
  const allow = reconcileCronJob(cj({}, status), [running], T0 + 10 * 60_000);
  t.ok(allow.createJob);
  t.same(allow.deleteJobs, []);
});

t.test('startingDeadlineSeconds: a missed run too long ago is skipped', async (t) => {
  const status = { lastScheduleTime: new Date(T0).toISOString() };
  t.notOk(reconcileCronJob(cj({ startingDeadlineSeconds: 30 }, status), [], T0 + 5 * 60_000 + 45_000).createJob);
  t.ok(reconcileCronJob(cj({ startingDeadlineSeconds: 60 }, status), [], T0 + 5 * 60_000 + 45_000).createJob);
});

t.test('suspend creates nothing; too many missed runs warns', async (t) => {
  t.notOk(reconcileCronJob(cj({ suspend: true }), [], T0 + 3600_000).createJob);
  const plan = reconcileCronJob(cj({ schedule: '* * * * *' }), [], T0 + 200 * 60_000);
  t.ok(plan.events.some((e) => e.reason === 'TooManyMissedTimes'));
  t.ok(plan.createJob);
  t.equal(missedRuns(parseSchedule('*/5 * * * *'), T0, T0 + 20 * 60_000).length, 4);
});

t.test('history limits delete the oldest finished jobs', async (t) => {
  const jobs = [job('s1', T0, 'Complete'), job('s2', T0 + 1, 'Complete'), job('s3', T0 + 2, 'Complete'), job('f1', T0, 'Failed'), job('f2', T0 + 1, 'Failed')];
  const plan = reconcileCronJob(cj({ successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 }, { lastScheduleTime: new Date(T0).toISOString() }), jobs, T0 + 60_000);
  t.same(plan.deleteJobs.map((d) => d.name).sort(), ['f1', 's1', 's2']);
  t.equal(plan.status.lastSuccessfulTime, new Date(T0 + 2 + 1000).toISOString());
});

t.test('an unparseable schedule is reported', async (t) => {
  const plan = reconcileCronJob(cj({ schedule: 'every day' }), [], T0);
  t.ok(plan.events.some((e) => e.reason === 'UnparseableSchedule'));
});
