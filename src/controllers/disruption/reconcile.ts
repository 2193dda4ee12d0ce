import type { PodDisruptionBudget, PodDisruptionBudgetStatus } from 'kubernetes-types/policy/v1.js';
import type { KubeObject } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import type { PodObj } from '../../scheduler/cache.js';
import { isPodReady } from '../endpointslice/podutil.js';

export type PdbObj = KubeObject & PodDisruptionBudget;

/** An int-or-percent scaled against a total, rounding up as Kubernetes does for budgets. */
export function scaled(v: number | string | undefined, total: number): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  const m = v.match(/^(\d+)%$/);
  if (!m) return Number(v) || 0;
  return Math.ceil((Number(m[1]) * total) / 100);
}

export function pdbSelects(pdb: PdbObj, pod: PodObj): boolean {
  return pod.metadata?.namespace === pdb.metadata?.namespace && labelSelectorMatches(pdb.spec?.selector, pod.metadata?.labels);
}

const isTerminal = (p: PodObj) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
export const isHealthy = (p: PodObj): boolean => !p.metadata?.deletionTimestamp && !isTerminal(p) && isPodReady(p);

/**
 * A budget's status from the pods it selects. `replicasOf(ownerKind, ownerName)` gives a
 * controller's desired replicas (for maxUnavailable and percentages); pods without a known
 * controller count one each. Disrupted pods (evicted, not yet gone) no longer count as healthy.
 */
export function computePdbStatus(
  pdb: PdbObj,
  pods: readonly PodObj[],
  replicasOf: (kind: string, name: string, namespace: string) => number | undefined,
  nowMs: number,
): PodDisruptionBudgetStatus {
  const selected = pods.filter((p) => pdbSelects(pdb, p) && !isTerminal(p));
  const disrupted: Record<string, string> = {};
  for (const [name, at] of Object.entries(pdb.status?.disruptedPods ?? {})) {
    const pod = selected.find((p) => p.metadata?.name === name);
    // an eviction not carried out within 2 minutes is dropped, as in Kubernetes
    if (pod && !pod.metadata?.deletionTimestamp && nowMs - Date.parse(at) < 120_000) disrupted[name] = at;
  }
  const healthy = selected.filter((p) => isHealthy(p) && !disrupted[p.metadata!.name!]).length;
  const spec = pdb.spec ?? {};
  const usesScale = spec.maxUnavailable !== undefined || typeof spec.minAvailable === 'string';
  let expected = selected.length;
  if (usesScale) {
    const owners = new Map<string, number>();
    let loose = 0;
    for (const p of selected) {
      const ref = p.metadata?.ownerReferences?.find((o) => o.controller);
      const n = ref ? replicasOf(ref.kind, ref.name, p.metadata!.namespace!) : undefined;
      if (ref && n !== undefined) owners.set(`${ref.kind}/${ref.name}`, n);
      else loose++;
    }
    expected = loose + [...owners.values()].reduce((a, b) => a + b, 0);
  }
  let desired: number;
  if (spec.maxUnavailable !== undefined) desired = Math.max(0, expected - scaled(spec.maxUnavailable, expected));
  else if (spec.minAvailable !== undefined) desired = scaled(spec.minAvailable, expected);
  else desired = expected; // neither set: no disruptions (k8s defaults minAvailable to 1 only via API defaulting)
  const allowed = Math.max(0, healthy - desired);
  return {
    observedGeneration: pdb.metadata?.generation,
    disruptedPods: Object.keys(disrupted).length ? disrupted : undefined,
    disruptionsAllowed: allowed,
    currentHealthy: healthy,
    desiredHealthy: desired,
    expectedPods: expected,
    conditions: [
      {
        type: 'DisruptionAllowed',
        status: allowed > 0 ? 'True' : 'False',
        reason: allowed > 0 ? 'SufficientPods' : 'InsufficientPods',
        message: '',
        observedGeneration: pdb.metadata?.generation,
        lastTransitionTime: pdb.status?.conditions?.find((c) => c.type === 'DisruptionAllowed' && c.status === (allowed > 0 ? 'True' : 'False'))?.lastTransitionTime ?? new Date(nowMs).toISOString(),
      },
    ],
  };
}
