import type { DaemonSet, DaemonSetStatus } from 'kubernetes-types/apps/v1.js';
import type { Node, NodeSelectorRequirement, Pod, Taint, Toleration } from 'kubernetes-types/core/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { claimObjects, isPodActive, isPodAvailable, isPodReady } from '../replicaset/common.js';
import { scaledValue } from '../deployment/rollout.js';
import { REVISION_HASH_LABEL } from '../statefulset/history.js';

/** Tolerations every daemon pod gets (the DaemonSet controller adds them in Kubernetes). */
export const DAEMON_TOLERATIONS: Toleration[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];

export function tolerates(tols: readonly Toleration[], taint: Taint): boolean {
  return tols.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (!t.key) return t.operator === 'Exists';
    if (t.key !== taint.key) return false;
    return t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '');
  });
}

function requirementHolds(r: NodeSelectorRequirement, value: string | undefined): boolean {
  switch (r.operator) {
    case 'In':
      return value !== undefined && (r.values ?? []).includes(value);
    case 'NotIn':
      return value === undefined || !(r.values ?? []).includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
      return value !== undefined && Number(value) > Number(r.values?.[0]);
    case 'Lt':
      return value !== undefined && Number(value) < Number(r.values?.[0]);
    default:
      return false;
  }
}

/** nodeSelector, required node affinity and NoSchedule/NoExecute taints (with the daemon tolerations). */
export function nodeShouldRunDaemonPod(ds: DaemonSet, node: Node): boolean {
  const spec = ds.spec?.template?.spec;
  const labels = node.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const terms = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms?.length) {
    const ok = terms.some(
      (t) => (t.matchExpressions ?? []).every((r) => requirementHolds(r, labels[r.key])) && (t.matchFields ?? []).every((r) => requirementHolds(r, r.key === 'metadata.name' ? node.metadata?.name : undefined)),
    );
    if (!ok) return false;
  }
  const tols = [...(spec?.tolerations ?? []), ...DAEMON_TOLERATIONS];
  return (node.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute').every((t) => tolerates(tols, t));
}

/** The node a daemon pod is for: spec.nodeName, or the matchFields metadata.name affinity it was created with. */
export function podNode(pod: Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return terms[0]?.matchFields?.find((f) => f.key === 'metadata.name' && f.operator === 'In')?.values?.[0];
}

export interface DaemonSetPlan {
  adopt: Pod[];
  /** nodes to create a pod on */
  create: string[];
  delete: Pod[];
  status: DaemonSetStatus;
}

const newest = (a: Pod, b: Pod): number => (Date.parse(a.metadata?.creationTimestamp ?? '') || 0) - (Date.parse(b.metadata?.creationTimestamp ?? '') || 0);

/**
 * One DaemonSet sync: a pod on every eligible node, none elsewhere, failed pods replaced, and the
 * RollingUpdate step (delete out-of-date pods while fewer than maxUnavailable are unavailable).
 */
export function reconcileDaemonSet(ds: DaemonSet, nodes: Node[], pods: Pod[], hash: string, now: number, manage = true): DaemonSetPlan {
  const claim = claimObjects(ds, ds.spec?.selector, pods.filter((p) => p.metadata?.namespace === ds.metadata?.namespace));
  const owned = claim.owned.filter((p) => labelSelectorMatches(ds.spec?.selector, p.metadata?.labels));
  const plan: DaemonSetPlan = { adopt: claim.adopt, create: [], delete: [], status: { currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 } };
  const minReady = ds.spec?.minReadySeconds ?? 0;
  const byNode = new Map<string, Pod[]>();
  for (const p of owned) {
    const n = podNode(p);
    if (n) byNode.set(n, [...(byNode.get(n) ?? []), p]);
  }
  const nodeNames = new Set(nodes.map((n) => n.metadata!.name!));
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let available = 0;
  let updated = 0;
  const rollable: { pod: Pod; available: boolean }[] = [];
  let unavailable = 0;
  for (const node of [...nodes].sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))) {
    const name = node.metadata!.name!;
    const onNode = byNode.get(name) ?? [];
    const failed = onNode.filter((p) => p.status?.phase === 'Failed');
    const active = onNode.filter(isPodActive).sort(newest);
    plan.delete.push(...failed);
    if (!nodeShouldRunDaemonPod(ds, node)) {
      if (active.length) misscheduled++;
      plan.delete.push(...active);
      continue;
    }
    desired++;
    if (active.length === 0) {
      if (!onNode.some((p) => p.metadata?.deletionTimestamp)) plan.create.push(name);
      unavailable++;
      continue;
    }
    current++;
    const [keep, ...extra] = active;
    plan.delete.push(...extra);
    if (isPodReady(keep)) ready++;
    const avail = isPodAvailable(keep, minReady, now);
    if (avail) available++;
    else unavailable++;
    if (keep.metadata?.labels?.[REVISION_HASH_LABEL] === hash) updated++;
    else rollable.push({ pod: keep, available: avail });
  }
  // pods for nodes that are gone
  for (const [n, list] of byNode) if (!nodeNames.has(n)) plan.delete.push(...list.filter((p) => !p.metadata?.deletionTimestamp));
  if (ds.spec?.updateStrategy?.type !== 'OnDelete') {
    const maxUnavailable = Math.max(1, scaledValue(ds.spec?.updateStrategy?.rollingUpdate?.maxUnavailable, desired, false, '1'));
    let budget = maxUnavailable - unavailable;
    for (const r of rollable) {
      if (!r.available) plan.delete.push(r.pod);
      else if (budget > 0) {
        plan.delete.push(r.pod);
        budget--;
      }
    }
  }
  if (!manage) {
    plan.create = [];
    plan.delete = [];
  }
  plan.delete = plan.delete.filter((p, i, a) => !p.metadata?.deletionTimestamp && a.indexOf(p) === i);
  plan.status = {
    desiredNumberScheduled: desired,
    currentNumberScheduled: current,
    numberMisscheduled: misscheduled,
    numberReady: ready,
    numberAvailable: available,
    numberUnavailable: desired - available,
    updatedNumberScheduled: updated,
    observedGeneration: ds.metadata?.generation,
  };
  return plan;
}
