import type { HorizontalPodAutoscalerCondition } from 'kubernetes-types/autoscaling/v2.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { ControllerContext } from '../context.js';
import type { KubeObject } from '../../api/object.js';
import { objectKey, splitKey } from '../../api/object.js';
import { findKind, R } from '../../api/registry.js';
import { labelSelectorMatches, selectorToString } from '../../api/labels.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import type { PodObj } from '../../scheduler/cache.js';
import { Controller } from '../run.js';
import { ResourceMetricsApiSource, type PodMetricsSource } from './metrics.js';
import { applyBehavior, recommend, type HpaHistory, type HpaObj } from './reconcile.js';

const log = componentLogger('hpa-controller');
const rescales = counter({ name: 'skiff_hpa_rescales_total', help: 'HPA rescales by direction', labelNames: ['direction'] as const });

type ScaleTarget = KubeObject & { spec?: { replicas?: number; selector?: LabelSelector } };

export interface HpaControllerOptions {
  metrics?: PodMetricsSource;
  /** how often every HPA is evaluated (default 15 s, --horizontal-pod-autoscaler-sync-period) */
  syncPeriodMs?: number;
}

/**
 * HorizontalPodAutoscaler (autoscaling/v2, cpu Resource metrics): reads the target's scale and
 * pods, asks the metrics source for CPU usage, and sets the scale subresource within min/max,
 * stabilisation windows and rate policies. Times come from ctx.clock.
 */
export function startHpaController(ctx: ControllerContext, opts: HpaControllerOptions = {}): { stop(): void } {
  const hpas = ctx.informers.get<HpaObj>(R.horizontalpodautoscalers);
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('namespace', byNamespace);
  const metrics = opts.metrics ?? new ResourceMetricsApiSource(ctx.client);
  const recorder = ctx.recorder('horizontal-pod-autoscaler');
  const c = new Controller({ name: 'hpa', log });
  const history = new Map<string, HpaHistory>();
  hpas.addHandlers({ add: (h) => c.enqueue(objectKey(h)), update: (o, h) => o.metadata?.generation !== h.metadata?.generation && c.enqueue(objectKey(h)), delete: (h) => history.delete(objectKey(h)) });
  const timer = setInterval(() => {
    for (const h of hpas.list()) c.enqueue(objectKey(h));
  }, opts.syncPeriodMs ?? 15_000);

  const writeStatus = (hpa: HpaObj, status: Record<string, unknown>) => writeHpaStatus(ctx, hpa, status);
  const cond = (type: string, ok: boolean, reason: string, message: string, hpa: HpaObj) => condition(ctx, type, ok, reason, message, hpa);

  const sync = async (key: string): Promise<void> => {
    const hpa = hpas.get(key);
    if (!hpa) return;
    const ns = hpa.metadata!.namespace!;
    const ref = hpa.spec!.scaleTargetRef;
    const info = findKind(ref.apiVersion ?? 'apps/v1', ref.kind);
    if (!info) {
      recorder.event(hpa, 'Warning', 'FailedGetScale', `the server could not find the requested resource ${ref.kind}`);
      return writeStatus(hpa, { conditions: [cond('AbleToScale', false, 'FailedGetScale', `unknown kind ${ref.kind}`, hpa)] });
    }
    let target: ScaleTarget;
    try {
      target = await ctx.client.get<ScaleTarget>(info, ref.name, ns);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      recorder.event(hpa, 'Warning', 'FailedGetScale', `${ref.kind} ${ns}/${ref.name} not found`);
      return writeStatus(hpa, { conditions: [cond('AbleToScale', false, 'FailedGetScale', `${ref.kind} ${ref.name} not found`, hpa)] });
    }
    const current = target.spec?.replicas ?? 1;
    const able = cond('AbleToScale', true, 'SucceededGetScale', 'the HPA controller was able to get the target\'s current scale', hpa);
    if (current === 0) {
      return writeStatus(hpa, { currentReplicas: 0, desiredReplicas: 0, conditions: [able, cond('ScalingActive', false, 'ScalingDisabled', 'scaling is disabled since the replica count of the target is zero', hpa)] });
    }
    const selected = pods.byIndex('namespace', ns).filter((p) => labelSelectorMatches(target.spec?.selector, p.metadata?.labels));
    let cpu: Map<string, number>;
    try {
      cpu = await metrics.podCpu(ns, selectorToString(target.spec?.selector));
    } catch (err) {
      const msg = `failed to get cpu utilization: unable to get metrics for resource cpu: ${String((err as Error).message ?? err)}`;
      recorder.event(hpa, 'Warning', 'FailedGetResourceMetric', msg);
      return writeStatus(hpa, { currentReplicas: current, conditions: [able, cond('ScalingActive', false, 'FailedGetResourceMetric', msg, hpa)] });
    }
    const rec = recommend(hpa, current, selected, cpu);
    if (rec.error) {
      recorder.event(hpa, 'Warning', 'FailedGetResourceMetric', rec.error);
      return writeStatus(hpa, { currentReplicas: current, conditions: [able, cond('ScalingActive', false, 'FailedGetResourceMetric', rec.error, hpa)] });
    }
    let h = history.get(key);
    if (!h) history.set(key, (h = { recommendations: [], scaleEvents: [] }));
    const now = ctx.clock.now();
    const decided = applyBehavior(hpa, current, rec.replicas, h, now);
    const status: Record<string, unknown> = { currentReplicas: current, desiredReplicas: decided.replicas, currentMetrics: rec.metrics };
    if (decided.replicas !== current) {
      await ctx.client.patch(info, ref.name, { spec: { replicas: decided.replicas } }, { namespace: ns, subresource: 'scale', type: 'merge' });
      h.scaleEvents = h.scaleEvents.filter((e) => now - e.at < 3_600_000);
      h.scaleEvents.push({ at: now, delta: decided.replicas - current });
      rescales.inc({ direction: decided.replicas > current ? 'up' : 'down' });
      recorder.event(hpa, 'Normal', 'SuccessfulRescale', `New size: ${decided.replicas}; reason: ${rec.reason}`);
      log.info({ hpa: key, from: current, to: decided.replicas }, 'rescaled');
      status.lastScaleTime = new Date(now).toISOString();
    }
    const limited = decided.limited ? cond('ScalingLimited', true, decided.limited, `the desired replica count was limited (${decided.limited})`, hpa) : cond('ScalingLimited', false, 'DesiredWithinRange', 'the desired count is within the acceptable range', hpa);
    status.conditions = [able, cond('ScalingActive', true, 'ValidMetricFound', 'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)', hpa), limited];
    await writeStatus(hpa, status);
  };
  return c.run({ informers: [hpas, pods], workers: ctx.options.workers, sync, onStop: () => clearInterval(timer) });
}

async function writeHpaStatus(ctx: ControllerContext, hpa: HpaObj, status: Record<string, unknown>): Promise<void> {
  const next = { ...(hpa.status ?? {}), ...status, observedGeneration: hpa.metadata?.generation };
  if (JSON.stringify(next) === JSON.stringify(hpa.status ?? {})) return;
  const { namespace, name } = splitKey(objectKey(hpa));
  await ctx.client.patch(R.horizontalpodautoscalers, name, { status: next }, { namespace, subresource: 'status', type: 'merge' }).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
}

/** A status condition that keeps its lastTransitionTime while its status does not change. */
function condition(ctx: ControllerContext, type: string, ok: boolean, reason: string, message: string, hpa: HpaObj): HorizontalPodAutoscalerCondition {
  const prev = hpa.status?.conditions?.find((c) => c.type === type);
  const status = ok ? 'True' : 'False';
  return { type, status, reason, message, lastTransitionTime: prev?.status === status ? prev.lastTransitionTime : new Date(ctx.clock.now()).toISOString() };
}
