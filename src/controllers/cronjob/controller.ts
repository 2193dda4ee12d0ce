import type { CronJob as K8sCronJob, Job as K8sJob } from 'kubernetes-types/batch/v1.js';
import { objectKey, splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { controllerRefOf, errCode, ignoreNotFound, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { statusChanged } from '../replicaset/reconcile.js';
import { reconcileCronJob } from './reconcile.js';

const log = componentLogger('cronjob-controller');
type CronJob = Kube<K8sCronJob>;
type Job = Kube<K8sJob>;

/** `resyncMs`: every CronJob is re-checked this often (the clock may be moved by tests). */
export function startCronJobController(ctx: ControllerContext, opts: { resyncMs?: number } = {}): { stop(): void } {
  const cjInf = ctx.informers.get<CronJob>(R.cronjobs);
  const jobInf = ctx.informers.get<Job>(R.jobs);
  jobInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('cronjob-controller');
  const c = new Controller({ name: 'cronjob', log });

  const sync = async (key: string): Promise<void> => {
    const cj = cjInf.get(key);
    if (!cj || cj.metadata?.deletionTimestamp) return;
    const ns = splitKey(key).namespace ?? 'default';
    const plan = reconcileCronJob(cj, jobInf.byIndex('namespace', ns), ctx.clock.now());
    for (const d of plan.deleteJobs) {
      await ignoreNotFound(() => ctx.client.delete(R.jobs, d.name, ns, { propagationPolicy: 'Background' }));
      recorder.event(cj, 'Normal', d.reason, `Deleted job ${d.name}`);
    }
    if (plan.createJob) {
      try {
        const job = await ctx.client.create(R.jobs, plan.createJob as Job, ns);
        plan.status.active = [...(plan.status.active ?? []), { apiVersion: 'batch/v1', kind: 'Job', name: job.metadata?.name, namespace: ns, uid: job.metadata?.uid, resourceVersion: job.metadata?.resourceVersion }];
      } catch (err) {
        if (errCode(err) !== 409) {
          recorder.event(cj, 'Warning', 'FailedCreate', `Error creating job: ${(err as Error).message}`);
          throw err;
        }
      }
    }
    for (const e of plan.events) recorder.event(cj, e.type, e.reason, e.message);
    if (statusChanged(cj.status, plan.status)) {
      const patch = { status: { ...plan.status, active: plan.status.active?.length ? plan.status.active : null } };
      await ignoreNotFound(() => ctx.client.patch(R.cronjobs, cj.metadata!.name!, patch, { namespace: ns, type: 'merge', subresource: 'status' }));
    }
    if (plan.requeueAfterMs !== undefined) c.queue.addAfter(key, Math.min(plan.requeueAfterMs + 5, 2 ** 31 - 1));
  };

  cjInf.addHandlers(c.handlers());
  jobInf.addHandlers(
    c.handlers<Job>((j) => {
      const ref = controllerRefOf(j);
      return ref?.kind === 'CronJob' ? `${j.metadata?.namespace}/${ref.name}` : undefined;
    }),
  );
  const timer = setInterval(() => {
    for (const cj of cjInf.list()) c.enqueue(objectKey(cj));
  }, opts.resyncMs ?? 10_000);
  timer.unref();
  return c.run({ informers: [cjInf, jobInf], workers: ctx.options.workers, sync, onStop: () => clearInterval(timer) });
}
