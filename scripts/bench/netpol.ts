// Bench: NetworkPolicy programming and dataplane cost, in throwaway network namespaces. Prints JSON.
// Run as root: scripts/bench/netpol [--skip-rate | --rate-only]
//   sync: 100 / 1,000 policies x 1,000 pods: full sync (render + apply into an empty netns), one
//         policy change and one pod relabel (incremental render + apply), with the render and the
//         kernel (ipset / iptables-restore) parts broken out;
//   rate: TCP connect/close rate between two pod netns on a bridge in a node netns, with netpol
//         not installed, with 0 policies and with 1,000 policies programmed (interleaved runs).
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ExecOptions, ExecResult, Host } from '../../src/host/host.js';
import { createNetns, deleteNetns, uniqueName } from '../../src/host/netns.js';
import { NetpolApplier } from '../../src/netpol/apply.js';
import type { Snapshot } from '../../src/netpol/model.js';
import { NetpolRenderer, type RenderOptions } from '../../src/netpol/render.js';
import { benchPod, benchPolicy, benchSnapshot } from './netpol-fixture.js';
import { connectionRate } from './netpol-rate.js';

/** A Host that adds up the wall time of each command it runs (to split apply into its parts). */
class TimedHost implements Host {
  readonly ms = new Map<string, number>();
  constructor(private readonly inner: Host) {}
  get netns(): string | null {
    return this.inner.netns;
  }
  async exec(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const t0 = performance.now();
    try {
      return await this.inner.exec(cmd, args, opts);
    } finally {
      const key = cmd === 'ipset' ? `ipset ${args.includes('restore') ? 'restore' : args[0]}` : cmd;
      this.ms.set(key, (this.ms.get(key) ?? 0) + performance.now() - t0);
    }
  }
  take(): Record<string, number> {
    const out = Object.fromEntries([...this.ms].map(([k, v]) => [k, Math.round(v)]));
    this.ms.clear();
    return out;
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

async function step(renderer: NetpolRenderer, applier: NetpolApplier, host: TimedHost, snap: Snapshot) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = renderer.render(snap);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  host.take();
  const stats = await applier.apply(r);
  const t2 = performance.now();
  return { total_ms: round(t2 - t0), render_ms: round(t1 - t0), render_cpu_ms: round((cpu.user + cpu.system) / 1000), apply_ms: round(t2 - t1), exec_ms: host.take(), changed_chains: stats.changedChains, changed_sets: stats.changedSets, chains: r.chains.size, sets: r.sets.size };
}

async function syncBench(n: number, base: Host) {
  const opts: RenderOptions = { podCIDR: '10.244.0.0/22', dropLog: { tag: 'bench', ratePerSec: 20 } };
  const host = new TimedHost(base);
  const applier = new NetpolApplier(host);
  await applier.cleanup();
  await applier.ensureBase(opts);
  const renderer = new NetpolRenderer(opts);
  const snap = benchSnapshot(n);
  const full = await step(renderer, applier, host, snap);
  const changed = { ...snap, policies: snap.policies.map((p, i) => (i === 0 ? benchPolicy(0, 9999) : p)) };
  const policyChange = await step(renderer, applier, host, changed);
  const podChange = await step(renderer, applier, host, { ...changed, pods: snap.pods.map((p, i) => (i === 5 ? { ...benchPod(5), labels: { app: 'a6' } } : p)) });
  await applier.cleanup();
  return { pods: snap.pods.length, full_sync: full, one_policy_change: policyChange, one_pod_change: podChange };
}

const out: Record<string, unknown> = { cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
if (!process.argv.includes('--rate-only')) {
  const name = uniqueName('npbench');
  const host = await createNetns(name);
  try {
    for (const n of [100, 1000]) out[`sync_policies_${n}`] = await syncBench(n, host);
  } finally {
    await deleteNetns(name);
  }
}
if (!process.argv.includes('--skip-rate')) out.connection_rate = await connectionRate();
console.log(JSON.stringify(out));
