import type { ScorePlugin } from '../framework.js';

/** Spreads the replicas of one owner (controller ownerReference) across nodes: fewer siblings, higher score. */
export const ownerSpread: ScorePlugin = {
  name: 'SelectorSpread',
  weight: 2,
  score: (s, nodes) => {
    const owner = s.pod.ownerUid;
    if (!owner) return nodes.map(() => 0);
    // per-node owner counts are kept by the cache; the pod itself never counts as its own sibling
    const counts = nodes.map((n) => {
      const c = n.ownerCounts.get(owner);
      return c ? c - (n.pods.get(s.pod.key)?.ownerUid === owner ? 1 : 0) : 0;
    });
    const max = Math.max(...counts);
    return counts.map((c) => (max === 0 ? 100 : Math.floor(((max - c) * 100) / max)));
  },
};
