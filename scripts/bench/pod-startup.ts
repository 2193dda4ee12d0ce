// Bench: pod startup latency of the kubelet. Creates N pods at once (default 30) bound to one node
// and reports p50/p99 from the create call to the pod's Ready condition, for the docker and the
// netns runtimes. Real in-process apiserver (SQLite in memory), kubelet host = a throwaway netns.
// Prints JSON. Run as root (docker + skiff images for the docker runtime: scripts/images.sh):
//   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/pod-startup.ts
// Env: POD_STARTUP_N=30  POD_STARTUP_RUNTIMES=docker,netns
// Anchor: the Kubernetes SLO is p99 <= 5 s without image pulls; targets here p99 <= 3 s (docker)
// and <= 300 ms (netns).
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../src/api/registry.js';
import { createNetns, deleteNetns, uniqueName } from '../../src/host/netns.js';
import { startKubelet } from '../../src/kubelet/index.js';
import type { Kube } from '../../src/kubelet/kube.js';
import { startTestApiserver } from '../../test/helpers/apiserver.js';
import { removeNetnsRuntimeState, removeNodeContainers } from '../../test/integration/kubelet/harness.js';

const N = Number(process.env.POD_STARTUP_N ?? 30);
const RUNTIMES = (process.env.POD_STARTUP_RUNTIMES ?? 'docker,netns').split(',') as ('docker' | 'netns')[];

function pct(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
}

async function run(runtime: 'docker' | 'netns'): Promise<Record<string, unknown>> {
  const api = await startTestApiserver();
  const nodeName = uniqueName('bench');
  const nsName = uniqueName('sk-bench');
  const host = await createNetns(nsName);
  const dataDir = await mkdtemp(join(tmpdir(), 'skiff-bench-'));
  let kubelet: { stop(): Promise<void> } | undefined;
  try {
    await api.client.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).catch(() => undefined);
    await api.client.create(R.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName }, spec: { podCIDR: '10.244.60.0/24' } });
    kubelet = await startKubelet({ client: api.client, host, nodeName, nodeIP: '192.0.2.60', dataDir, serverPort: 0, runtime });
    const created = new Map<string, number>();
    const ready = new Map<string, number>();
    const done = new Promise<void>((resolve) => {
      const w = api.client.watch<Kube<Pod>>(R.pods, { namespace: 'default' }, (ev) => {
        const p = ev.object;
        const name = p.metadata?.name ?? '';
        if (!ready.has(name) && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
          ready.set(name, performance.now());
          if (ready.size === N) { w.stop(); resolve(); }
        }
      });
    });
    const command = ['sleep', '3600']; // busybox in the image (docker), the host's sleep (netns)
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const name = `bench-${i}`;
      created.set(name, performance.now());
      await api.client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
        spec: { nodeName, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'skiff/busybox:1.36', command }] } } as Kube<Pod>, 'default');
    }));
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${ready.size}/${N} pods Ready after 120 s`)), 120_000))]);
    const lat = [...ready.entries()].map(([n, t]) => t - created.get(n)!).sort((a, b) => a - b);
    return { runtime, pods: N, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), maxMs: Math.round(lat[lat.length - 1]), allReadyMs: Math.round(Math.max(...ready.values()) - t0) };
  } finally {
    await kubelet?.stop();
    if (runtime === 'docker') await removeNodeContainers(nodeName);
    await removeNetnsRuntimeState(join(dataDir, 'netns-runtime'));
    await deleteNetns(nsName);
    await rm(dataDir, { recursive: true, force: true });
    await api.close();
  }
}

const results: Record<string, unknown>[] = [];
for (const r of RUNTIMES) {
  if (r === 'docker' && (await execa('docker', ['image', 'inspect', 'skiff/pause:3.9'], { reject: false })).exitCode !== 0) {
    results.push({ runtime: r, skipped: 'docker or skiff/pause:3.9 not available (scripts/images.sh)' });
    continue;
  }
  results.push(await run(r));
}
console.log(JSON.stringify({ bench: 'pod-startup', cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), targets: { dockerP99Ms: 3000, netnsP99Ms: 300 }, results }, null, 2));
