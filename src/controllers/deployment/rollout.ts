/**
 * Pure helpers of the deployment controller: revisions, template matching, surge/unavailable
 * arithmetic and status/conditions (the pieces of k8s pkg/controller/deployment/util).
 */
import type { Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { PodTemplateSpec } from 'kubernetes-types/core/v1.js';
import { clone } from '../../api/object.js';
import { stableJson } from '../replicaset/common.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
export const HASH_LABEL = 'pod-template-hash';

/** Annotations of a Deployment never copied to its ReplicaSets. */
const SKIP_COPY = new Set([REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, 'kubectl.kubernetes.io/last-applied-configuration']);

export function revisionOf(rs: ReplicaSet): number {
  const v = Number(rs.metadata?.annotations?.[REVISION] ?? '0');
  return Number.isFinite(v) ? v : 0;
}

export function maxRevision(list: ReplicaSet[]): number {
  return list.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

/** Templates equal once the pod-template-hash label is ignored. */
export function equalIgnoreHash(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean {
  const strip = (t: PodTemplateSpec | undefined): unknown => {
    const c = clone(t ?? {}) as { metadata?: { labels?: Record<string, string> } };
    if (c.metadata?.labels) {
      delete c.metadata.labels[HASH_LABEL];
      if (Object.keys(c.metadata.labels).length === 0) delete c.metadata.labels;
    }
    if (c.metadata && Object.keys(c.metadata).length === 0) delete c.metadata;
    return c;
  };
  return stableJson(strip(a)) === stableJson(strip(b));
}

export function copyableAnnotations(d: Deployment): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (!SKIP_COPY.has(k)) out[k] = v;
  return out;
}

/** IntOrString against a total: percentages round up for surge, down for unavailable. */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean, dflt: string): number {
  const x = v ?? dflt;
  if (typeof x === 'number') return x;
  const m = /^(\d+)%$/.exec(x);
  if (!m) return Number(x) || 0;
  const f = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(f) : Math.floor(f);
}

export function replicasOf(d: Deployment | ReplicaSet): number {
  return d.spec?.replicas ?? 1;
}

export function maxSurge(d: Deployment): number {
  if (d.spec?.strategy?.type === 'Recreate') return 0;
  const ru = d.spec?.strategy?.rollingUpdate;
  const surge = scaledValue(ru?.maxSurge, replicasOf(d), true, '25%');
  const unav = scaledValue(ru?.maxUnavailable, replicasOf(d), false, '25%');
  return surge === 0 && unav === 0 ? 0 : surge;
}

export function maxUnavailable(d: Deployment): number {
  if (d.spec?.strategy?.type === 'Recreate') return 0;
  const ru = d.spec?.strategy?.rollingUpdate;
  const surge = scaledValue(ru?.maxSurge, replicasOf(d), true, '25%');
  let unav = scaledValue(ru?.maxUnavailable, replicasOf(d), false, '25%');
  if (surge === 0 && unav === 0) unav = 1;
  return Math.min(unav, replicasOf(d));
}

const specReplicas = (rs: ReplicaSet): number => rs.spec?.replicas ?? 0;
export const sumSpec = (l: ReplicaSet[]): number => l.reduce((s, rs) => s + specReplicas(rs), 0);
const sumStatus = (l: ReplicaSet[], f: 'replicas' | 'readyReplicas' | 'availableReplicas'): number => l.reduce((s, rs) => s + (rs.status?.[f] ?? 0), 0);

/** How many replicas the new RS should have now under RollingUpdate (NewRSNewReplicas). */
export function newRSReplicas(d: Deployment, all: ReplicaSet[], newRS: ReplicaSet | undefined): number {
  const want = replicasOf(d);
  const cur = newRS ? specReplicas(newRS) : 0;
  if (d.spec?.strategy?.type === 'Recreate') return want;
  const maxTotal = want + maxSurge(d);
  const total = sumSpec(all);
  if (total >= maxTotal) return cur;
  return cur + Math.max(0, Math.min(maxTotal - total, want - cur));
}

export function setCondition(conds: DeploymentCondition[], c: DeploymentCondition): DeploymentCondition[] {
  const old = conds.find((x) => x.type === c.type);
  const next = { ...c };
  if (old && old.status === c.status && old.reason === c.reason) next.lastTransitionTime = old.lastTransitionTime;
  else if (old && old.status === c.status) next.lastTransitionTime = old.lastTransitionTime;
  return [...conds.filter((x) => x.type !== c.type), next];
}

/** Replica counts of a deployment from its ReplicaSets' statuses (calculateStatus). */
export function countStatus(d: Deployment, all: ReplicaSet[], newRS: ReplicaSet | undefined): DeploymentStatus {
  const available = sumStatus(all, 'availableReplicas');
  const total = sumStatus(all, 'replicas');
  return {
    observedGeneration: d.metadata?.generation,
    replicas: total,
    updatedReplicas: newRS?.status?.replicas ?? 0,
    readyReplicas: sumStatus(all, 'readyReplicas'),
    availableReplicas: available,
    unavailableReplicas: Math.max(replicasOf(d) - available, 0),
    ...(d.status?.collisionCount ? { collisionCount: d.status.collisionCount } : {}),
  };
}

export function isComplete(d: Deployment, s: DeploymentStatus): boolean {
  const want = replicasOf(d);
  return s.updatedReplicas === want && s.replicas === want && s.availableReplicas === want && (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
}

/** Progress since the last status: more updated, fewer old, more ready or available. */
export function isProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  return (
    (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) ||
    (s.replicas ?? 0) - (s.updatedReplicas ?? 0) < (o.replicas ?? 0) - (o.updatedReplicas ?? 0) ||
    (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) ||
    (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0)
  );
}

/** Sort oldest first (creation time, then name) — the order old ReplicaSets are scaled down in. */
export function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  const ta = Date.parse(a.metadata?.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata?.creationTimestamp ?? '') || 0;
  return ta - tb || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}
