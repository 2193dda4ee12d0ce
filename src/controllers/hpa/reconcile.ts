import type { HorizontalPodAutoscaler, HPAScalingRules, MetricStatus } from 'kubernetes-types/autoscaling/v2.js';
import type { KubeObject } from '../../api/object.js';
import { isPodReady } from '../endpointslice/podutil.js';
import { podRequests, type PodObj } from '../../scheduler/cache.js';
import { parseCpuMilli } from '../../scheduler/quantity.js';

export type HpaObj = KubeObject & HorizontalPodAutoscaler;
export const TOLERANCE = 0.1;

export interface Recommendation {
  replicas: number;
  /** for Events and conditions */
  reason: string;
  metrics: MetricStatus[];
  error?: string;
}

/**
 * Replicas wanted by the CPU metrics of an HPA (the replica calculator of Kubernetes): usage over
 * requests of ready pods with metrics; missing metrics count as 0 % when scaling up and 100 %
 * when scaling down, not-ready pods as 0 % when scaling up; no change within 10 % of target.
 */
export function recommend(hpa: HpaObj, currentReplicas: number, pods: readonly PodObj[], cpu: ReadonlyMap<string, number>): Recommendation {
  let best: Recommendation | undefined;
  for (const m of hpa.spec?.metrics ?? [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }]) {
    if (m.type !== 'Resource' || m.resource?.name !== 'cpu') continue;
    const target = m.resource.target;
    const r = target.type === 'AverageValue' ? byAverageValue(currentReplicas, pods, cpu, parseCpuMilli(target.averageValue as string)) : byUtilization(currentReplicas, pods, cpu, target.averageUtilization ?? 80);
    if (!best || r.error || r.replicas > best.replicas) best = r.error && best ? best : r;
  }
  return best ?? { replicas: currentReplicas, reason: 'no supported metrics', metrics: [], error: 'the HPA has no cpu Resource metric' };
}

const live = (pods: readonly PodObj[]) => pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded');

function byUtilization(current: number, allPods: readonly PodObj[], cpu: ReadonlyMap<string, number>, targetPct: number): Recommendation {
  const pods = live(allPods);
  if (pods.length === 0) return { replicas: current, reason: '', metrics: [], error: 'no pods match the target selector' };
  const req = new Map<string, number>();
  for (const p of pods) {
    const r = podRequests(p).requests.cpu;
    if (r <= 0) return { replicas: current, reason: '', metrics: [], error: `missing request for cpu in pod ${p.metadata?.name}` };
    req.set(p.metadata!.name!, r);
  }
  const ready = pods.filter((p) => isPodReady(p) && cpu.has(p.metadata!.name!));
  const missing = pods.filter((p) => !cpu.has(p.metadata!.name!));
  const unready = pods.filter((p) => !isPodReady(p) && cpu.has(p.metadata!.name!));
  if (ready.length === 0) return { replicas: current, reason: '', metrics: [], error: 'did not receive metrics for any ready pods' };
  const sum = (ps: readonly PodObj[], f: (p: PodObj) => number) => ps.reduce((a, p) => a + f(p), 0);
  const usage = sum(ready, (p) => cpu.get(p.metadata!.name!)!);
  const requests = sum(ready, (p) => req.get(p.metadata!.name!)!);
  const utilization = Math.round((usage * 100) / requests);
  const metrics: MetricStatus[] = [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: utilization, averageValue: `${Math.round(usage / ready.length)}m` } } }];
  let ratio = utilization / targetPct;
  const reason = `cpu resource utilization (percentage of request) ${ratio > 1 ? 'above' : 'below'} target`;
  if (missing.length === 0 && unready.length === 0) {
    if (Math.abs(ratio - 1) <= TOLERANCE) return { replicas: current, reason, metrics };
    return { replicas: Math.ceil(ratio * ready.length), reason, metrics };
  }
  // re-run with pessimistic figures for the pods we know nothing about
  const up = ratio > 1;
  const extraUsage = up ? 0 : sum(missing, (p) => req.get(p.metadata!.name!)!);
  const extraReq = sum(missing, (p) => req.get(p.metadata!.name!)!) + (up ? sum(unready, (p) => req.get(p.metadata!.name!)!) : 0);
  const newRatio = ((usage + extraUsage) * 100) / (requests + extraReq) / targetPct;
  if (Math.abs(newRatio - 1) <= TOLERANCE || (up && newRatio < 1) || (!up && newRatio > 1)) return { replicas: current, reason, metrics };
  ratio = newRatio;
  const count = ready.length + missing.length + (up ? unready.length : 0);
  return { replicas: Math.ceil(ratio * count), reason, metrics };
}

function byAverageValue(current: number, allPods: readonly PodObj[], cpu: ReadonlyMap<string, number>, targetMilli: number): Recommendation {
  const pods = live(allPods).filter((p) => cpu.has(p.metadata!.name!));
  if (pods.length === 0 || targetMilli <= 0) return { replicas: current, reason: '', metrics: [], error: 'did not receive metrics for any pods' };
  const usage = pods.reduce((a, p) => a + cpu.get(p.metadata!.name!)!, 0);
  const avg = usage / pods.length;
  const metrics: MetricStatus[] = [{ type: 'Resource', resource: { name: 'cpu', current: { averageValue: `${Math.round(avg)}m` } } }];
  const ratio = avg / targetMilli;
  const reason = `cpu resource ${ratio > 1 ? 'above' : 'below'} target`;
  if (Math.abs(ratio - 1) <= TOLERANCE) return { replicas: current, reason, metrics };
  return { replicas: Math.ceil(usage / targetMilli), reason, metrics };
}

export const DEFAULT_SCALE_UP: HPAScalingRules = {
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ],
};
export const DEFAULT_SCALE_DOWN: HPAScalingRules = { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] };

/** What the controller remembers per HPA between syncs. */
export interface HpaHistory {
  recommendations: { at: number; replicas: number }[];
  scaleEvents: { at: number; delta: number }[];
}

/**
 * Applies behavior: stabilisation (scale down to the highest recommendation in the down
 * window, up to the lowest in the up window), then the rate policies of the period, then
 * min/max. Returns the replicas to set and whether a limit applied.
 */
export function applyBehavior(hpa: HpaObj, current: number, recommended: number, history: HpaHistory, nowMs: number): { replicas: number; limited?: string } {
  const up = { ...DEFAULT_SCALE_UP, ...(hpa.spec?.behavior?.scaleUp ?? {}) };
  const down = { ...DEFAULT_SCALE_DOWN, ...(hpa.spec?.behavior?.scaleDown ?? {}) };
  const maxWindow = Math.max(up.stabilizationWindowSeconds ?? 0, down.stabilizationWindowSeconds ?? 0) * 1000;
  history.recommendations = history.recommendations.filter((r) => nowMs - r.at <= maxWindow);
  history.recommendations.push({ at: nowMs, replicas: recommended });
  const inWindow = (s: number | undefined) => history.recommendations.filter((r) => nowMs - r.at <= (s ?? 0) * 1000).map((r) => r.replicas);
  const upFloor = Math.min(...inWindow(up.stabilizationWindowSeconds));
  const downCeil = Math.max(...inWindow(down.stabilizationWindowSeconds));
  let desired = current;
  if (recommended > current) desired = Math.max(current, Math.min(recommended, upFloor));
  else if (recommended < current) desired = Math.min(current, Math.max(recommended, downCeil));
  let limited: string | undefined;
  if (desired > current) {
    const limit = rateLimit(up, current, history, nowMs, +1);
    if (desired > limit) {
      desired = limit;
      limited = 'ScaleUpLimit';
    }
  } else if (desired < current) {
    const limit = rateLimit(down, current, history, nowMs, -1);
    if (desired < limit) {
      desired = limit;
      limited = 'ScaleDownLimit';
    }
  }
  const min = hpa.spec?.minReplicas ?? 1;
  const max = hpa.spec?.maxReplicas ?? desired;
  if (desired > max) return { replicas: max, limited: 'TooManyReplicas' };
  if (desired < min) return { replicas: min, limited: 'TooFewReplicas' };
  return { replicas: desired, limited };
}

function rateLimit(rules: HPAScalingRules, current: number, history: HpaHistory, nowMs: number, dir: 1 | -1): number {
  if (rules.selectPolicy === 'Disabled') return current;
  const limits = (rules.policies ?? []).map((p) => {
    const changed = history.scaleEvents.filter((e) => nowMs - e.at <= p.periodSeconds * 1000 && Math.sign(e.delta) === dir).reduce((a, e) => a + e.delta, 0);
    const start = current - changed; // replicas at the start of the period
    if (dir > 0) return p.type === 'Pods' ? start + p.value : Math.ceil(start * (1 + p.value / 100));
    return p.type === 'Pods' ? start - p.value : Math.floor(start * (1 - p.value / 100));
  });
  if (limits.length === 0) return dir > 0 ? Infinity : 0;
  const pickMax = (rules.selectPolicy ?? 'Max') === 'Max';
  return dir > 0 ? (pickMax ? Math.max(...limits) : Math.min(...limits)) : pickMax ? Math.min(...limits) : Math.max(...limits);
}
