import type { NodeInfo } from '../cache.js';
import type { FilterPlugin, ScorePlugin } from '../framework.js';

/** NodeResourcesFit: the pod's requests fit in allocatable minus what is already requested. */
export const nodeResourcesFit: FilterPlugin = {
  name: 'NodeResourcesFit',
  filter: (s, n) => {
    const r = s.pod.requests;
    if (n.requested.pods + 1 > n.allocatable.pods) return 'Too many pods';
    if (r.cpu > 0 && n.requested.cpu + r.cpu > n.allocatable.cpu) return 'Insufficient cpu';
    if (r.memory > 0 && n.requested.memory + r.memory > n.allocatable.memory) return 'Insufficient memory';
    return undefined;
  },
};

function fractions(s: { pod: { nonzero: { cpu: number; memory: number } } }, n: NodeInfo): [number, number] {
  const cpu = n.allocatable.cpu > 0 ? (n.nonzeroRequested.cpu + s.pod.nonzero.cpu) / n.allocatable.cpu : 1;
  const mem = n.allocatable.memory > 0 ? (n.nonzeroRequested.memory + s.pod.nonzero.memory) / n.allocatable.memory : 1;
  return [Math.min(cpu, 1), Math.min(mem, 1)];
}

/** LeastAllocated: prefers nodes with more free cpu and memory (pods without requests count as 100m/200Mi). */
export const leastAllocated: ScorePlugin = {
  name: 'NodeResourcesLeastAllocated',
  weight: 1,
  score: (s, nodes) =>
    nodes.map((n) => {
      const [c, m] = fractions(s, n);
      return Math.floor(((1 - c) * 100 + (1 - m) * 100) / 2);
    }),
};

/** BalancedAllocation: prefers nodes where cpu and memory would be used in equal shares. */
export const balancedAllocation: ScorePlugin = {
  name: 'NodeResourcesBalancedAllocation',
  weight: 1,
  score: (s, nodes) =>
    nodes.map((n) => {
      const [c, m] = fractions(s, n);
      return Math.floor((1 - Math.abs(c - m) / 2) * 100);
    }),
};
