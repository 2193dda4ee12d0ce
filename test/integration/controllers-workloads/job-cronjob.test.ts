import t from 'tap';
import type { CronJob, Job } from 'kubernetes-types/batch/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { startBackend } from './backend.js';
import { FakeClock, eventually, startHarness } from './harness.js';

type J = Job & KubeObject;

function job(name: string, spec: Partial<Job['spec']>): J {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: { template: { metadata: { labels: { job: name } }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } }, ...spec },
  } as J;
}

t.test('job: failed pods are retried until success; backoffLimit fails the job', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  // each job's first two pods fail, the rest succeed
  const seen = new Map<string, string[]>();
  const fate = (p: Pod) => {
    const j = p.metadata?.labels?.['job-name'] ?? '';
    const list = seen.get(j) ?? [];
    if (!list.includes(p.metadata!.name!)) list.push(p.metadata!.name!);
    seen.set(j, list);
    return list.indexOf(p.metadata!.name!) < 2 ? 'fail' : 'succeed';
  };
  const h = await startHarness(be.client, { controllers: ['job'], nodes: ['n1'], fate, tuning: { jobBackoffBaseMs: 20 } });
  be.defer(() => h.stop());
  const c = be.client;

  await c.create(R.jobs, job('retry', { backoffLimit: 3, completions: 2 }), 'default');
  const done = await eventually('job complete', async () => {
    const j = await c.get<J>(R.jobs, 'retry', 'default');
    return j.status?.conditions?.some((x) => x.type === 'Complete' && x.status === 'True') && j;
  });
  t.equal(done.status?.failed, 2);
  t.equal(done.status?.succeeded, 2);
  t.ok(done.status?.completionTime);
  const pods = (await c.list<Pod & KubeObject>(R.pods, { namespace: 'default', labelSelector: 'job-name=retry' })).items;
  t.equal(pods.length, 4, '2 failed + 2 succeeded pods');

  await c.create(R.jobs, job('doomed', { backoffLimit: 1 }), 'default');
  const failed = await eventually('job failed', async () => {
    const j = await c.get<J>(R.jobs, 'doomed', 'default');
    return j.status?.conditions?.some((x) => x.type === 'Failed' && x.reason === 'BackoffLimitExceeded') && j;
  });
  t.equal(failed.status?.failed, 2);
  t.ok(h.events.events.some((e) => e.key === 'default/doomed' && e.reason === 'BackoffLimitExceeded'));
});

t.test('cronjob: fires on schedule with an injected clock, keeps history limits', async (t) => {
  const be = await startBackend();
  t.teardown(() => be.close());
  const clock = new FakeClock(Date.parse('2026-03-01T10:02:00Z'));
  const h = await startHarness(be.client, { controllers: ['cronjob', 'job'], nodes: ['n1'], fate: () => 'succeed', clock, tuning: { cronResyncMs: 30 } });
  be.defer(() => h.stop());
  const c = be.client;
  // creationTimestamp is real time; start counting from an explicit lastScheduleTime
  const cj = await c.create(
    R.cronjobs,
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'tick', namespace: 'default' },
      spec: { schedule: '*/5 * * * *', timeZone: 'Etc/UTC', successfulJobsHistoryLimit: 2, jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } } } },
    } as CronJob & KubeObject,
    'default',
  );
  await c.patch(R.cronjobs, 'tick', { status: { lastScheduleTime: '2026-03-01T10:00:00Z' } }, { namespace: 'default', type: 'merge', subresource: 'status' });
  const jobs = async (): Promise<J[]> => (await c.list<J>(R.jobs, { namespace: 'default' })).items.filter((j) => j.metadata?.ownerReferences?.[0]?.uid === cj.metadata?.uid);
  await new Promise((r) => setTimeout(r, 150));
  t.equal((await jobs()).length, 0, 'nothing before 10:05');

  for (const minute of [5, 10, 15]) {
    clock.t = Date.parse(`2026-03-01T10:${String(minute).padStart(2, '0')}:01Z`);
    const name = `tick-${Math.floor(Date.parse(`2026-03-01T10:${String(minute).padStart(2, '0')}:00Z`) / 60_000)}`;
    await eventually(`job ${name}`, async () => (await jobs()).some((j) => j.metadata?.name === name));
    await eventually(`job ${name} complete`, async () => (await c.get<J>(R.jobs, name, 'default')).status?.conditions?.some((x) => x.type === 'Complete'));
  }
  await eventually('history trimmed to 2', async () => (await jobs()).length === 2);
  const st = await eventually('status', async () => {
    const cur = await c.get<CronJob & KubeObject>(R.cronjobs, 'tick', 'default');
    return cur.status?.lastSuccessfulTime && cur;
  });
  t.equal(st.status?.lastScheduleTime, '2026-03-01T10:15:00.000Z');
  t.same((await jobs()).map((j) => j.metadata?.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp']).sort(), ['2026-03-01T10:10:00.000Z', '2026-03-01T10:15:00.000Z']);
});
