import type { Job, JobCondition, JobStatus } from 'kubernetes-types/batch/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { claimObjects, controllerRefOf, isPodActive, isPodReady, podCondition } from '../replicaset/common.js';

export const INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';

export interface JobPlan {
  /** pods to create; `index` set for Indexed jobs */
  create: { index?: number }[];
  delete: Pod[];
  adopt: Pod[];
  status: JobStatus;
  /** delete the Job itself (ttlSecondsAfterFinished expired) */
  deleteJob: boolean;
  requeueAfterMs?: number;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

export interface JobTuning {
  /** first delay before a failed pod is replaced, doubling per failure (Kubernetes: 10 s, max 6 min) */
  backoffBaseMs: number;
  backoffMaxMs: number;
}
export const defaultJobTuning: JobTuning = { backoffBaseMs: 10_000, backoffMaxMs: 360_000 };

const finished = (j: Job): JobCondition | undefined => j.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');

export function jobFinished(j: Job): boolean {
  return !!finished(j);
}

/** Pods the Job owns: its controller ref, or (with a selector) claimed by it. */
export function jobPods(job: Job, pods: Pod[]): { owned: Pod[]; adopt: Pod[] } {
  if (job.spec?.selector && Object.keys(job.spec.selector).length) {
    const c = claimObjects(job, job.spec.selector, pods);
    return { owned: c.owned, adopt: c.adopt };
  }
  return { owned: pods.filter((p) => controllerRefOf(p)?.uid === job.metadata?.uid), adopt: [] };
}

const indexOf = (p: Pod): number | undefined => {
  const v = p.metadata?.annotations?.[INDEX_ANNOTATION] ?? p.metadata?.labels?.[INDEX_ANNOTATION];
  return v === undefined || !/^\d+$/.test(v) ? undefined : Number(v);
};

/** "0-2,4" style interval list of sorted indexes. */
export function formatIndexes(idx: number[]): string {
  const s = [...new Set(idx)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; i++) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j;
  }
  return parts.join(',');
}

function cond(type: string, reason: string, message: string, ts: string): JobCondition {
  return { type, status: 'True', reason, message, lastProbeTime: ts, lastTransitionTime: ts };
}

const lastFailure = (failed: Pod[]): number =>
  failed.reduce((m, p) => Math.max(m, Date.parse(podCondition(p, 'Ready')?.lastTransitionTime ?? p.metadata?.creationTimestamp ?? '') || 0), 0);

/** Pods to start or stop so that the wanted number runs (parallelism, remaining completions, backoff). */
function planActive(job: Job, plan: JobPlan, seen: { active: Pod[]; failedPods: Pod[]; doneIdx: number[]; succeeded: number }, now: number, tuning: JobTuning): void {
  const { active, failedPods, doneIdx, succeeded } = seen;
  const indexed = job.spec?.completionMode === 'Indexed';
  const completions = job.spec?.completions ?? undefined;
  const parallelism = job.spec?.parallelism ?? 1;
  let want: number;
  if (indexed) want = Math.min(parallelism, (completions ?? 1) - doneIdx.length);
  else if (completions !== undefined) want = Math.min(parallelism, completions - succeeded);
  else want = succeeded > 0 ? 0 : parallelism;
  if (active.length > want) {
    plan.delete = [...active].sort((a, b) => (Date.parse(b.metadata?.creationTimestamp ?? '') || 0) - (Date.parse(a.metadata?.creationTimestamp ?? '') || 0)).slice(0, active.length - want);
    return;
  }
  if (active.length === want) return;
  const delay = failedPods.length ? Math.min(tuning.backoffBaseMs * 2 ** (failedPods.length - 1), tuning.backoffMaxMs) : 0;
  const wait = failedPods.length ? lastFailure(failedPods) + delay - now : 0;
  if (wait > 0) plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, wait);
  else if (indexed) {
    const busy = new Set([...doneIdx, ...active.map(indexOf).filter((i): i is number => i !== undefined)]);
    for (let i = 0; i < (completions ?? 1) && plan.create.length < want - active.length; i++) if (!busy.has(i)) plan.create.push({ index: i });
  } else for (let i = active.length; i < want; i++) plan.create.push({});
}

/** The finished Job's TTL: delete it, or come back when it expires. */
function planTTL(job: Job, plan: JobPlan, now: number): JobPlan {
  const ttl = job.spec?.ttlSecondsAfterFinished;
  if (ttl === undefined || ttl === null) return plan;
  const at = Date.parse(job.status?.completionTime ?? finished(job)?.lastTransitionTime ?? '') || now;
  if (at + ttl * 1000 <= now) plan.deleteJob = true;
  else plan.requeueAfterMs = at + ttl * 1000 - now;
  return plan;
}

/**
 * One Job sync: pods to create/delete and the status, following completions, parallelism,
 * backoffLimit (with exponential re-creation delay), activeDeadlineSeconds, suspend and
 * ttlSecondsAfterFinished.
 */
export function reconcileJob(job: Job, pods: Pod[], now: number, tuning: JobTuning = defaultJobTuning): JobPlan {
  const { owned, adopt } = jobPods(job, pods);
  const plan: JobPlan = { create: [], delete: [], adopt, status: {}, deleteJob: false, events: [] };
  const ts = new Date(now).toISOString();
  const prev = job.status ?? {};
  const active = owned.filter(isPodActive);
  const succeededPods = owned.filter((p) => p.status?.phase === 'Succeeded');
  const failedPods = owned.filter((p) => p.status?.phase === 'Failed');
  const indexed = job.spec?.completionMode === 'Indexed';
  const completions = job.spec?.completions ?? undefined;
  const succeeded = Math.max(prev.succeeded ?? 0, succeededPods.length);
  const failed = Math.max(prev.failed ?? 0, failedPods.length);
  const doneIdx = indexed ? [...new Set(succeededPods.map(indexOf).filter((i): i is number => i !== undefined && i < (completions ?? 0)))] : [];
  let conditions = [...(prev.conditions ?? [])];
  const status = (): JobStatus => ({
    ...(prev.startTime ? { startTime: prev.startTime } : {}),
    ...(prev.completionTime ? { completionTime: prev.completionTime } : {}),
    active: plan.delete.length ? active.length - plan.delete.length : active.length,
    succeeded,
    failed,
    ready: active.filter((p) => isPodReady(p) && !plan.delete.includes(p)).length,
    ...(indexed ? { completedIndexes: formatIndexes(doneIdx) } : {}),
    conditions,
  });

  if (finished(job)) {
    plan.delete = active;
    plan.status = { ...status(), active: 0, ready: 0 };
    return planTTL(job, plan, now);
  }
  if (job.spec?.suspend) {
    plan.delete = active;
    if (!conditions.some((c) => c.type === 'Suspended' && c.status === 'True')) {
      conditions = [...conditions.filter((c) => c.type !== 'Suspended'), cond('Suspended', 'JobSuspended', 'Job suspended', ts)];
      plan.events.push({ type: 'Normal', reason: 'Suspended', message: 'Job suspended' });
    }
    plan.status = { ...status(), active: 0, ready: 0 };
    delete plan.status.startTime;
    return plan;
  }
  let startTime = prev.startTime;
  if (conditions.some((c) => c.type === 'Suspended' && c.status === 'True')) {
    conditions = conditions.map((c) => (c.type === 'Suspended' ? { ...c, status: 'False', reason: 'JobResumed', message: 'Job resumed', lastTransitionTime: ts } : c));
    startTime = undefined;
    plan.events.push({ type: 'Normal', reason: 'Resumed', message: 'Job resumed' });
  }
  startTime ??= ts;
  prev.startTime = startTime;

  const fail = (reason: string, message: string): JobPlan => {
    conditions = [...conditions, cond('FailureTarget', reason, message, ts), cond('Failed', reason, message, ts)];
    plan.delete = active;
    plan.events.push({ type: 'Warning', reason, message });
    plan.status = { ...status(), active: 0, ready: 0, startTime };
    return planTTL({ ...job, status: plan.status }, plan, now);
  };
  const deadline = job.spec?.activeDeadlineSeconds;
  if (deadline !== undefined && deadline !== null) {
    const end = Date.parse(startTime) + deadline * 1000;
    if (end <= now) return fail('DeadlineExceeded', 'Job was active longer than specified deadline');
    plan.requeueAfterMs = end - now;
  }
  if (failed > (job.spec?.backoffLimit ?? 6)) return fail('BackoffLimitExceeded', 'Job has reached the specified backoff limit');

  const complete = indexed ? doneIdx.length >= (completions ?? 1) : completions !== undefined ? succeeded >= completions : succeeded > 0 && active.length === 0;
  if (complete) {
    conditions = [...conditions, cond('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods', ts), cond('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods', ts)];
    plan.delete = active;
    plan.events.push({ type: 'Normal', reason: 'Completed', message: 'Job completed' });
    prev.completionTime = ts;
    plan.status = { ...status(), active: 0, ready: 0, startTime, completionTime: ts };
    return planTTL({ ...job, status: plan.status }, plan, now);
  }

  planActive(job, plan, { active, failedPods, doneIdx, succeeded }, now, tuning);
  plan.status = { ...status(), startTime };
  return plan;
}
