import type { ScorePlugin } from '../framework.js';

/** Spreads the replicas of one owner (controller ownerReference) across nodes: fewer siblings, higher score. */
export const ownerSpread: ScorePlugin = {
  name: 'SelectorSpread',
  weight: 2,
  score: (s, nodes) => {
    const owner = s.pod.ownerUid;
    if (!owner) return nodes.map(() => 0);
    const counts = nodes.map((n) => {
      let c = 0;
      for (const p of n.pods.values()) if (p.ownerUid === owner && p.key !== s.pod.key) c++;
      return c;
    });
    const max = Math.max(...counts);
    return counts.map((c) => (max === 0 ? 100 : Math.floor(((max - c) * 100) / max)));
  },
};
