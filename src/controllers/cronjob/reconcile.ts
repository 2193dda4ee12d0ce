import { Cron } from 'croner';
import type { CronJob, CronJobStatus, Job } from 'kubernetes-types/batch/v1.js';
import type { ObjectReference } from 'kubernetes-types/core/v1.js';
import { clone } from '../../api/object.js';
import { controllerRefOf, newControllerRef } from '../replicaset/common.js';
import { jobFinished } from '../job/reconcile.js';

export const SCHEDULED_ANNOTATION = 'batch.kubernetes.io/cronjob-scheduled-timestamp';
const MAX_MISSED = 100;

export interface CronJobPlan {
  createJob?: Job;
  deleteJobs: { name: string; reason: string }[];
  status: CronJobStatus;
  /** ms until the next scheduled time (undefined: nothing scheduled, or unparseable) */
  requeueAfterMs?: number;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

/** A croner schedule for a CronJob's `schedule` and `timeZone` (a `CRON_TZ=`/`TZ=` prefix also works). */
export function parseSchedule(schedule: string, timeZone?: string): Cron {
  let s = schedule.trim();
  let tz = timeZone ?? undefined;
  const m = /^(?:CRON_TZ|TZ)=(\S+)\s+(.*)$/.exec(s);
  if (m) {
    tz = m[1];
    s = m[2];
  }
  return new Cron(s, { paused: true, mode: '5-part', timezone: tz, legacyMode: true });
}

/** Scheduled times in (after, now], at most MAX_MISSED+1 of them, oldest first. */
export function missedRuns(cron: Cron, after: number, now: number): Date[] {
  const out: Date[] = [];
  let t = cron.nextRun(new Date(after));
  while (t && t.getTime() <= now && out.length <= MAX_MISSED) {
    out.push(t);
    t = cron.nextRun(t);
  }
  return out;
}

const jobTime = (j: Job): number => Date.parse(j.metadata?.annotations?.[SCHEDULED_ANNOTATION] ?? j.metadata?.creationTimestamp ?? '') || 0;
const succeededJob = (j: Job): boolean => !!j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');

/** Job name for a scheduled time: `<cronjob>-<minutes since epoch>` (as Kubernetes names them). */
export function jobName(cj: CronJob, scheduled: number): string {
  return `${cj.metadata!.name}-${Math.floor(scheduled / 60_000)}`;
}

function buildJob(cj: CronJob, scheduled: number): Job {
  const t = clone(cj.spec!.jobTemplate) as { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Job['spec'] };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobName(cj, scheduled),
      namespace: cj.metadata!.namespace,
      labels: t.metadata?.labels ?? {},
      annotations: { ...(t.metadata?.annotations ?? {}), [SCHEDULED_ANNOTATION]: new Date(scheduled).toISOString() },
      ownerReferences: [newControllerRef(cj, 'batch/v1', 'CronJob')],
    },
    spec: t.spec,
  };
}

const ref = (j: Job): ObjectReference => ({ apiVersion: 'batch/v1', kind: 'Job', name: j.metadata?.name, namespace: j.metadata?.namespace, uid: j.metadata?.uid, resourceVersion: j.metadata?.resourceVersion });

/** Finished jobs beyond the history limits, oldest first. */
function historyCleanup(cj: CronJob, owned: Job[]): CronJobPlan['deleteJobs'] {
  const out: CronJobPlan['deleteJobs'] = [];
  const trim = (list: Job[], limit: number, reason: string): void => {
    const sorted = [...list].sort((a, b) => jobTime(a) - jobTime(b));
    for (const j of sorted.slice(0, Math.max(0, sorted.length - limit))) out.push({ name: j.metadata!.name!, reason });
  };
  const done = owned.filter((j) => jobFinished(j) && !j.metadata?.deletionTimestamp);
  trim(done.filter(succeededJob), cj.spec?.successfulJobsHistoryLimit ?? 3, 'SuccessfulDelete');
  trim(done.filter((j) => !succeededJob(j)), cj.spec?.failedJobsHistoryLimit ?? 1, 'SuccessfulDelete');
  return out;
}

/**
 * One CronJob sync at `now`: the Job to start for the most recent missed schedule (honouring
 * suspend, startingDeadlineSeconds and concurrencyPolicy), active Jobs to replace, finished Jobs
 * beyond the history limits, and the status.
 */
export function reconcileCronJob(cj: CronJob, jobs: Job[], now: number): CronJobPlan {
  const owned = jobs.filter((j) => controllerRefOf(j)?.uid === cj.metadata?.uid);
  const active = owned.filter((j) => !jobFinished(j) && !j.metadata?.deletionTimestamp);
  const plan: CronJobPlan = { deleteJobs: historyCleanup(cj, owned), status: {}, events: [] };
  const lastSuccess = owned.filter(succeededJob).reduce((m, j) => Math.max(m, Date.parse(j.status?.completionTime ?? '') || 0), 0);
  const prevSuccess = Date.parse(cj.status?.lastSuccessfulTime ?? '') || 0;
  let lastSchedule = cj.status?.lastScheduleTime;
  const status = (): CronJobStatus => ({
    active: active.filter((j) => !plan.deleteJobs.some((d) => d.name === j.metadata?.name)).map(ref),
    ...(lastSchedule ? { lastScheduleTime: lastSchedule } : {}),
    ...(Math.max(lastSuccess, prevSuccess) ? { lastSuccessfulTime: new Date(Math.max(lastSuccess, prevSuccess)).toISOString() } : {}),
  });

  let cron: Cron;
  try {
    cron = parseSchedule(cj.spec?.schedule ?? '', cj.spec?.timeZone);
  } catch (err) {
    plan.events.push({ type: 'Warning', reason: 'UnparseableSchedule', message: `unparseable schedule: ${JSON.stringify(cj.spec?.schedule)}: ${(err as Error).message}` });
    plan.status = status();
    return plan;
  }
  const next = cron.nextRun(new Date(now));
  if (next) plan.requeueAfterMs = next.getTime() - now;
  if (cj.spec?.suspend) {
    plan.status = status();
    return plan;
  }
  let earliest = Date.parse(cj.status?.lastScheduleTime ?? cj.metadata?.creationTimestamp ?? '') || now;
  const sds = cj.spec?.startingDeadlineSeconds;
  if (sds !== undefined && sds !== null) earliest = Math.max(earliest, now - sds * 1000);
  const missed = missedRuns(cron, earliest, now);
  if (missed.length === 0) {
    plan.status = status();
    return plan;
  }
  if (missed.length > MAX_MISSED) plan.events.push({ type: 'Warning', reason: 'TooManyMissedTimes', message: `too many missed start times (> ${MAX_MISSED}). Set or decrease .spec.startingDeadlineSeconds or check clock skew` });
  const scheduled = missed[missed.length - 1].getTime();
  const name = jobName(cj, scheduled);
  if (owned.some((j) => j.metadata?.name === name)) {
    lastSchedule = new Date(scheduled).toISOString();
    plan.status = status();
    return plan;
  }
  const policy = cj.spec?.concurrencyPolicy ?? 'Allow';
  if (policy === 'Forbid' && active.length > 0) {
    plan.events.push({ type: 'Normal', reason: 'JobAlreadyActive', message: 'Not starting job because prior execution is running and concurrency policy is Forbid' });
    plan.status = status();
    return plan;
  }
  if (policy === 'Replace') for (const j of active) plan.deleteJobs.push({ name: j.metadata!.name!, reason: 'SuccessfulDelete' });
  plan.createJob = buildJob(cj, scheduled);
  lastSchedule = new Date(scheduled).toISOString();
  plan.events.push({ type: 'Normal', reason: 'SuccessfulCreate', message: `Created job ${name}` });
  plan.status = status();
  return plan;
}
