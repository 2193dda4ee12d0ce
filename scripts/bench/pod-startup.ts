// Bench: pod startup latency of the kubelet. Creates N pods at once (default 30) bound to one node
// and reports p50/p99 from the create call to the pod's Ready condition, for the docker and the
// netns runtimes. Real in-process apiserver (SQLite in memory), kubelet host = a throwaway netns.
// Prints JSON. Run as root (docker + skiff images for the docker runtime: scripts/images.sh):
//   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/pod-startup.ts
// Env: POD_STARTUP_N=30  POD_STARTUP_RUNTIMES=docker,netns  POD_STARTUP_WORKERS (kubelet pod workers, default: the kubelet's)
//      POD_STARTUP_PEER=0 skips the docker peer (the same N pause + app pairs started with the Docker CLI
//      directly, all at once, no skiff: the floor of this machine's Docker engine)
//      POD_STARTUP_PROFILE=DIR writes a CPU profile of this process (apiserver + kubelet) from the first
//      create to the last Ready per runtime: DIR/pod-startup-RUNTIME.cpuprofile
//      POD_STARTUP_NETNS_PEER=0 skips the netns peer (the netns runtime's per-pod plumbing, the same
//      commands through an exec helper, N pods at once, no kubelet, no API: the floor of the netns runtime)
// Each runtime also reports a timeline: per step, p50/p99 ms after the create call (created ->
// kubelet saw it -> sandbox + network ready -> containers started -> status written -> Ready seen by
// the bench's watch). The pods are created with spec.nodeName set, so there is no scheduler step.
// Anchor: the Kubernetes SLO is p99 <= 5 s without image pulls; targets here p99 <= 3 s (docker)
// and <= 300 ms (netns).
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../src/api/registry.js';
import { createNetns, deleteNetns, uniqueName } from '../../src/host/netns.js';
import { ExecHelper } from '../../src/host/exec-helper.js';
import { startKubelet } from '../../src/kubelet/index.js';
import { renderBridgeSetup, renderHostVeth, renderPodSide } from '../../src/kubelet/network/bridge.js';
import { renderSupervisor } from '../../src/kubelet/runtime/netns.js';
import type { ContainerConfig } from '../../src/kubelet/runtime/types.js';
import type { Kube } from '../../src/kubelet/kube.js';
import { startTestApiserver } from '../../test/helpers/apiserver.js';
import { removeNetnsRuntimeState, removeNodeContainers } from '../../test/integration/kubelet/harness.js';

const N = Number(process.env.POD_STARTUP_N ?? 30);
const RUNTIMES = (process.env.POD_STARTUP_RUNTIMES ?? 'docker,netns').split(',') as ('docker' | 'netns')[];
const WORKERS = process.env.POD_STARTUP_WORKERS ? Number(process.env.POD_STARTUP_WORKERS) : undefined;
const PEER = process.env.POD_STARTUP_PEER !== '0';
const PROFILE = process.env.POD_STARTUP_PROFILE;
const NETNS_PEER = process.env.POD_STARTUP_NETNS_PEER !== '0';

/** CPU ms (user+sys, reaped children included) of processes, from /proc/PID/stat; clock ticks are 10 ms here. */
function procCpu(): { pid: number; ppid: number; comm: string; ms: number }[] {
  const out: { pid: number; ppid: number; comm: string; ms: number }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const txt = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = txt.slice(txt.indexOf('(') + 1, txt.lastIndexOf(')'));
      const f = txt.slice(txt.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(d), ppid: Number(f[1]), comm, ms: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10 });
    } catch { /* gone */ }
  }
  return out;
}

/**
 * CPU so far of this process with its live descendants (kubelet, apiserver, exec helper, the commands
 * they ran) and of the Docker engine (dockerd, containerd, shims: shared with anyone else using it).
 */
function cpuSnapshot(): { bench: number; engine: Map<number, number> } {
  const all = procCpu();
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); grew = true; }
  }
  const engine = new Map(all.filter((p) => /^(dockerd|containerd|containerd-shim)/.test(p.comm)).map((p) => [p.pid, p.ms]));
  return { bench: all.filter((p) => mine.has(p.pid)).reduce((a, p) => a + p.ms, 0), engine };
}

function cpuSince(a: ReturnType<typeof cpuSnapshot>): { benchMs: number; engineMs: number } {
  const b = cpuSnapshot();
  let engineMs = 0;
  for (const [pid, ms] of b.engine) engineMs += ms - (a.engine.get(pid) ?? 0);
  return { benchMs: b.bench - a.bench, engineMs };
}

/** Starts the V8 profiler of this process; the returned function stops it and writes the profile. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> => new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return async (file) => {
    const { profile } = await post('Profiler.stop') as { profile: unknown };
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
  };
}

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
    const created = new Map<string, number>();
    const ready = new Map<string, number>();
    const steps = new Map<string, Map<string, number>>();
    const trace = (key: string, step: string): void => {
      const name = key.split('/')[1];
      const m = steps.get(name) ?? new Map<string, number>();
      steps.set(name, m);
      if (!m.has(step) && (step !== 'status' || m.has('started'))) m.set(step, performance.now()); // status: the first write after the start
    };
    kubelet = await startKubelet({ client: api.client, host, nodeName, nodeIP: '192.0.2.60', dataDir, serverPort: 0, runtime, workers: WORKERS, trace });
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
    const cpu0 = cpuSnapshot();
    const self0 = process.cpuUsage();
    const prof = PROFILE ? await startProfile() : undefined;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const name = `bench-${i}`;
      created.set(name, performance.now());
      await api.client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
        spec: { nodeName, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'skiff/busybox:1.36', command }] } } as Kube<Pod>, 'default');
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`only ${ready.size}/${N} pods Ready after 120 s`)), 120_000); })])
      .finally(() => clearTimeout(timer));
    const cpu = cpuSince(cpu0);
    const self = process.cpuUsage(self0);
    if (prof) await prof(join(PROFILE!, `pod-startup-${runtime}.cpuprofile`));
    const lat = [...ready.entries()].map(([n, t]) => t - created.get(n)!).sort((a, b) => a - b);
    const timeline: Record<string, { p50: number; p99: number }> = {};
    for (const step of ['seen', 'sandbox', 'started', 'status']) {
      const after = [...steps.entries()].filter(([, m]) => m.has(step)).map(([n, m]) => m.get(step)! - created.get(n)!).sort((a, b) => a - b);
      if (after.length > 0) timeline[step] = { p50: pct(after, 50), p99: pct(after, 99) };
    }
    timeline.ready = { p50: pct(lat, 50), p99: pct(lat, 99) };
    return {
      runtime, pods: N, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), maxMs: Math.round(lat[lat.length - 1]), allReadyMs: Math.round(Math.max(...ready.values()) - t0),
      // CPU from the first create to the last Ready: this process + its children (apiserver, kubelet, the
      // commands it ran), of which this process alone (apiserver + kubelet + the bench's watch), and the
      // Docker engine's daemons (shared: other users of dockerd count too)
      cpuMsPerPod: {
        benchAndChildren: Math.round(cpu.benchMs / N), benchProcess: Math.round((self.user + self.system) / 1000 / N), dockerEngine: Math.round(cpu.engineMs / N),
      },
      timelineMsAfterCreate: timeline,
    };
  } finally {
    await kubelet?.stop();
    if (runtime === 'docker') await removeNodeContainers(nodeName);
    await removeNetnsRuntimeState(join(dataDir, 'netns-runtime'));
    await deleteNetns(nsName);
    await rm(dataDir, { recursive: true, force: true });
    await api.close();
  }
}

/**
 * The floor without skiff: N pause (`--network none`) + app (`--network container:`) pairs started
 * with the Docker CLI directly, all at once, as the docker runtime does. Time from the first call to
 * each pair's app container running (`docker run -d` returned), CPU of the CLI calls and of the engine.
 */
async function dockerPeer(): Promise<Record<string, unknown>> {
  const label = `io.skiff.bench-peer=${uniqueName('p')}`;
  const cpu0 = cpuSnapshot();
  const t0 = performance.now();
  const running: number[] = [];
  try {
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const pause = `skiff-peer-${process.pid}-${i}`;
      await execa('docker', ['run', '-d', '--name', pause, '--label', label, '--network', 'none', '--ipc', 'shareable', 'skiff/pause:3.9']);
      await execa('docker', ['run', '-d', '--label', label, '--network', `container:${pause}`, '--ipc', `container:${pause}`,
        '--entrypoint', 'sleep', 'skiff/busybox:1.36', '3600']);
      running.push(performance.now() - t0);
    }));
    const cpu = cpuSince(cpu0);
    running.sort((a, b) => a - b);
    return {
      runtime: 'docker-cli-peer', pods: N, p50Ms: pct(running, 50), p99Ms: pct(running, 99), allRunningMs: Math.round(running[running.length - 1]),
      cpuMsPerPod: { cliCalls: Math.round(cpu.benchMs / N), dockerEngine: Math.round(cpu.engineMs / N) },
    };
  } finally {
    const ids = String((await execa('docker', ['ps', '-aq', '--filter', `label=${label}`], { reject: false })).stdout).split('\n').filter(Boolean);
    if (ids.length) await execa('docker', ['rm', '-f', '-v', ...ids], { reject: false });
  }
}

/**
 * The floor of the netns runtime without skiff: per pod the same commands the netns runtime and the
 * bridge plugin run (the host-side `ip -batch` in the node netns: `netns add`, veth with its peer
 * born in the pod netns, bridge port, hairpin; the pod-side `ip -n POD -batch`: lo, address, route;
 * the supervisor `ip netns exec POD sh -c ...` with the command), spawned by an exec helper process
 * as the kubelet's are, N pods at once. Time from the first call to each pod's supervisor started;
 * CPU of the helper and the commands. The node is a throwaway netns with the bridge, as in `run`.
 */
async function netnsPeer(): Promise<Record<string, unknown>> {
  const nodeNs = uniqueName('sk-peer');
  await createNetns(nodeNs);
  const dir = await mkdtemp(join(tmpdir(), 'skiff-peer-'));
  const helper = new ExecHelper();
  const cidr = '10.244.61.0/24';
  const inNode = ['nsenter', `--net=/var/run/netns/${nodeNs}`];
  const pods = Array.from({ length: N }, (_, i) => ({ ns: `skq-${uniqueName('p').slice(2)}${i}`, link: { hostIf: `skq${process.pid % 1000}x${i}` }, ip: `10.244.61.${i + 2}`, sup: 0 }));
  const must = async (file: string, args: string[], input?: string): Promise<void> => {
    const r = await helper.run(file, args, { input });
    if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  try {
    await must(inNode[0], [...inNode.slice(1), 'ip', '-batch', '-'], renderBridgeSetup('skiff0', cidr));
    await helper.run('true', []); // the helper is up before the clock starts (as the kubelet's is)
    const cpu0 = cpuSnapshot();
    const t0 = performance.now();
    const running: number[] = [];
    await Promise.all(pods.map(async (p, i) => {
      await must(inNode[0], [...inNode.slice(1), 'ip', '-batch', '-'], renderHostVeth('skiff0', p.link, { name: p.ns }, true));
      await must('ip', ['-n', p.ns, '-batch', '-'], renderPodSide(p.ip, cidr));
      const cdir = join(dir, String(i));
      await mkdir(cdir);
      const cfg: ContainerConfig = { name: 'c', role: 'app', image: '', command: ['sleep'], args: ['3600'], overrideEntrypoint: true, env: [], mounts: [],
        tty: false, stdin: false, stdinOnce: false, attempt: 0, cpuLimitMilli: 0, cpuRequestMilli: 0, memoryLimitBytes: 0 };
      p.sup = await helper.spawnDetached('ip', ['netns', 'exec', p.ns, 'sh', '-c', renderSupervisor(cfg, cdir), 'sh', 'sleep', '3600'],
        { log: join(cdir, 'log'), env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
      running.push(performance.now() - t0);
    }));
    const cpu = cpuSince(cpu0);
    running.sort((a, b) => a - b);
    return {
      runtime: 'netns-plumbing-peer', pods: N, p50Ms: pct(running, 50), p99Ms: pct(running, 99), allRunningMs: Math.round(running[running.length - 1]),
      cpuMsPerPod: { helperAndCommands: Math.round(cpu.benchMs / N) },
    };
  } finally {
    for (const p of pods) if (p.sup) { try { process.kill(-p.sup, 'SIGKILL'); } catch { /* gone */ } }
    await Promise.all(pods.map((p) => helper.run('ip', ['netns', 'delete', p.ns])));
    helper.close();
    await deleteNetns(nodeNs);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A pause between measurements: removing 30 pods' netns and veths leaves the kernel tearing them
 * down in the background (under the RTNL lock), which slows the next run's netns and veth setup.
 */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 5000));
}

const results: Record<string, unknown>[] = [];
for (const r of RUNTIMES) {
  if (r === 'docker' && (await execa('docker', ['image', 'inspect', 'skiff/pause:3.9'], { reject: false })).exitCode !== 0) {
    results.push({ runtime: r, skipped: 'docker or skiff/pause:3.9 not available (scripts/images.sh)' });
    continue;
  }
  if (r === 'docker' && PEER) {
    results.push(await dockerPeer());
    await settle();
  }
  if (r === 'netns' && NETNS_PEER) {
    results.push(await netnsPeer());
    await settle();
  }
  results.push(await run(r));
  await settle();
}
console.log(JSON.stringify({ bench: 'pod-startup', cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), targets: { dockerP99Ms: 3000, netnsP99Ms: 300 }, results }, null, 2));
