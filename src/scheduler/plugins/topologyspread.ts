import type { TopologySpreadConstraint } from 'kubernetes-types/core/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import type { NodeInfo } from '../cache.js';
import { normalize, type CycleState, type FilterPlugin, type ScorePlugin } from '../framework.js';
import { nodeAffinity } from './nodeaffinity.js';

interface SpreadState {
  constraints: TopologySpreadConstraint[];
  /** per constraint: matching pods per topology value (eligible domains only) */
  counts: Map<string, number>[];
  selfMatch: boolean[];
}

const constraintsOf = (s: CycleState, when: 'DoNotSchedule' | 'ScheduleAnyway') =>
  (s.pod.pod.spec?.topologySpreadConstraints ?? []).filter((c) => c.whenUnsatisfiable === when);

/** Counts matching pods per domain over the nodes the pod could go to (nodeAffinityPolicy Honor). */
function computeState(s: CycleState, constraints: TopologySpreadConstraint[]): SpreadState {
  const counts = constraints.map(() => new Map<string, number>());
  for (const n of s.nodes) {
    if (nodeAffinity.filter(s, n)) continue;
    constraints.forEach((c, i) => {
      const v = n.labels[c.topologyKey];
      if (v === undefined) return;
      let k = counts[i].get(v) ?? 0;
      for (const p of n.pods.values()) if (p.key !== s.pod.key && p.namespace === s.pod.namespace && labelSelectorMatches(c.labelSelector, p.labels)) k++;
      counts[i].set(v, k);
    });
  }
  return { constraints, counts, selfMatch: constraints.map((c) => labelSelectorMatches(c.labelSelector, s.pod.labels)) };
}

/**
 * PodTopologySpread: DoNotSchedule constraints filter (a node's domain may not exceed the least
 * populated domain by more than maxSkew, counting this pod); ScheduleAnyway constraints score
 * (fewer matching pods in the node's domain, higher score).
 */
export const podTopologySpread: FilterPlugin & ScorePlugin = {
  name: 'PodTopologySpread',
  weight: 2,
  preFilter: (s) => {
    const hard = constraintsOf(s, 'DoNotSchedule');
    if (hard.length) s.data.set('PodTopologySpread', computeState(s, hard));
    return undefined;
  },
  filter: (s, n) => {
    const st = s.data.get('PodTopologySpread') as SpreadState | undefined;
    if (!st) return undefined;
    for (let i = 0; i < st.constraints.length; i++) {
      const c = st.constraints[i];
      const v = n.labels[c.topologyKey];
      if (v === undefined) return "node(s) didn't match pod topology spread constraints (missing required label)";
      const domains = [...st.counts[i].values()];
      const min = domains.length < (c.minDomains ?? 1) ? 0 : Math.min(...domains);
      const skew = (st.counts[i].get(v) ?? 0) + (st.selfMatch[i] ? 1 : 0) - min;
      if (skew > c.maxSkew) return "node(s) didn't match pod topology spread constraints";
    }
    return undefined;
  },
  score: (s, nodes: readonly NodeInfo[]) => {
    const soft = constraintsOf(s, 'ScheduleAnyway');
    if (soft.length === 0) return nodes.map(() => 0);
    const st = computeState(s, soft);
    return normalize(
      nodes.map((n) => soft.reduce((sum, c, i) => sum + (n.labels[c.topologyKey] === undefined ? 0 : (st.counts[i].get(n.labels[c.topologyKey]) ?? 0)), 0)),
      true,
    );
  },
};
