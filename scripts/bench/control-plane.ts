// Bench: the control plane on the real in-process apiserver (in-memory SQLite, loopback HTTP).
//  1. a 100-replica Deployment: ms from create to all pods created, bound (scheduler), Ready (fake
//     kubelet), the Deployment rolled out, and its Service's EndpointSlices complete.
//  2. scheduler throughput: 500 pending pods over 100 fake nodes, pods/s bound.
// Every phase also reports the process CPU it took (apiserver, controllers and scheduler share one
// process, as in `skiff up`). CPU_PROFILE=1 adds a sampling profile of the scheduler phase split by
// component (apiserver+store, scheduler, client, runtime), in CPU ms per bound pod (CPU_PROFILE_OUT=FILE
// also writes the profile).
// Prints JSON. Run: node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/control-plane.ts
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Counter } from 'prom-client';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../src/api/object.js';
import { R } from '../../src/api/registry.js';
import { FakeEventRecorder } from '../../src/client/events.js';
import { InformerFactory } from '../../src/client/factory.js';
import type { ApiClient } from '../../src/client/types.js';
import { defaultControllerOptions, realClock } from '../../src/controllers/context.js';
import { startControllerManager } from '../../src/controllers/manager.js';
import { startScheduler } from '../../src/scheduler/index.js';
import { registry } from '../../src/util/metrics.js';
import { startTestApiserver } from '../../test/helpers/apiserver.js';
import { createNodes, startFakeKubelet } from '../../test/integration/controllers-workloads/harness.js';

const REPLICAS = Number(process.env.REPLICAS ?? 100);
const NODES = Number(process.env.NODES ?? 100);
const SCHED_PODS = Number(process.env.SCHED_PODS ?? 500);

type P = Pod & KubeObject;

/** CPU ms (user + system) of this process since `from`. */
const cpuMs = (from: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(from);
  return Math.round((d.user + d.system) / 1000);
};

/** Which part of skiff a profile frame belongs to, by its file. */
function componentOf(url: string): string | undefined {
  const m = /\/src\/([a-z]+)\//.exec(url);
  if (m) return m[1] === 'store' ? 'apiserver' : m[1];
  if (/\/node_modules\/(fastify|@fastify|avvio|find-my-way|light-my-request|better-sqlite3|fast-json-stringify|secure-json-parse|toad-cache)\//.test(url)) return 'apiserver';
  if (/\/(scripts|test)\//.test(url)) return 'bench';
  return undefined;
}

/** Write requests the apiserver served so far, by `verb resource` (its skiff_apiserver_requests_total). */
async function apiWrites(): Promise<Record<string, number>> {
  const m = registry.getSingleMetric('skiff_apiserver_requests_total') as Counter<string> | undefined;
  const out: Record<string, number> = {};
  for (const v of (await m?.get())?.values ?? []) {
    if (['get', 'list', 'watch'].includes(String(v.labels.verb))) continue;
    const k = `${v.labels.verb} ${v.labels.resource}`;
    out[k] = (out[k] ?? 0) + v.value;
  }
  return out;
}

const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/**
 * Shares of a V8 CPU profile's busy samples, each attributed to the nearest skiff frame up the stack
 * (JSON.parse, http parsing and the like count for the code that called them); what has no skiff
 * frame at all (GC, the event loop, socket I/O) is `runtime`. Samples are counted, not timed: on a
 * loaded machine a sample's time includes the time the process was not running.
 */
function cpuShares(profile: { nodes: ProfileNode[]; samples: number[] }): Record<string, number> {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, string>();
  const classify = (id: number): string => {
    const known = memo.get(id);
    if (known) return known;
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName;
    let c = fn === '(idle)' ? 'idle' : fn === '(garbage collector)' ? 'runtime' : componentOf(n.callFrame.url);
    if (!c) c = parent.has(id) ? classify(parent.get(id)!) : 'runtime';
    if (c === 'root') c = 'runtime';
    memo.set(id, c);
    return c;
  };
  const counts: Record<string, number> = {};
  for (const id of profile.samples) {
    const c = classify(id);
    counts[c] = (counts[c] ?? 0) + 1;
  }
  delete counts.idle;
  const busy = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / busy]));
}

async function waitFor(what: string, fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function deploymentBench(client: ApiClient): Promise<Record<string, unknown>> {
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
    const out: Record<string, number | Record<string, number>> = {};
    const cpu0 = process.cpuUsage();
    const writes0 = await apiWrites();
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
    out.cpuMs = cpuMs(cpu0);
    // every write the rollout took (the Scheduled events may still be on their way)
    out.apiWrites = diff(writes0, await apiWrites());
    return out;
  } finally {
    stopKubelet();
    await sched.stop();
    await mgr.stop();
  }
}

async function schedulerBench(client: ApiClient): Promise<Record<string, unknown>> {
  const informers = new InformerFactory(client);
  const pods = informers.get<P>(R.pods);
  await client.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sched' } });
  for (let i = 0; i < SCHED_PODS; i++) {
    await client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, namespace: 'sched' }, spec: { containers: [{ name: 'c', image: 'i', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } }, 'sched');
  }
  informers.start();
  await informers.waitForSync();
  let bound = 0;
  pods.addHandlers({ update: (o, n) => void (!o.spec?.nodeName && n.spec?.nodeName && n.metadata?.namespace === 'sched' && bound++) });
  const profiler = process.env.CPU_PROFILE === '1' ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sched = await startScheduler({ client, informers });
  try {
    await waitFor('all scheduled', () => bound >= SCHED_PODS, 120_000);
    const ms = performance.now() - t0;
    const cpu = cpuMs(cpu0);
    const out: Record<string, unknown> = { pods: SCHED_PODS, nodes: NODES, ms: Math.round(ms), podsPerSecond: Math.round((SCHED_PODS / ms) * 1000), cpuMs: cpu, cpuMsPerPod: +(cpu / SCHED_PODS).toFixed(2) };
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      if (process.env.CPU_PROFILE_OUT) writeFileSync(process.env.CPU_PROFILE_OUT, JSON.stringify(profile));
      const shares = cpuShares(profile as unknown as Parameters<typeof cpuShares>[0]);
      out.cpuMsPerPodByComponent = Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, +((v * cpu) / SCHED_PODS).toFixed(3)]));
      profiler.disconnect();
    }
    return out;
  } finally {
    await sched.stop();
    informers.stop();
  }
}

const api = await startTestApiserver();
try {
  const deployment = await deploymentBench(api.client);
  const scheduler = await schedulerBench(api.client);
  console.log(JSON.stringify({ replicas: REPLICAS, nodes: NODES, loadavg: os.loadavg().map((l) => +l.toFixed(2)), deployment, scheduler, targets: { boundWithinMs: 2000, schedulerPodsPerSecond: 200 } }, null, 2));
} finally {
  await api.close();
}
