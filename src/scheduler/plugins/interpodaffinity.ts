import type { PodAffinityTerm } from 'kubernetes-types/core/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import type { NodeInfo, PodInfo } from '../cache.js';
import { normalizeMinMax, type CycleState, type FilterPlugin, type ScorePlugin } from '../framework.js';

/** Does an (existing) pod match a term written by `owner` (label selector + namespaces)? */
export function podMatchesTerm(term: PodAffinityTerm, ownerNamespace: string, pod: PodInfo): boolean {
  const nsSel = term.namespaceSelector;
  const allNamespaces = !!nsSel && Object.keys(nsSel.matchLabels ?? {}).length === 0 && (nsSel.matchExpressions ?? []).length === 0;
  if (!allNamespaces) {
    const namespaces = term.namespaces && term.namespaces.length > 0 ? term.namespaces : [ownerNamespace];
    if (!namespaces.includes(pod.namespace)) return false;
  }
  return labelSelectorMatches(term.labelSelector, pod.labels);
}

const topo = (key: string, value: string) => `${key}\u0000${value}`;

interface AffinityState {
  /** per required affinity term: topology pairs where a matching pod runs */
  affinity: Set<string>[];
  anyAffinityMatch: boolean;
  /** per required anti-affinity term: topology pairs where a matching pod runs */
  anti: Set<string>[];
  /** topology pairs forbidden by existing pods' anti-affinity towards this pod */
  existingAnti: Set<string>;
}

function requiredAffinity(p: PodInfo) {
  return p.pod.spec?.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
}
function requiredAnti(p: PodInfo) {
  return p.requiredAntiAffinity;
}

function computeState(s: CycleState): AffinityState {
  const me = s.pod;
  const aff = requiredAffinity(me);
  const anti = requiredAnti(me);
  const st: AffinityState = { affinity: aff.map(() => new Set()), anyAffinityMatch: false, anti: anti.map(() => new Set()), existingAnti: new Set() };
  for (const n of s.nodes) {
    // existing pods' anti-affinity: only the pods that have such terms (kept per node by the cache)
    for (const other of n.podsWithRequiredAntiAffinity.values()) {
      if (other.key === me.key) continue;
      for (const t of other.requiredAntiAffinity) {
        if (podMatchesTerm(t, other.namespace, me) && n.labels[t.topologyKey] !== undefined) st.existingAnti.add(topo(t.topologyKey, n.labels[t.topologyKey]));
      }
    }
    // the pod's own terms look at every pod (most pods have none: then this loop is skipped)
    if (aff.length === 0 && anti.length === 0) continue;
    for (const other of n.pods.values()) {
      if (other.key === me.key) continue;
      aff.forEach((t, i) => {
        if (podMatchesTerm(t, me.namespace, other) && n.labels[t.topologyKey] !== undefined) {
          st.affinity[i].add(topo(t.topologyKey, n.labels[t.topologyKey]));
          st.anyAffinityMatch = true;
        }
      });
      anti.forEach((t, i) => {
        if (podMatchesTerm(t, me.namespace, other) && n.labels[t.topologyKey] !== undefined) st.anti[i].add(topo(t.topologyKey, n.labels[t.topologyKey]));
      });
    }
  }
  return st;
}

/** InterPodAffinity (required): pod affinity and anti-affinity by topologyKey, and existing pods' anti-affinity. */
export const interPodAffinity: FilterPlugin & ScorePlugin = {
  name: 'InterPodAffinity',
  weight: 2,
  preFilter: (s) => {
    s.data.set('InterPodAffinity', computeState(s));
    return undefined;
  },
  filter: (s, n) => {
    const st = s.data.get('InterPodAffinity') as AffinityState;
    for (const pair of st.existingAnti) {
      const [k, v] = pair.split('\u0000');
      if (n.labels[k] === v) return "node(s) didn't satisfy existing pods anti-affinity rules";
    }
    const aff = requiredAffinity(s.pod);
    if (aff.length > 0) {
      // The first pod of a group that selects itself may go anywhere (as in kube-scheduler).
      const selfMatch = !st.anyAffinityMatch && aff.every((t) => podMatchesTerm(t, s.pod.namespace, s.pod));
      if (!selfMatch) {
        for (let i = 0; i < aff.length; i++) {
          const v = n.labels[aff[i].topologyKey];
          if (v === undefined || !st.affinity[i].has(topo(aff[i].topologyKey, v))) return "node(s) didn't match pod affinity rules";
        }
      }
    }
    const anti = requiredAnti(s.pod);
    for (let i = 0; i < anti.length; i++) {
      const v = n.labels[anti[i].topologyKey];
      if (v !== undefined && st.anti[i].has(topo(anti[i].topologyKey, v))) return "node(s) didn't match pod anti-affinity rules";
    }
    return undefined;
  },
  score: (s, nodes: readonly NodeInfo[]) => {
    const pa = s.pod.pod.spec?.affinity;
    const terms = [
      ...(pa?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => ({ w: w.weight, t: w.podAffinityTerm })),
      ...(pa?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => ({ w: -w.weight, t: w.podAffinityTerm })),
    ];
    if (terms.length === 0) return nodes.map(() => 0);
    // weight per topology pair where matching pods run, then each candidate node sums its pairs
    const pairWeight = new Map<string, number>();
    for (const n of s.nodes) {
      for (const other of n.pods.values()) {
        for (const { w, t } of terms) {
          const v = n.labels[t.topologyKey];
          if (v !== undefined && other.key !== s.pod.key && podMatchesTerm(t, s.pod.namespace, other)) {
            const k = topo(t.topologyKey, v);
            pairWeight.set(k, (pairWeight.get(k) ?? 0) + w);
          }
        }
      }
    }
    const keys = [...new Set(terms.map((x) => x.t.topologyKey))];
    return normalizeMinMax(nodes.map((n) => keys.reduce((sum, k) => sum + (n.labels[k] !== undefined ? (pairWeight.get(topo(k, n.labels[k])) ?? 0) : 0), 0)));
  },
};
