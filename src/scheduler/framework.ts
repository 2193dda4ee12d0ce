import type { PersistentVolume, PersistentVolumeClaim } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../api/object.js';
import type { NodeInfo, PodInfo } from './cache.js';

export type PvcObj = KubeObject & PersistentVolumeClaim;
export type PvObj = KubeObject & PersistentVolume;

/** Read-only lookups plugins may need besides the node cache. */
export interface ClusterLookups {
  pvc(namespace: string, name: string): PvcObj | undefined;
  pv(name: string): PvObj | undefined;
}

/** One scheduling cycle: the pod, every node, and per-plugin data computed once in preFilter. */
export interface CycleState {
  pod: PodInfo;
  nodes: readonly NodeInfo[];
  lookups: ClusterLookups;
  data: Map<string, unknown>;
}

/** A filter: preFilter may reject the pod outright; filter returns a reason when a node does not fit. */
export interface FilterPlugin {
  name: string;
  preFilter?(state: CycleState): string | undefined;
  filter(state: CycleState, node: NodeInfo): string | undefined;
}

/** A score: 0..100 per feasible node (already normalised), multiplied by weight. */
export interface ScorePlugin {
  name: string;
  weight: number;
  score(state: CycleState, nodes: readonly NodeInfo[]): number[];
}

/** Scales raw scores so the highest becomes 100 (all zero stays zero); reverse makes the lowest 100. */
export function normalize(raw: number[], reverse = false): number[] {
  const max = Math.max(0, ...raw);
  if (max === 0) return raw.map(() => (reverse ? 100 : 0));
  return raw.map((v) => {
    const s = Math.floor((v * 100) / max);
    return reverse ? 100 - s : s;
  });
}

/** Scales raw scores (which may be negative) to 0..100 between min and max. */
export function normalizeMinMax(raw: number[]): number[] {
  if (raw.length === 0) return raw;
  const min = Math.min(...raw);
  const max = Math.max(...raw);
  if (max === min) return raw.map(() => 0);
  return raw.map((v) => Math.floor(((v - min) * 100) / (max - min)));
}

export type ScheduleResult =
  | { node: string; feasible: number; scores?: Record<string, number> }
  | { node?: undefined; message: string; reasons: Record<string, number> };

/**
 * Filters then scores: picks the feasible node with the highest weighted score (ties: lowest name).
 * Without a fit, the message says which filter failed on how many nodes, as kube-scheduler does:
 * "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {a: b}."
 */
export function schedulePod(state: CycleState, filters: readonly FilterPlugin[], scores: readonly ScorePlugin[]): ScheduleResult {
  const total = state.nodes.length;
  for (const f of filters) {
    const reason = f.preFilter?.(state);
    if (reason) return { message: `0/${total} nodes are available: ${reason}.`, reasons: { [reason]: total } };
  }
  const feasible: NodeInfo[] = [];
  const reasons: Record<string, number> = {};
  for (const n of state.nodes) {
    let reason: string | undefined;
    for (const f of filters) if ((reason = f.filter(state, n))) break;
    if (reason) reasons[reason] = (reasons[reason] ?? 0) + 1;
    else feasible.push(n);
  }
  if (feasible.length === 0) {
    const parts = Object.entries(reasons).map(([r, c]) => `${c} ${r}`).sort();
    return { message: `0/${total} nodes are available${parts.length ? ': ' + parts.join(', ') : ''}.`, reasons };
  }
  if (feasible.length === 1) return { node: feasible[0].name, feasible: 1 };
  const totals = feasible.map(() => 0);
  for (const s of scores) {
    const v = s.score(state, feasible);
    for (let i = 0; i < feasible.length; i++) totals[i] += v[i] * s.weight;
  }
  let best = 0;
  for (let i = 1; i < feasible.length; i++) if (totals[i] > totals[best]) best = i;
  return { node: feasible[best].name, feasible: feasible.length };
}
