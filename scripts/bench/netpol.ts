// Bench: NetworkPolicy programming and dataplane cost, in throwaway network namespaces. Prints JSON.
// Run as root: scripts/bench/netpol [--skip-rate | --rate-only] [--iptables=iptables-legacy]
//   sync: 100 / 1,000 policies x 1,000 pods: full sync (render + apply into an empty netns), one
//         policy change, one pod relabel and one remote peer pod added/removed (incremental render
//         + apply, NETPOL_BENCH_REPEAT times each), with the render and the kernel (ipset /
//         iptables-restore) parts broken out, wall and CPU (this process; its exec'd children);
//   rate: TCP connect/close rate between two pod netns on a bridge in a node netns, with netpol
//         not installed, with 0 policies and with 1,000 policies programmed (interleaved runs).
import { readFileSync } from 'node:fs';
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
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const REPEAT = Number(process.env.NETPOL_BENCH_REPEAT ?? 10);
const IPTABLES = process.argv.find((a) => a.startsWith('--iptables='))?.slice('--iptables='.length) ?? 'iptables';

/** CPU time (ms) of this process's reaped children (iptables-restore, ipset, ...), from /proc/self/stat. */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime and cstime are fields 16 and 17, in clock ticks (1/100 s)
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function step(renderer: NetpolRenderer, applier: NetpolApplier, host: TimedHost, snap: Snapshot) {
  const cpu0 = process.cpuUsage();
  const child0 = childCpuMs();
  const t0 = performance.now();
  const r = renderer.render(snap);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  host.take();
  const stats = await applier.apply(r);
  const t2 = performance.now();
  const all = process.cpuUsage(cpu0);
  return {
    total_ms: round(t2 - t0),
    render_ms: round(t1 - t0),
    render_cpu_ms: round((cpu.user + cpu.system) / 1000),
    apply_ms: round(t2 - t1),
    agent_cpu_ms: round((all.user + all.system) / 1000),
    exec_cpu_ms: childCpuMs() - child0,
    exec_ms: host.take(),
    changed_chains: stats.changedChains,
    changed_sets: stats.changedSets,
    chains: r.chains.size,
    sets: r.sets.size,
  };
}

type StepResult = Awaited<ReturnType<typeof step>>;

/**
 * `REPEAT` changes made by `change(k)` one after the other: medians of the wall times, means of
 * the CPU times (exec CPU is counted in 10 ms ticks, so only its mean over the runs means much).
 */
async function repeated(renderer: NetpolRenderer, applier: NetpolApplier, host: TimedHost, change: (k: number) => Snapshot) {
  const runs: StepResult[] = [];
  for (let k = 0; k < REPEAT; k++) runs.push(await step(renderer, applier, host, change(k)));
  const mean = (f: (r: StepResult) => number) => round(runs.reduce((a, r) => a + f(r), 0) / runs.length);
  return {
    runs: runs.length,
    total_ms: median(runs.map((r) => r.total_ms)),
    total_ms_all: runs.map((r) => r.total_ms),
    render_ms: median(runs.map((r) => r.render_ms)),
    render_cpu_ms: mean((r) => r.render_cpu_ms),
    apply_ms: median(runs.map((r) => r.apply_ms)),
    agent_cpu_ms: mean((r) => r.agent_cpu_ms),
    exec_cpu_ms: mean((r) => r.exec_cpu_ms),
    exec_ms: runs[runs.length - 1].exec_ms,
    changed_chains: runs[runs.length - 1].changed_chains,
    changed_sets: runs[runs.length - 1].changed_sets,
  };
}

async function syncBench(n: number, base: Host) {
  const opts: RenderOptions = { podCIDR: '10.244.0.0/22', dropLog: { tag: 'bench', ratePerSec: 20 } };
  const host = new TimedHost(base);
  const applier = new NetpolApplier(host, { iptables: IPTABLES });
  await applier.cleanup();
  await applier.ensureBase(opts);
  const renderer = new NetpolRenderer(opts);
  const snap = benchSnapshot(n);
  const full = await step(renderer, applier, host, snap);
  // one policy's ports change (it keeps its name and selects the same 10 pods)
  const withPolicy = (k: number): Snapshot => ({ ...snap, policies: snap.policies.map((p, i) => (i === 0 ? benchPolicy(0, 9000 + k) : p)) });
  const policyChange = await repeated(renderer, applier, host, withPolicy);
  const changed = withPolicy(REPEAT - 1);
  // one local pod relabelled back and forth (its chain and a peer set change)
  const podChange = await repeated(renderer, applier, host, (k) => ({ ...changed, pods: changed.pods.map((p, i) => (i === 5 ? { ...benchPod(5), labels: { app: k % 2 ? 'a5' : 'a6' } } : p)) }));
  // a pod of another node matching a peer selector comes and goes: only a peer set changes
  const remote = { ...benchPod(1), name: 'remote', nodeName: 'other', ips: ['10.245.0.2'] };
  const peerChange = await repeated(renderer, applier, host, (k) => ({ ...changed, pods: k % 2 ? changed.pods : [...changed.pods, remote] }));
  await applier.cleanup();
  return { pods: snap.pods.length, iptables: IPTABLES, full_sync: full, one_policy_change: policyChange, one_pod_change: podChange, one_peer_change: peerChange };
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
out.loadavg_end = loadavg().map((l) => Math.round(l * 100) / 100);
console.log(JSON.stringify(out));
