import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { InformerFactory } from '../../../src/client/factory.js';
import { ApiEventRecorder } from '../../../src/client/events.js';
import type { ApiClient } from '../../../src/client/types.js';
import { defaultControllerOptions, realClock, type ControllerContext, type ControllerOptions } from '../../../src/controllers/context.js';
import { startEndpointSliceController } from '../../../src/controllers/endpointslice/controller.js';
import { startEndpointsController } from '../../../src/controllers/endpoints/controller.js';
import { startServiceAccountController } from '../../../src/controllers/serviceaccount/controller.js';
import { startNodeIpamController } from '../../../src/controllers/nodeipam/controller.js';
import { startLbIpamController } from '../../../src/controllers/lbipam/controller.js';
import { startNodeLifecycleController } from '../../../src/controllers/nodelifecycle/controller.js';
import { startVolumeController } from '../../../src/controllers/volume/controller.js';
import { startDisruptionController } from '../../../src/controllers/disruption/controller.js';
import { evictionPlugin } from '../../../src/controllers/disruption/eviction.js';
import { startHpaController } from '../../../src/controllers/hpa/controller.js';
import { FakeMetricsSource } from '../../../src/controllers/hpa/metrics.js';
import { startScheduler } from '../../../src/scheduler/index.js';
import { FakeKubelet } from './harness.js';

export interface TestCluster {
  client: ApiClient;
  ctx: ControllerContext;
  kubelet: FakeKubelet;
  metrics: FakeMetricsSource;
  dataDir: string;
  close(): Promise<void>;
}

type Extra = (ctx: ControllerContext) => { stop(): void };

/**
 * A real apiserver (in-memory store) with the eviction plugin, this half's controllers, the
 * scheduler and a fake kubelet with `nodes`. `extra` starts more controllers on the same context
 * (the workload controllers, for rollout tests).
 */
export async function startCluster(opts: { nodes?: string[]; options?: Partial<ControllerOptions>; extra?: Extra[]; kubeletCpu?: string; nodeLabels?: (n: string) => Record<string, string> } = {}): Promise<TestCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-cn-'));
  const late: { client?: ApiClient } = {};
  // the plugin is registered while the app is built, before its client exists: hand it a late-bound one
  const lateClient = new Proxy({} as ApiClient, {
    get: (_t, prop) => {
      const target = late.client!;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const api = await startTestApiserver({ hooks: { plugins: [evictionPlugin({ client: lateClient })] } });
  late.client = api.client;
  const client = api.client;
  const informers = new InformerFactory(client);
  const ctx: ControllerContext = {
    client,
    informers,
    recorder: (c) => new ApiEventRecorder(client, c),
    clock: realClock,
    options: { ...defaultControllerOptions, dataDir, workers: 2, lbPool: ['192.0.2.10-192.0.2.11'], ...opts.options },
  };
  const metrics = new FakeMetricsSource();
  const stops = [
    startEndpointSliceController(ctx),
    startEndpointsController(ctx),
    startServiceAccountController(ctx),
    startNodeIpamController(ctx),
    startLbIpamController(ctx),
    startNodeLifecycleController(ctx, { monitorPeriodMs: 100 }),
    startVolumeController(ctx),
    startDisruptionController(ctx),
    startHpaController(ctx, { metrics, syncPeriodMs: 100 }),
    ...(opts.extra ?? []).map((f) => f(ctx)),
  ];
  informers.start();
  const scheduler = await startScheduler({ client, informers, initialBackoffMs: 50, maxBackoffMs: 200, flushIntervalMs: 1000 });
  const kubelet = new FakeKubelet(client, opts.nodes ?? ['node-a', 'node-b', 'node-c'], { cpu: opts.kubeletCpu, labels: opts.nodeLabels });
  await kubelet.start();
  return {
    client,
    ctx,
    kubelet,
    metrics,
    dataDir,
    async close() {
      kubelet.stop();
      await scheduler.stop();
      for (const s of stops) s.stop();
      informers.stop();
      await api.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
