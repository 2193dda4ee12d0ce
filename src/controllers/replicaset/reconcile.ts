import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ReplicaSet, ReplicaSetStatus } from 'kubernetes-types/apps/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { claimObjects, isPodActive, isPodAvailable, isPodReady, podCondition, stableJson } from './common.js';

export interface ReplicaSetPlan {
  adopt: Pod[];
  release: Pod[];
  /** number of pods to create from the template */
  create: number;
  /** pods to delete, least valuable first */
  delete: Pod[];
  status: ReplicaSetStatus;
}

const phaseRank: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Orders pods from least to most valuable to keep (the ReplicaSet's ActivePods ordering):
 * unassigned < assigned; Pending < Unknown < Running; not ready < ready; ready more recently first;
 * more restarts first; newer first.
 */
export function compareForDeletion(a: Pod, b: Pod): number {
  const assigned = (p: Pod): number => (p.spec?.nodeName ? 1 : 0);
  if (assigned(a) !== assigned(b)) return assigned(a) - assigned(b);
  const pr = (p: Pod): number => phaseRank[p.status?.phase ?? 'Pending'] ?? 0;
  if (pr(a) !== pr(b)) return pr(a) - pr(b);
  const rd = (p: Pod): number => (isPodReady(p) ? 1 : 0);
  if (rd(a) !== rd(b)) return rd(a) - rd(b);
  if (isPodReady(a) && isPodReady(b)) {
    const ta = Date.parse(podCondition(a, 'Ready')?.lastTransitionTime ?? '') || 0;
    const tb = Date.parse(podCondition(b, 'Ready')?.lastTransitionTime ?? '') || 0;
    if (ta !== tb) return tb - ta;
  }
  const restarts = (p: Pod): number => Math.max(0, ...(p.status?.containerStatuses ?? []).map((c) => c.restartCount ?? 0));
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const ca = Date.parse(a.metadata?.creationTimestamp ?? '') || 0;
  const cb = Date.parse(b.metadata?.creationTimestamp ?? '') || 0;
  if (ca !== cb) return cb - ca;
  return (b.metadata?.name ?? '').localeCompare(a.metadata?.name ?? '');
}

/** Status of a ReplicaSet from the pods it owns. */
export function replicaSetStatus(rs: ReplicaSet, owned: Pod[], now: number): ReplicaSetStatus {
  const active = owned.filter(isPodActive);
  const template = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  const status: ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: active.filter((p) => Object.entries(template).every(([k, v]) => p.metadata?.labels?.[k] === v)).length,
    readyReplicas: active.filter(isPodReady).length,
    availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
    observedGeneration: rs.metadata?.generation,
  };
  const failure = rs.status?.conditions?.filter((c) => c.type === 'ReplicaFailure');
  return failure?.length ? { ...status, conditions: failure } : status;
}

/**
 * The desired writes of one ReplicaSet sync: which pods to adopt/release, how many to create and
 * which to delete, and the status to write. `manage` is false while creations/deletions the
 * controller issued earlier are not yet visible (then only status is computed).
 */
export function reconcileReplicaSet(rs: ReplicaSet, pods: Pod[], now: number, manage = true): ReplicaSetPlan {
  const selector = rs.spec?.selector;
  const candidates = pods.filter((p) => p.metadata?.namespace === rs.metadata?.namespace);
  const claim = claimObjects(rs, selector, candidates);
  const owned = claim.owned.filter((p) => labelSelectorMatches(selector, p.metadata?.labels) || p.metadata?.deletionTimestamp);
  const active = owned.filter(isPodActive);
  const want = rs.spec?.replicas ?? 1;
  let create = 0;
  let del: Pod[] = [];
  if (manage && !rs.metadata?.deletionTimestamp) {
    if (active.length < want) create = want - active.length;
    else if (active.length > want) del = [...active].sort(compareForDeletion).slice(0, active.length - want);
  }
  return { adopt: claim.adopt, release: claim.release, create, delete: del, status: replicaSetStatus(rs, owned, now) };
}

/** Whether two statuses differ in what the controller writes. */
export function statusChanged(a: object | undefined, b: object): boolean {
  return stableJson(a ?? {}) !== stableJson(b);
}
