// Bench: the control plane on the real in-process apiserver (in-memory SQLite, loopback HTTP).
//  1. a 100-replica Deployment: ms from create to all pods created, bound (scheduler), Ready (fake
//     kubelet), the Deployment rolled out, and its Service's EndpointSlices complete.
//  2. scheduler throughput: 500 pending pods over 100 fake nodes, pods/s bound.
// Prints JSON. Run: node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/control-plane.ts
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../src/api/object.js';
import { R } from '../../src/api/registry.js';
import { FakeEventRecorder } from '../../src/client/events.js';
import { InformerFactory } from '../../src/client/factory.js';
import type { ApiClient } from '../../src/client/types.js';
import { defaultControllerOptions, realClock } from '../../src/controllers/context.js';
import { startControllerManager } from '../../src/controllers/manager.js';
import { startScheduler } from '../../src/scheduler/index.js';
import { startTestApiserver } from '../../test/helpers/apiserver.js';
import { createNodes, startFakeKubelet } from '../../test/integration/controllers-workloads/harness.js';

const REPLICAS = Number(process.env.REPLICAS ?? 100);
const NODES = Number(process.env.NODES ?? 100);
const SCHED_PODS = Number(process.env.SCHED_PODS ?? 500);

type P = Pod & KubeObject;

async function waitFor(what: string, fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function deploymentBench(client: ApiClient): Promise<Record<string, number>> {
  const informers = new InformerFactory(client);
  const ctx = { client, informers, recorder: () => new FakeEventRecorder(), clock: realClock, options: { ...defaultControllerOptions, workers: 4 } };
  const pods = informers.get<P>(R.pods);
  const nodes = Array.from({ length: NODES }, (_, i) => `node-${i}`);
  await createNodes(client, nodes);
  const stopKubelet = startFakeKubelet(client, pods, nodes, () => 'run', { bind: false });
  const mgr = await startControllerManager(ctx, { controllers: ['replicaset', 'deployment', 'endpointslice'] });
  const sched = await startScheduler({ client, informers });
  const slices = informers.get(R.endpointslices);
  const deps = informers.get(R.deployments);
  informers.start();
  await informers.waitForSync();
  try {
    await client.create(R.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } }, 'default');
    const mine = (): P[] => pods.list('default').filter((p) => p.metadata?.labels?.app === 'web');
    const t0 = performance.now();
    await client.create(
      R.deployments,
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: REPLICAS, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'skiff/pause:3.9', ports: [{ containerPort: 8080 }] }] } } } },
      'default',
    );
    const out: Record<string, number> = {};
    const mark = async (name: string, fn: () => boolean): Promise<void> => {
      await waitFor(name, fn);
      out[name] = Math.round(performance.now() - t0);
    };
    await mark('allPodsCreatedMs', () => mine().length >= REPLICAS);
    await mark('allPodsBoundMs', () => mine().filter((p) => p.spec?.nodeName).length >= REPLICAS);
    await mark('allPodsReadyMs', () => mine().filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length >= REPLICAS);
    await mark('deploymentRolledOutMs', () => {
      const d = deps.get('default/web') as { status?: { availableReplicas?: number; updatedReplicas?: number } } | undefined;
      return d?.status?.availableReplicas === REPLICAS && d.status.updatedReplicas === REPLICAS;
    });
    await mark('endpointSlicesCompleteMs', () => {
      const eps = slices
        .list('default')
        .filter((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === 'web')
        .flatMap((s) => (s.endpoints as { conditions?: { ready?: boolean } }[] | undefined) ?? []);
      return eps.filter((e) => e.conditions?.ready).length >= REPLICAS;
    });
    return out;
  } finally {
    stopKubelet();
    await sched.stop();
    await mgr.stop();
  }
}

async function schedulerBench(client: ApiClient): Promise<Record<string, number>> {
  const informers = new InformerFactory(client);
  const pods = informers.get<P>(R.pods);
  await client.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sched' } });
  for (let i = 0; i < SCHED_PODS; i++) {
    await client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, namespace: 'sched' }, spec: { containers: [{ name: 'c', image: 'i', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } }, 'sched');
  }
  informers.start();
  await informers.waitForSync();
  const t0 = performance.now();
  const sched = await startScheduler({ client, informers });
  try {
    await waitFor('all scheduled', () => pods.list('sched').filter((p) => p.spec?.nodeName).length >= SCHED_PODS, 120_000);
    const ms = performance.now() - t0;
    return { pods: SCHED_PODS, nodes: NODES, ms: Math.round(ms), podsPerSecond: Math.round((SCHED_PODS / ms) * 1000) };
  } finally {
    await sched.stop();
    informers.stop();
  }
}

const api = await startTestApiserver();
try {
  const deployment = await deploymentBench(api.client);
  const scheduler = await schedulerBench(api.client);
  console.log(JSON.stringify({ replicas: REPLICAS, nodes: NODES, deployment, scheduler, targets: { boundWithinMs: 2000, schedulerPodsPerSecond: 200 } }, null, 2));
} finally {
  await api.close();
}
