import type { Job as K8sJob } from 'kubernetes-types/batch/v1.js';
import type { Pod as K8sPod } from 'kubernetes-types/core/v1.js';
import { objectKey, splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { Expectations, adoptPatch, ignoreNotFound, newControllerRef, podFromTemplate, runBounded, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { podHandlers } from '../replicaset/controller.js';
import { statusChanged } from '../replicaset/reconcile.js';
import { INDEX_ANNOTATION, defaultJobTuning, reconcileJob, type JobTuning } from './reconcile.js';

const log = componentLogger('job-controller');
type Job = Kube<K8sJob>;
type Pod = Kube<K8sPod>;

/** A Job's pod: the template plus the job labels (and, for Indexed jobs, the completion index). */
export function jobPod(job: K8sJob, index?: number): Pod {
  const name = job.metadata!.name!;
  const uid = job.metadata!.uid!;
  const labels: Record<string, string> = { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': name, 'controller-uid': uid, 'job-name': name };
  if (index !== undefined) labels[INDEX_ANNOTATION] = String(index);
  const pod = podFromTemplate(job.spec?.template, newControllerRef(job, 'batch/v1', 'Job'), job.metadata!.namespace!, { generateName: index === undefined ? `${name}-` : `${name}-${index}-` }, labels);
  if (index !== undefined) {
    pod.metadata!.annotations = { ...(pod.metadata!.annotations ?? {}), [INDEX_ANNOTATION]: String(index) };
    const spec = pod.spec as { hostname?: string; subdomain?: string; containers: { env?: { name: string; value?: string }[] }[] };
    spec.hostname = `${name}-${index}`;
    for (const c of spec.containers) c.env = [...(c.env ?? []).filter((e) => e.name !== 'JOB_COMPLETION_INDEX'), { name: 'JOB_COMPLETION_INDEX', value: String(index) }];
  }
  return pod;
}

export function startJobController(ctx: ControllerContext, opts: Partial<JobTuning> = {}): { stop(): void } {
  const tuning: JobTuning = { ...defaultJobTuning, ...opts };
  const jobInf = ctx.informers.get<Job>(R.jobs);
  const podInf = ctx.informers.get<Pod>(R.pods);
  podInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('job-controller');
  const expectations = new Expectations();
  const c = new Controller({ name: 'job', log });

  const sync = async (key: string): Promise<void> => {
    const job = jobInf.get(key);
    if (!job) {
      expectations.forget(key);
      return;
    }
    if (job.metadata?.deletionTimestamp) return;
    if (!expectations.satisfied(key)) return;
    const ns = splitKey(key).namespace ?? 'default';
    const plan = reconcileJob(job, podInf.byIndex('namespace', ns), ctx.clock.now(), tuning);
    const ref = newControllerRef(job, 'batch/v1', 'Job');
    for (const p of plan.adopt) await ignoreNotFound(() => ctx.client.patch(R.pods, p.metadata!.name!, adoptPatch(p, ref), { namespace: ns, type: 'merge' }));
    if (plan.deleteJob) {
      await ignoreNotFound(() => ctx.client.delete(R.jobs, job.metadata!.name!, ns, { propagationPolicy: 'Background', preconditions: { uid: job.metadata?.uid } }));
      log.info({ job: key }, 'deleted finished job after its TTL');
      return;
    }
    expectations.expect(key, plan.create.length, plan.delete.map((p) => objectKey(p)));
    const createErrors = await runBounded(plan.create, 20, async ({ index }) => {
      try {
        await ctx.client.create(R.pods, jobPod(job, index), ns);
      } catch (err) {
        expectations.creationFailed(key);
        throw err;
      }
    });
    if (plan.create.length > createErrors.length) recorder.event(job, 'Normal', 'SuccessfulCreate', `Created ${plan.create.length - createErrors.length} pod(s)`);
    if (createErrors.length) recorder.event(job, 'Warning', 'FailedCreate', `Error creating: ${String((createErrors[0] as Error).message ?? createErrors[0])}`);
    const deleteErrors = await runBounded(plan.delete, 20, async (p) => {
      try {
        await ignoreNotFound(() => ctx.client.delete(R.pods, p.metadata!.name!, ns));
      } catch (err) {
        expectations.deletionFailed(key, objectKey(p));
        throw err;
      }
    });
    if (plan.delete.length) recorder.event(job, 'Normal', 'SuccessfulDelete', `Deleted pod(s): ${plan.delete.map((p) => p.metadata?.name).join(', ')}`);
    for (const e of plan.events) recorder.event(job, e.type, e.reason, e.message);
    if (statusChanged(job.status, plan.status)) {
      await ignoreNotFound(() => ctx.client.patch(R.jobs, job.metadata!.name!, { status: plan.status }, { namespace: ns, type: 'merge', subresource: 'status' }));
    }
    if (plan.requeueAfterMs !== undefined) c.queue.addAfter(key, plan.requeueAfterMs + 5);
    const err = createErrors[0] ?? deleteErrors[0];
    if (err) throw err;
  };

  jobInf.addHandlers(c.handlers());
  podInf.addHandlers(podHandlers('Job', jobInf, c.enqueue, expectations));
  return c.run({ informers: [jobInf, podInf], workers: ctx.options.workers, sync });
}
