// Bench: skiff's proxy rule layout vs a kube-proxy-shaped one, with real iptables-restore in a
// throwaway netns, on both backends. Prints JSON. Run as root: scripts/bench/proxy [--full-peer]
//   full sync and one-Service change at 1,000 / 5,000 / 10,000 Services x 10 endpoints;
//   render time; EndpointSlice change -> rules in the kernel (p50/p99) through the real Proxier.
// The kube-proxy-shaped peer on nft takes minutes above 1,000 Services (issue: 149 s at 5,000,
// > 12 min at 10,000), so it only runs there with --full-peer.
// Env: PROXY_BENCH_SIZES=1000,5000 PROXY_BENCH_BACKENDS=nft PROXY_BENCH_ONLY=sizes|latency
//      PROXY_BENCH_LATENCY_SERVICES=10000. Restores report wall and CPU (user+sys) time: on a
//      loaded machine the CPU figures are the better estimate of unloaded wall time.
import { cpus, loadavg, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { R } from '../../src/api/registry.js';
import { FakeApiClient } from '../../src/client/fake.js';
import { createNetns, deleteNetns, uniqueName } from '../../src/host/netns.js';
import { viaExecHelper } from '../../src/host/exec-helper.js';
import { HostIptables, type IptablesBackend } from '../../src/host/iptables.js';
import type { LocalHost } from '../../src/host/host.js';
import { hash16 } from '../../src/proxy/chains.js';
import { makeService, makeSlice } from '../../src/proxy/fixtures.js';
import { startProxy, type SyncReport } from '../../src/proxy/index.js';
import type { EndpointInfo, ProxySnapshot, ServicePortInfo } from '../../src/proxy/model.js';
import { assembleRuleset, isLargeCluster, renderRestore, renderRestoreChanges, renderServicePort, sharedFragmentsDiffer, type RenderContext, type ServiceRules } from '../../src/proxy/render.js';

const SIZES = (process.env.PROXY_BENCH_SIZES ?? '1000,5000,10000').split(',').map(Number);
const LATENCY_SERVICES = Number(process.env.PROXY_BENCH_LATENCY_SERVICES ?? 10000);
const EPS = 10;
const fullPeer = process.argv.includes('--full-peer');
/** The context the Proxier renders n Services with (large-cluster mode above 1,000 endpoints). */
const ctxFor = (n: number): RenderContext => ({ nodeName: 'bench-node', clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12', largeCluster: isLargeCluster(n * EPS) });

const svcIP = (i: number) => `10.${96 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`;
const epIP = (i: number, j: number) => {
  const n = i * EPS + j + 1;
  return `10.${128 + (n >>> 16)}.${(n >>> 8) & 255}.${n & 255}`;
};

function snapshot(n: number): ProxySnapshot {
  const snap: ProxySnapshot = { services: new Map(), endpoints: new Map() };
  for (let i = 0; i < n; i++) {
    const key = `ns${i % 50}/svc${i}:http/TCP`;
    const sp: ServicePortInfo = {
      key, namespace: `ns${i % 50}`, name: `svc${i}`, portName: 'http', protocol: 'TCP', port: 80, clusterIP: svcIP(i),
      externalIPs: [], loadBalancerIPs: [], loadBalancerSourceRanges: [], affinitySeconds: 0, externalPolicyLocal: false, internalPolicyLocal: false,
    };
    snap.services.set(key, sp);
    snap.endpoints.set(key, Array.from({ length: EPS }, (_, j): EndpointInfo => ({ ip: epIP(i, j), port: 8080, ready: true, serving: true, terminating: false, nodeName: `node${j % 3}` })));
  }
  return snap;
}

/** The peer: kube-proxy's iptables layout (chain per service port AND per endpoint), SKIFF-KP- names. */
function renderKubeProxyShape(snap: ProxySnapshot, only?: string): string {
  const nat: string[] = [];
  const chains: string[] = [':SKIFF-KP-SERVICES - [0:0]', ':SKIFF-KP-MARK-MASQ - [0:0]'];
  const services: string[] = [];
  for (const [key, sp] of snap.services) {
    const svc = `SKIFF-KP-SVC-${hash16(key)}`.slice(0, 28);
    const cmt = `-m comment --comment "${sp.namespace}/${sp.name}:${sp.portName}`;
    services.push(`-A SKIFF-KP-SERVICES ${cmt} cluster IP" -d ${sp.clusterIP}/32 -p tcp -m tcp --dport 80 -j ${svc}`);
    if (only && key !== only) continue;
    const eps = snap.endpoints.get(key) ?? [];
    chains.push(`:${svc} - [0:0]`);
    nat.push(`-A ${svc} ${cmt} cluster IP" ! -s 10.244.0.0/16 -d ${sp.clusterIP}/32 -p tcp -m tcp --dport 80 -j SKIFF-KP-MARK-MASQ`);
    eps.forEach((ep, i) => {
      const sep = `SKIFF-KP-SEP-${hash16(`${key}>${ep.ip}`)}`.slice(0, 28);
      chains.push(`:${sep} - [0:0]`);
      const left = eps.length - i;
      const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
      nat.push(`-A ${svc} ${cmt} -> ${ep.ip}:8080"${stat} -j ${sep}`);
      nat.push(`-A ${sep} ${cmt}" -s ${ep.ip}/32 -j SKIFF-KP-MARK-MASQ`);
      nat.push(`-A ${sep} ${cmt}" -m tcp -p tcp -j DNAT --to-destination ${ep.ip}:8080`);
    });
  }
  return ['*nat', ...chains, '-A SKIFF-KP-MARK-MASQ -j MARK --or-mark 0x4000', ...services, ...nat, 'COMMIT', ''].join('\n');
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, round(performance.now() - t0)];
}

/** One real restore: wall time and the restore process's CPU time (user+sys; robust to a loaded box). */
async function restoreTimed(host: LocalHost, backend: IptablesBackend, text: string): Promise<{ wallMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const res = await host.exec('/usr/bin/time', ['-f', 'CPU %U %S', `iptables-${backend}-restore`, '-w', '5', '--noflush'], { input: text, timeoutMs: 60 * 60_000 });
  const wallMs = round(performance.now() - t0);
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(res.stderr);
  return { wallMs, cpuMs: m ? round((Number(m[1]) + Number(m[2])) * 1000) : -1 };
}

const round = (x: number) => Math.round(x * 10) / 10;

/** CPU time (ms) of a synchronous in-process step. */
function cpuOf<T>(fn: () => T): [T, number, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = fn();
  const c = process.cpuUsage(c0);
  return [r, round(performance.now() - t0), round((c.user + c.system) / 1000)];
}

async function withNetns<T>(fn: (host: LocalHost) => Promise<T>): Promise<T> {
  const name = uniqueName('sk-pxbench');
  const host = await createNetns(name);
  try {
    return await fn(host);
  } finally {
    await deleteNetns(name);
  }
}

/** skiff: render, full restore, then one Service's endpoints change (partial restore). */
async function benchSkiff(backend: IptablesBackend, n: number) {
  const snap = snapshot(n);
  const ctx = ctxFor(n);
  const keys = [...snap.services.keys()].sort();
  const perSvc = new Map<string, ServiceRules>();
  const [doc, renderWallMs, renderCpuMs] = cpuOf(() => {
    for (const k of keys) perSvc.set(k, renderServicePort(snap.services.get(k)!, snap.endpoints.get(k)!, ctx));
    const rs = assembleRuleset(keys.map((k) => perSvc.get(k)!), ctx);
    return { rs, ...renderRestore(rs, null, undefined, backend) };
  });
  return withNetns(async (host) => {
    const full = await restoreTimed(host, backend, doc.text);
    const changed = keys[Math.floor(n / 2)];
    const eps = [...snap.endpoints.get(changed)!];
    eps[0] = { ...eps[0], ip: '10.250.0.1' };
    // What the Proxier does for an endpoint change: re-render that port, rewrite its chains that
    // changed (its SERVICES line is the same, so the shared chains are not rebuilt).
    const [partial, partialRenderWallMs, partialRenderCpuMs] = cpuOf(() => {
      const after = renderServicePort(snap.services.get(changed)!, eps, ctx);
      if (sharedFragmentsDiffer(perSvc.get(changed), after)) throw new Error('bench: an endpoint change moved the SERVICES line');
      perSvc.set(changed, after);
      const write = after.chains.filter(([name, c]) => doc.rs.nat.get(name)?.text !== c.text).map(([name]) => name);
      for (const [name, c] of after.chains) doc.rs.nat.set(name, c);
      return renderRestoreChanges(doc.rs, { nat: write, filter: [] }, { nat: [], filter: [] }, backend);
    });
    const one = await restoreTimed(host, backend, partial.text);
    return {
      render: { wallMs: renderWallMs, cpuMs: renderCpuMs },
      fullSync: full,
      chains: doc.chains,
      rules: doc.rules,
      oneService: { render: { wallMs: partialRenderWallMs, cpuMs: partialRenderCpuMs }, restore: one, chainsWritten: partial.chains },
    };
  });
}

async function benchPeer(backend: IptablesBackend, n: number) {
  if (backend === 'nft' && n > 1000 && !fullPeer) return { skipped: 'kube-proxy shape on nft above 1,000 Services takes minutes; run with --full-peer' };
  const snap = snapshot(n);
  const text = renderKubeProxyShape(snap);
  return withNetns(async (host) => {
    const fullSync = await restoreTimed(host, backend, text);
    const changed = [...snap.services.keys()][Math.floor(n / 2)];
    const eps = [...snap.endpoints.get(changed)!];
    eps[0] = { ...eps[0], ip: '10.250.0.1' };
    snap.endpoints.set(changed, eps);
    const oneService = await restoreTimed(host, backend, renderKubeProxyShape(snap, changed));
    return { fullSync, oneService };
  });
}

/** EndpointSlice change -> rules in the kernel, through startProxy + FakeApiClient + real iptables. */
async function benchLatency(backend: IptablesBackend, n: number, samples: number) {
  const client = new FakeApiClient();
  client.seed(R.nodes, { metadata: { name: 'bench-node' } });
  for (let i = 0; i < n; i++) {
    client.seed(R.services, makeService({ ns: `ns${i % 50}`, name: `svc${i}`, clusterIP: svcIP(i), ports: [{ name: 'http', port: 80 }] }));
    client.seed(R.endpointslices, makeSlice({ ns: `ns${i % 50}`, service: `svc${i}`, ports: [{ name: 'http', port: 8080 }], endpoints: Array.from({ length: EPS }, (_, j) => ({ ip: epIP(i, j), node: `node${j % 3}` })) }));
  }
  return withNetns(async (host) => {
    const reports: SyncReport[] = [];
    // The iptables the Proxier would make (through the exec helper), timed around each restore.
    const iptables = new HostIptables(viaExecHelper(host), backend);
    const restore = iptables.restore.bind(iptables);
    const marks = { restoreStart: 0, restoreEnd: 0 };
    iptables.restore = async (...args: Parameters<typeof restore>) => {
      marks.restoreStart = performance.now();
      try {
        return await restore(...args);
      } finally {
        marks.restoreEnd = performance.now();
      }
    };
    const [proxy, startMs] = await timed(async () => {
      const p = await startProxy({ client, host, nodeName: 'bench-node', backend, iptables, minSyncIntervalMs: 10, healthCheckBindAddress: null, lbDevice: null });
      p.proxier.on('synced', (r: SyncReport) => reports.push(r));
      await p.proxier.idle();
      return p;
    });
    const firstFull = reports.find((r) => r.mode === 'full');
    // Samples measure the steady state: collect what the earlier phases of this run left (the
    // size runs' snapshots and documents) now, not in a major GC in the middle of the samples.
    (globalThis as { gc?: () => void }).gc?.();
    const lat: number[] = [];
    const cpu: number[] = [];
    // Per sample: update sent -> restore exec starts (informer, runner, render), the exec (helper,
    // iptables-restore, kernel), restore returned -> 'synced' (after-apply).
    const beforeExec: number[] = [];
    const exec: number[] = [];
    const afterExec: number[] = [];
    for (let s = 0; s < samples; s++) {
      const i = (s * 7919) % n;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const done = new Promise<void>((resolve) => proxy.proxier.once('synced', () => resolve()));
      await client.update(R.endpointslices, makeSlice({ ns: `ns${i % 50}`, service: `svc${i}`, ports: [{ name: 'http', port: 8080 }], endpoints: Array.from({ length: EPS }, (_, j) => ({ ip: epIP((i + s + 1) % n, j), node: `node${j % 3}` })) }));
      await done;
      const t1 = performance.now();
      lat.push(t1 - t0);
      beforeExec.push(marks.restoreStart - t0);
      exec.push(marks.restoreEnd - marks.restoreStart);
      afterExec.push(t1 - marks.restoreEnd);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    }
    await proxy.stop();
    // The floor, in the same netns with the same rules and jumps: the same one-chain document
    // restored back to back from a shell (no Proxier, no informers, no Node spawn).
    const floor = await kernelFloor(host, backend, samples);
    for (const xs of [lat, cpu, beforeExec, exec, afterExec]) xs.sort((a, b) => a - b);
    const p = (xs: number[]) => ({ p50Ms: q(xs, 0.5), p99Ms: q(xs, 0.99), maxMs: q(xs, 1) });
    return {
      backend,
      services: n,
      samples,
      startToFirstSyncMs: startMs,
      proxierFullSyncMs: firstFull ? Math.round(firstFull.durationMs) : undefined,
      wall: { p50Ms: q(lat, 0.5), p99Ms: q(lat, 0.99), maxMs: q(lat, 1) },
      // CPU of the proxier process per change (render + diff + spawn); the restore's own CPU is in results[].oneService.
      proxierCpu: { p50Ms: q(cpu, 0.5), p99Ms: q(cpu, 0.99) },
      timeline: { updateToExec: p(beforeExec), exec: p(exec), execToSynced: p(afterExec) },
      kernelFloor: floor,
    };
  });
}

const q = (xs: number[], p: number) => round(xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)]);

/**
 * The floor of change -> kernel: one Service's chain (as the Proxier's partial sync writes it),
 * restored `n` times in a row by a shell inside the netns, alternating two endpoint sets so each
 * restore changes the chain. Wall per restore (bash EPOCHREALTIME around the exec) and its CPU.
 */
async function kernelFloor(host: LocalHost, backend: IptablesBackend, n: number) {
  const save = (await host.exec(`iptables-${backend}-save`, ['-t', 'nat'])).stdout.split('\n');
  const chain = /^-A (SKIFF-SVC-\S+) /.exec(save.find((l) => l.startsWith('-A SKIFF-SVC-')) ?? '')?.[1];
  if (!chain) return { error: 'no service chain in the kernel' };
  const rules = save.filter((l) => l.startsWith(`-A ${chain} `));
  const ip = /--to-destination (\d+\.\d+\.\d+\.\d+)/.exec(rules.join('\n'))?.[1] ?? '';
  const doc = (lines: string[]) => ['*nat', `:${chain} - [0:0]`, ...lines, 'COMMIT', ''].join('\n');
  const a = doc(rules);
  const b = doc(rules.map((l) => l.split(ip).join('10.250.0.1')));
  const dir = (await host.exec('mktemp', ['-d'])).stdout.trim();
  const script = [
    `cat > ${dir}/a <<'EOF'`, a + 'EOF', `cat > ${dir}/b <<'EOF'`, b + 'EOF',
    `for i in $(seq 1 ${n}); do f=${dir}/a; [ $((i % 2)) = 0 ] && f=${dir}/b`,
    `  t0=$EPOCHREALTIME; /usr/bin/time -f '%U %S' -o ${dir}/t iptables-${backend}-restore -w 5 --noflush < $f || exit 1; t1=$EPOCHREALTIME`,
    `  echo "$t0 $t1 $(cat ${dir}/t)"; done`,
    `rm -rf ${dir}`,
  ].join('\n');
  const out = (await host.exec('bash', ['-c', script], { timeoutMs: 10 * 60_000 })).stdout.trim().split('\n');
  const wall: number[] = [];
  const cpu: number[] = [];
  const sys: number[] = [];
  for (const line of out) {
    const [t0, t1, u, s] = line.split(' ').map(Number);
    wall.push((t1 - t0) * 1000);
    cpu.push((u + s) * 1000);
    sys.push(s * 1000);
  }
  for (const xs of [wall, cpu, sys]) xs.sort((x, y) => x - y);
  return {
    restores: wall.length,
    rulesInChain: rules.length,
    wall: { p50Ms: q(wall, 0.5), p99Ms: q(wall, 0.99), maxMs: q(wall, 1) },
    // user+sys and sys of the restore (10 ms ticks in /usr/bin/time: coarse per restore, fine in the p50)
    cpu: { p50Ms: q(cpu, 0.5), p99Ms: q(cpu, 0.99) },
    sys: { p50Ms: q(sys, 0.5), p99Ms: q(sys, 0.99) },
  };
}

const ONLY = process.env.PROXY_BENCH_ONLY ?? '';
const BACKENDS = (process.env.PROXY_BENCH_BACKENDS ?? 'nft,legacy').split(',') as IptablesBackend[];
const results: unknown[] = [];
for (const backend of ONLY === 'latency' ? [] : BACKENDS) {
  for (const n of SIZES) {
    const skiff = await benchSkiff(backend, n);
    const peer = await benchPeer(backend, n);
    results.push({ backend, services: n, endpointsPerService: EPS, skiff, kubeProxyShape: peer });
    process.stderr.write(`${backend} ${n}: ${JSON.stringify(skiff)} peer ${JSON.stringify(peer)}\n`);
  }
}
const latency = [];
for (const backend of ONLY === 'sizes' ? [] : BACKENDS) latency.push(await benchLatency(backend, LATENCY_SERVICES, 100));
process.stdout.write(
  JSON.stringify(
    {
      bench: 'proxy',
      machine: { cpus: cpus().length, kernel: release(), node: process.version, loadavgAtEnd: loadavg().map(round) },
      targets: { oneServiceNft10kMs: 50, fullSyncNft10kMs: 6000, fullSyncLegacy10kMs: 1000, renderMs: 300, latencyP99Ms: 100 },
      results,
      latency,
    },
    null,
    2,
  ) + '\n',
);
