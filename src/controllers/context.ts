import type { InformerFactory } from '../client/factory.js';
import type { EventRecorder } from '../client/events.js';
import type { ApiClient } from '../client/types.js';

/** A clock controllers read instead of Date.now(), so tests can move time (CronJob, node lifecycle, HPA). */
export interface Clock {
  now(): number;
}
export const realClock: Clock = { now: () => Date.now() };

/** Options of `skiff server` / `skiff up` that controllers read. */
export interface ControllerOptions {
  podCIDR: string; // cluster pod range, a /24 per node from it (default 10.244.0.0/16)
  nodeCIDRMaskSize: number; // 24
  serviceCIDR: string; // 10.96.0.0/12
  lbPool?: string[]; // LoadBalancer address pool: CIDRs or ranges a-b
  dataDir: string; // hostPath provisioner directories live under DIR/volumes
  nodeMonitorGracePeriodSeconds: number; // 40
  podEvictionTimeoutSeconds: number; // default toleration for unreachable/not-ready, 300
  workers: number;
}

export const defaultControllerOptions: ControllerOptions = {
  podCIDR: '10.244.0.0/16',
  nodeCIDRMaskSize: 24,
  serviceCIDR: '10.96.0.0/12',
  dataDir: '/var/lib/skiff',
  nodeMonitorGracePeriodSeconds: 40,
  podEvictionTimeoutSeconds: 300,
  workers: 2,
};

/** What every controller's start function gets. Informers come from the shared factory. */
export interface ControllerContext {
  client: ApiClient;
  informers: InformerFactory;
  recorder: (component: string) => EventRecorder;
  clock: Clock;
  options: ControllerOptions;
}

/** Every controller: `start<Name>Controller(ctx)` registers informer handlers and workers, returns stop. */
export type ControllerStart = (ctx: ControllerContext) => { stop(): void } | Promise<{ stop(): void }>;
