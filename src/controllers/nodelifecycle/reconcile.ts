import type { NodeCondition, Taint, Toleration } from 'kubernetes-types/core/v1.js';
import type { NodeObj, PodObj } from '../../scheduler/cache.js';
import { tolerates } from '../../scheduler/plugins/basic.js';

export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
const OUR_TAINTS = [TAINT_UNREACHABLE, TAINT_NOT_READY];
const WATCHED_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

export type NodeHealth = 'Ready' | 'NotReady' | 'Unknown';

/** Ready when the kubelet says so; Unknown when it has been silent longer than the grace period. */
export function nodeHealth(node: NodeObj, lastHeardMs: number, nowMs: number, graceSeconds: number): NodeHealth {
  if (nowMs - lastHeardMs > graceSeconds * 1000) return 'Unknown';
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return 'Ready';
  if (ready?.status === 'False') return 'NotReady';
  return 'Unknown';
}

/** Conditions after the node went silent: the kubelet-owned ones become Unknown (null when already so). */
export function unknownConditions(node: NodeObj, nowIso: string): NodeCondition[] | null {
  const conds = [...(node.status?.conditions ?? [])];
  let changed = false;
  const out = conds.map((c) => {
    if (!WATCHED_CONDITIONS.includes(c.type) || c.status === 'Unknown') return c;
    changed = true;
    return { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: nowIso };
  });
  if (!conds.some((c) => c.type === 'Ready')) {
    changed = true;
    out.push({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastTransitionTime: nowIso, lastHeartbeatTime: nowIso });
  }
  return changed ? out : null;
}

/**
 * The node's taints for a health: for Unknown/NotReady our taint with both effects (NoSchedule
 * keeps new pods off even when they tolerate NoExecute for a while; NoExecute evicts), other
 * taints untouched, timeAdded kept. null when nothing changes.
 */
export function desiredTaints(node: NodeObj, health: NodeHealth, nowIso: string): Taint[] | null {
  const current = node.spec?.taints ?? [];
  const want = health === 'Unknown' ? TAINT_UNREACHABLE : health === 'NotReady' ? TAINT_NOT_READY : undefined;
  const ours = (t: Taint) => OUR_TAINTS.includes(t.key) && (t.effect === 'NoExecute' || t.effect === 'NoSchedule');
  const keep = current.filter((t) => !ours(t) || t.key === want);
  if (want) {
    for (const effect of ['NoSchedule', 'NoExecute']) if (!keep.some((t) => t.key === want && t.effect === effect)) keep.push({ key: want, effect, timeAdded: nowIso });
  }
  return keep.length === current.length && keep.every((t, i) => t === current[i]) ? null : keep;
}

/**
 * When a pod on a node with NoExecute taints must go: now if some taint is not tolerated, at
 * taint time + the smallest tolerationSeconds of the tolerations used, never if they tolerate it
 * forever. Pods with no toleration for not-ready/unreachable get `defaultSeconds`, as the
 * DefaultTolerationSeconds admission plugin would have given them.
 */
export function evictionTime(pod: PodObj, taints: readonly Taint[], defaultSeconds: number, nowMs: number): number | undefined {
  const tols: Toleration[] = [...(pod.spec?.tolerations ?? [])];
  let at: number | undefined;
  for (const taint of taints) {
    if (taint.effect !== 'NoExecute') continue;
    let used = tols.filter((t) => tolerates(t, taint));
    if (used.length === 0 && OUR_TAINTS.includes(taint.key)) used = [{ key: taint.key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: defaultSeconds }];
    if (used.length === 0) return nowMs;
    if (used.some((t) => t.tolerationSeconds === undefined || t.tolerationSeconds === null)) continue;
    const secs = Math.max(0, Math.min(...used.map((t) => t.tolerationSeconds!)));
    const added = taint.timeAdded ? Date.parse(taint.timeAdded) : nowMs;
    const due = (Number.isNaN(added) ? nowMs : added) + secs * 1000;
    at = at === undefined ? due : Math.min(at, due);
  }
  return at;
}

/** Pods on the node to evict now, and when the next one falls due (for a re-check). */
export function planEvictions(pods: readonly PodObj[], taints: readonly Taint[], defaultSeconds: number, nowMs: number): { evict: PodObj[]; nextAtMs?: number } {
  const evict: PodObj[] = [];
  let nextAtMs: number | undefined;
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp) continue;
    const at = evictionTime(p, taints, defaultSeconds, nowMs);
    if (at === undefined) continue;
    if (at <= nowMs) evict.push(p);
    else nextAtMs = nextAtMs === undefined ? at : Math.min(nextAtMs, at);
  }
  return { evict, nextAtMs };
}
