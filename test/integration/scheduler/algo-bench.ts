// Bench (not a test): scheduler algorithm throughput without an apiserver (FakeApiClient, a
// binder that patches the fake), 100 nodes, N pods. Prints JSON. Runs only with SKIFF_BENCH=1
// (tap picks up every file under test/ and would otherwise run it):
//   SKIFF_BENCH=1 node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs test/integration/scheduler/algo-bench.ts
// `cycle` is the algorithm without any API: CPU us per scheduling cycle (filters, scores, assume)
// over the same nodes with PLACED pods already on them (default 5000).
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { InformerFactory } from '../../../src/client/factory.js';
import { FakeEventRecorder } from '../../../src/client/events.js';
import { Scheduler, type Binder } from '../../../src/scheduler/scheduler.js';
import { SchedulerCache, toPodInfo, type NodeObj, type PodObj } from '../../../src/scheduler/cache.js';
import { schedulePod } from '../../../src/scheduler/framework.js';
import { defaultFilters, defaultScores } from '../../../src/scheduler/plugins/index.js';

/** CPU us per cycle with `placed` pods of 50 ReplicaSets on 100 nodes. */
function cycleBench(nodes: number, placed: number, cycles = 2000): { placed: number; usPerCycle: number } {
  const cache = new SchedulerCache();
  for (let i = 0; i < nodes; i++) cache.upsertNode({ metadata: { name: `n${i}`, labels: { zone: `z${i % 3}` } }, status: { allocatable: { cpu: '640', memory: '2560Gi', pods: '1000' } } } as NodeObj);
  const pod = (name: string, owner: string, nodeName?: string) =>
    ({ metadata: { name, namespace: 'default', uid: name, labels: { app: owner }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: owner, controller: true }] }, spec: { nodeName, containers: [{ name: 'c', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } }) as PodObj;
  for (let i = 0; i < placed; i++) cache.upsertPod(pod(`p${i}`, `rs${i % 50}`, `n${i % nodes}`));
  const lookups = { pvc: () => undefined, pv: () => undefined };
  const t0 = process.cpuUsage();
  for (let i = 0; i < cycles; i++) {
    const p = pod(`new${i}`, `rs${i % 50}`);
    const r = schedulePod({ pod: toPodInfo(p), nodes: cache.nodeList(), lookups, data: new Map() }, defaultFilters, defaultScores);
    if (r.node) cache.assume(p, r.node);
  }
  const d = process.cpuUsage(t0);
  return { placed, usPerCycle: Math.round((d.user + d.system) / cycles) };
}

async function main(): Promise<void> {
  const NODES = Number(process.env.NODES ?? 100);
  const PODS = Number(process.env.PODS ?? 2000);
  const client = new FakeApiClient();
  const binder: Binder = { bind: async (p, n) => void (await client.patch(R.pods, p.metadata!.name!, { spec: { nodeName: n } }, { namespace: 'default' })) };
  for (let i = 0; i < NODES; i++) await client.create(R.nodes, { metadata: { name: `n${i}`, labels: { zone: `z${i % 3}` } }, status: { allocatable: { cpu: '64', memory: '256Gi', pods: '110' } } });
  const informers = new InformerFactory(client);
  const s = new Scheduler({ client, informers, recorder: new FakeEventRecorder(), binder });
  informers.start();
  await informers.waitForSync();
  await s.start();
  const owner = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs', controller: true }];
  const t0 = performance.now();
  for (let i = 0; i < PODS; i++) await client.create(R.pods, { metadata: { name: `p${i}`, namespace: 'default', ownerReferences: owner, labels: { app: 'x' } }, spec: { containers: [{ name: 'c', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } });
  const pods = informers.get<PodObj>(R.pods);
  while (pods.list().filter((p) => p.spec?.nodeName).length < PODS) await new Promise((r) => setTimeout(r, 5));
  const ms = performance.now() - t0;
  await s.stop();
  informers.stop();
  const cycle = cycleBench(NODES, Number(process.env.PLACED ?? 5000));
  console.log(JSON.stringify({ nodes: NODES, pods: PODS, ms: Math.round(ms), podsPerSecond: Math.round((PODS / ms) * 1000), cycle }));
}

if (process.env.SKIFF_BENCH === '1') await main();
