import type { StatefulSet, StatefulSetStatus } from 'kubernetes-types/apps/v1.js';
import type { PersistentVolumeClaim, Pod, PodTemplateSpec } from 'kubernetes-types/core/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { clone } from '../../api/object.js';
import { claimObjects, isPodAvailable, isPodReady, newControllerRef, podFromTemplate } from '../replicaset/common.js';
import { REVISION_HASH_LABEL } from './history.js';

export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

export interface Revisions {
  currentHash: string;
  currentTemplate?: PodTemplateSpec;
  updateHash: string;
  updateTemplate?: PodTemplateSpec;
}

export interface StatefulSetPlan {
  adopt: Pod[];
  createPVCs: PersistentVolumeClaim[];
  createPods: Pod[];
  deletePods: Pod[];
  status: StatefulSetStatus;
}

export const ordinalOf = (sts: StatefulSet, pod: Pod): number => {
  const prefix = `${sts.metadata?.name}-`;
  const n = pod.metadata?.name ?? '';
  return n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)) ? Number(n.slice(prefix.length)) : -1;
};

export const claimName = (sts: StatefulSet, template: string, ordinal: number): string => `${template}-${sts.metadata?.name}-${ordinal}`;

/** The pod with a stable identity for `ordinal`, at the given revision. */
export function statefulPod(sts: StatefulSet, ordinal: number, template: PodTemplateSpec | undefined, hash: string): Pod {
  const name = `${sts.metadata!.name}-${ordinal}`;
  const pod = podFromTemplate(template, newControllerRef(sts, 'apps/v1', 'StatefulSet'), sts.metadata!.namespace!, { name }, {
    [POD_NAME_LABEL]: name,
    [POD_INDEX_LABEL]: String(ordinal),
    [REVISION_HASH_LABEL]: hash,
  });
  const spec = pod.spec as { hostname?: string; subdomain?: string; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
  spec.hostname = name;
  if (sts.spec?.serviceName) spec.subdomain = sts.spec.serviceName;
  const claims = sts.spec?.volumeClaimTemplates ?? [];
  if (claims.length) {
    const vols = (spec.volumes ?? []).filter((v) => !claims.some((c) => c.metadata?.name === v.name));
    for (const c of claims) vols.push({ name: c.metadata!.name!, persistentVolumeClaim: { claimName: claimName(sts, c.metadata!.name!, ordinal) } });
    spec.volumes = vols;
  }
  return pod;
}

function pvcsFor(sts: StatefulSet, ordinal: number, existing: Set<string>): PersistentVolumeClaim[] {
  return (sts.spec?.volumeClaimTemplates ?? [])
    .map((t) => {
      const c = clone(t) as PersistentVolumeClaim;
      const name = claimName(sts, t.metadata!.name!, ordinal);
      c.apiVersion = 'v1';
      c.kind = 'PersistentVolumeClaim';
      c.metadata = { ...(t.metadata ?? {}), name, namespace: sts.metadata?.namespace, labels: { ...(sts.spec?.selector?.matchLabels ?? {}), ...(t.metadata?.labels ?? {}) } };
      delete (c as { status?: unknown }).status;
      return c;
    })
    .filter((c) => !existing.has(c.metadata!.name!));
}

const healthy = (p: Pod): boolean => p.status?.phase === 'Running' && isPodReady(p) && !p.metadata?.deletionTimestamp;

/**
 * One StatefulSet sync: stable pods `<name>-<ordinal>` (and their claims) created in order
 * (OrderedReady: one at a time, each waiting for its predecessors to be Running and Ready;
 * Parallel: all at once), scale-down from the highest ordinal, and the RollingUpdate step
 * (highest ordinal >= partition not at the update revision is deleted, one at a time).
 */
export function reconcileStatefulSet(sts: StatefulSet, pods: Pod[], pvcNames: Set<string>, rev: Revisions, now: number): StatefulSetPlan {
  const claim = claimObjects(sts, sts.spec?.selector, pods.filter((p) => p.metadata?.namespace === sts.metadata?.namespace));
  const owned = claim.owned.filter((p) => labelSelectorMatches(sts.spec?.selector, p.metadata?.labels));
  const plan: StatefulSetPlan = { adopt: claim.adopt, createPVCs: [], createPods: [], deletePods: [], status: { replicas: 0 } };
  const replicas = sts.spec?.replicas ?? 1;
  const parallel = sts.spec?.podManagementPolicy === 'Parallel';
  const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  const byOrdinal = new Map<number, Pod>();
  for (const p of owned) {
    const o = ordinalOf(sts, p);
    if (o >= 0) byOrdinal.set(o, p);
  }
  const revisionOf = (p: Pod): string | undefined => p.metadata?.labels?.[REVISION_HASH_LABEL];
  const live = !sts.metadata?.deletionTimestamp;

  // status from what exists
  const existing = [...byOrdinal.values()].filter((p) => !p.metadata?.deletionTimestamp);
  const updatedReplicas = existing.filter((p) => revisionOf(p) === rev.updateHash).length;
  plan.status = {
    observedGeneration: sts.metadata?.generation,
    replicas: existing.length,
    readyReplicas: existing.filter(isPodReady).length,
    availableReplicas: existing.filter((p) => isPodAvailable(p, sts.spec?.minReadySeconds ?? 0, now)).length,
    currentReplicas: existing.filter((p) => revisionOf(p) === rev.currentHash).length,
    updatedReplicas,
    currentRevision: rev.currentHash,
    updateRevision: rev.updateHash,
    ...(sts.status?.collisionCount ? { collisionCount: sts.status.collisionCount } : {}),
  };
  if (updatedReplicas === replicas && existing.length === replicas && existing.every((p) => ordinalOf(sts, p) < replicas)) {
    plan.status.currentRevision = rev.updateHash;
    plan.status.currentReplicas = updatedReplicas;
  }
  if (!live) return plan;

  // replace terminal pods
  for (const p of byOrdinal.values()) if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded') if (!p.metadata?.deletionTimestamp) plan.deletePods.push(p);
  // create missing ordinals
  for (let i = 0; i < replicas; i++) {
    const p = byOrdinal.get(i);
    if (!p) {
      const useUpdate = i >= partition || !rev.currentTemplate;
      const pod = statefulPod(sts, i, useUpdate ? rev.updateTemplate : rev.currentTemplate, useUpdate ? rev.updateHash : rev.currentHash);
      plan.createPVCs.push(...pvcsFor(sts, i, pvcNames));
      plan.createPods.push(pod);
      if (!parallel) break;
      continue;
    }
    if (!parallel && !healthy(p)) break;
  }
  if (plan.createPods.length || plan.deletePods.length) return plan;
  // scale down, highest ordinal first
  const condemned = [...byOrdinal.entries()].filter(([o, p]) => o >= replicas && !p.metadata?.deletionTimestamp).sort((a, b) => b[0] - a[0]);
  if (condemned.length) {
    const othersHealthy = [...byOrdinal.entries()].filter(([o]) => o < replicas).every(([, p]) => healthy(p));
    if (parallel) plan.deletePods.push(...condemned.map(([, p]) => p));
    else if (othersHealthy && ![...byOrdinal.values()].some((p) => p.metadata?.deletionTimestamp)) plan.deletePods.push(condemned[0][1]);
    return plan;
  }
  // rolling update: wait for every pod to be healthy, then replace the highest out-of-date one
  if (sts.spec?.updateStrategy?.type === 'OnDelete') return plan;
  const all = [...byOrdinal.entries()].filter(([o]) => o < replicas).sort((a, b) => b[0] - a[0]);
  if (!all.every(([, p]) => healthy(p))) return plan;
  const stale = all.find(([o, p]) => o >= partition && revisionOf(p) !== rev.updateHash);
  if (stale) plan.deletePods.push(stale[1]);
  return plan;
}
