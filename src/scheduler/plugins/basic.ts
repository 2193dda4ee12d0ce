import type { Taint, Toleration } from 'kubernetes-types/core/v1.js';
import type { NodeInfo } from '../cache.js';
import { normalize, type CycleState, type FilterPlugin, type ScorePlugin } from '../framework.js';

/** Does a toleration tolerate a taint (key/operator/value/effect, as in k8s ToleratesTaint)? */
export function tolerates(tol: Toleration, taint: Taint): boolean {
  if (tol.effect && tol.effect !== taint.effect) return false;
  if (tol.key && tol.key !== taint.key) return false;
  if (!tol.key && tol.operator !== 'Exists') return false;
  if (tol.operator === 'Exists') return true;
  return (tol.value ?? '') === (taint.value ?? '');
}

export function toleratesAll(tols: readonly Toleration[], taint: Taint): boolean {
  return tols.some((t) => tolerates(t, taint));
}

const tolerationsOf = (s: CycleState) => s.pod.pod.spec?.tolerations ?? [];

/** NodeName: spec.nodeName pins a pod (normally such pods never reach the scheduler). */
export const nodeName: FilterPlugin = {
  name: 'NodeName',
  filter: (s, n) => (s.pod.pod.spec?.nodeName && s.pod.pod.spec.nodeName !== n.name ? "node(s) didn't match the requested node name" : undefined),
};

/** NodeUnschedulable: cordoned nodes, unless the pod tolerates node.kubernetes.io/unschedulable. */
export const nodeUnschedulable: FilterPlugin = {
  name: 'NodeUnschedulable',
  filter: (s, n) =>
    n.unschedulable && !toleratesAll(tolerationsOf(s), { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }) ? 'node(s) were unschedulable' : undefined,
};

/** TaintToleration: NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule lowers the score. */
export const taintToleration: FilterPlugin & ScorePlugin = {
  name: 'TaintToleration',
  weight: 3,
  filter: (s, n) => {
    const tols = tolerationsOf(s);
    const bad = n.taints.find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !toleratesAll(tols, t));
    return bad ? `node(s) had untolerated taint {${bad.key}: ${bad.value ?? ''}}` : undefined;
  },
  score: (s, nodes: readonly NodeInfo[]) => {
    const tols = tolerationsOf(s);
    return normalize(
      nodes.map((n) => n.taints.filter((t) => t.effect === 'PreferNoSchedule' && !toleratesAll(tols, t)).length),
      true,
    );
  },
};
