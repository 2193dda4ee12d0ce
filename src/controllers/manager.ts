/**
 * The controller manager: starts the named controllers (all by default) on one shared informer
 * factory, then starts the informers and waits for their caches to sync.
 */
import { componentLogger } from '../util/log.js';
import type { ControllerContext, ControllerStart } from './context.js';
import { startReplicaSetController } from './replicaset/controller.js';
import { startDeploymentController } from './deployment/controller.js';
import { startGarbageCollector } from './garbagecollector/controller.js';
import { startNamespaceController } from './namespace/controller.js';
import { startJobController } from './job/controller.js';
import { startCronJobController } from './cronjob/controller.js';
import { startDaemonSetController } from './daemonset/controller.js';
import { startStatefulSetController } from './statefulset/controller.js';
import { startEndpointsController } from './endpoints/controller.js';
import { startEndpointSliceController } from './endpointslice/controller.js';
import { startServiceAccountController } from './serviceaccount/controller.js';
import { startClusterRoleAggregationController } from './clusterroleaggregation/controller.js';
import { startNodeIpamController } from './nodeipam/controller.js';
import { startNodeLifecycleController } from './nodelifecycle/controller.js';
import { startLbIpamController } from './lbipam/controller.js';
import { startDisruptionController } from './disruption/controller.js';
import { startVolumeController } from './volume/controller.js';
import { startHpaController } from './hpa/controller.js';

const log = componentLogger('controller-manager');

/** Knobs tests turn down (defaults are Kubernetes' values). */
export interface WorkloadTuning {
  /** Job: first delay before re-creating a failed pod, doubling per failure (default 10 s) */
  jobBackoffBaseMs?: number;
  /** CronJob: how often every CronJob is re-checked against the clock (default 10 s) */
  cronResyncMs?: number;
  /** Namespace: how often a terminating namespace is re-checked while objects remain (default 1 s) */
  namespaceRecheckMs?: number;
}

type Start = (ctx: ControllerContext, tuning: WorkloadTuning) => ReturnType<ControllerStart>;
const plain = (fn: ControllerStart): Start => (ctx) => fn(ctx);

/** Every controller by name, in start order. */
export const CONTROLLERS: Record<string, Start> = {
  replicaset: plain(startReplicaSetController),
  deployment: plain(startDeploymentController),
  statefulset: plain(startStatefulSetController),
  daemonset: plain(startDaemonSetController),
  job: (ctx, t) => startJobController(ctx, t.jobBackoffBaseMs !== undefined ? { backoffBaseMs: t.jobBackoffBaseMs } : {}),
  cronjob: (ctx, t) => startCronJobController(ctx, { resyncMs: t.cronResyncMs }),
  garbagecollector: plain(startGarbageCollector),
  namespace: (ctx, t) => startNamespaceController(ctx, { recheckMs: t.namespaceRecheckMs }),
  // the other half of issue 4 (their folders, imported as they landed)
  endpoints: plain(startEndpointsController),
  endpointslice: plain(startEndpointSliceController),
  serviceaccount: plain(startServiceAccountController),
  clusterroleaggregation: plain(startClusterRoleAggregationController),
  nodeipam: plain(startNodeIpamController),
  nodelifecycle: plain(startNodeLifecycleController),
  lbipam: plain((ctx) => startLbIpamController(ctx)),
  disruption: plain(startDisruptionController),
  volume: plain((ctx) => startVolumeController(ctx)),
  hpa: plain((ctx) => startHpaController(ctx)),
};

export async function startControllerManager(ctx: ControllerContext, opts: { controllers?: string[]; tuning?: WorkloadTuning } = {}): Promise<{ stop(): Promise<void> }> {
  const names = opts.controllers ?? Object.keys(CONTROLLERS);
  const unknown = names.filter((n) => !CONTROLLERS[n]);
  if (unknown.length) throw new Error(`unknown controllers: ${unknown.join(', ')} (known: ${Object.keys(CONTROLLERS).join(', ')})`);
  const running: { name: string; stop(): void }[] = [];
  try {
    for (const name of names) {
      const c = await CONTROLLERS[name](ctx, opts.tuning ?? {});
      running.push({ name, stop: () => c.stop() });
    }
  } catch (err) {
    for (const r of running) r.stop();
    throw err;
  }
  ctx.informers.start();
  await ctx.informers.waitForSync();
  log.info({ controllers: names }, 'controllers started, caches synced');
  return {
    stop: async () => {
      for (const r of running.reverse()) {
        try {
          r.stop();
        } catch (err) {
          log.warn({ controller: r.name, err: String(err) }, 'controller stop failed');
        }
      }
      ctx.informers.stop();
    },
  };
}
