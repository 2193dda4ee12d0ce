/**
 * DNS benchmark: dnsperf (apt) against skiff's cluster DNS and, in the same run, against dnsmasq
 * serving the same names from a hosts file. Prints one JSON object: qps at saturation and
 * latency percentiles at a fixed rate, for cluster names and for a cached forwarded name (skiff and
 * a second, forwarding dnsmasq both forward to the hosts-file dnsmasq and cache the answer), plus
 * one skiff run at the fixed rate while Services change (each change rebuilds the zone).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/dns/run.ts
 *
 * Env: BENCH_NAMES (1000), BENCH_SECONDS (8, saturation run), BENCH_RATE (10000 qps),
 * BENCH_RATE_SECONDS (8), BENCH_WORKERS (skiff worker counts, comma-separated; default `2,1` on
 * two or more cores, as `skiff up` runs min(2, cores): the first count gets every run, the others
 * the cluster names only, as skiff_cluster_workers_N), BENCH_CHURN (Service changes
 * per second during the churn run, default 10; 0 skips it), BENCH_ONLY (`skiff` or `dnsmasq`),
 * BENCH_DNS2=1 (also measure dns2 out of the box on the cluster names, in its own process).
 * Everything stays on 127.0.0.0/8; dnsmasq and temp files are removed at the end.
 *
 * Latency: dnsperf -Q paces the queries (it sleeps until each query's slot, so they are spread
 * evenly, not sent in bursts); -v prints each query's latency, from which the percentiles are
 * computed (nearest rank, lost queries counted as slower than any answer). For skiff, `probe`
 * adds the server's CPU per query, its event-loop delay and GC pauses during the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { startDns } from '../../../src/dns/index.js';
import { dnsperf, latencies, percentile, summary, type Target } from './dnsperf.js';
import { Probe, type ProbeResult } from './probe.js';

const N = Number(process.env.BENCH_NAMES ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 10000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 8);
const WORKERS = (process.env.BENCH_WORKERS ?? (availableParallelism() >= 2 ? '2,1' : '1')).split(',').map(Number);
const CHURN = Number(process.env.BENCH_CHURN ?? 10);
const ONLY = process.env.BENCH_ONLY;
const DNS2 = process.env.BENCH_DNS2 === '1';
const SKIFF = '127.0.0.61';
const DNSMASQ = '127.0.0.62';
/** a second dnsmasq that forwards to the first and caches, for the forwarded-name comparison */
const DNSMASQ_FWD = '127.0.0.63';
const DNS2_ADDRESS = '127.0.0.64';

async function freePort(address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function ipOf(i: number): string {
  return `10.96.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`;
}

function service(i: number, port = 80): KubeObject {
  return { metadata: { namespace: 'bench', name: `svc-${i}` }, spec: { type: 'ClusterIP', clusterIP: ipOf(i), clusterIPs: [ipOf(i)], ports: [{ name: 'http', protocol: 'TCP', port }] } } as KubeObject;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const load = () => loadavg().map(round);

interface Ctx {
  dir: string;
  probe: boolean;
}

/** dnsperf at a fixed rate with per-query latencies. */
async function paced(ctx: Ctx, target: Target, queryFile: string) {
  const probe = ctx.probe ? new Probe() : undefined;
  const out = await dnsperf(target, ['-d', queryFile, '-l', String(RATE_SECONDS), '-Q', String(RATE), '-c', '4', '-q', '500', '-t', '2', '-v'], join(ctx.dir, 'paced.out'), (RATE_SECONDS + 10) * 1000);
  const s = summary(out);
  const lat = latencies(out);
  const pct = (p: number) => round(percentile(lat, s.lost, p));
  return {
    achieved_qps: s.qps,
    samples: lat.length,
    lost: s.lost,
    p50_ms: pct(50),
    p90_ms: pct(90),
    p99_ms: pct(99),
    p999_ms: pct(99.9),
    max_ms: round(lat[lat.length - 1] ?? NaN),
    ...(probe ? { server: probe.stop(lat.length) } : {}),
  };
}

async function measure(ctx: Ctx, target: Target, queryFile: string) {
  const load_average = load();
  // Warm-up: JIT, packet caches and the forward cache, so the runs measure the steady state.
  await dnsperf(target, ['-d', queryFile, '-n', '3', '-l', '3', '-t', '2'], join(ctx.dir, 'warm.out'), 15_000);
  const probe = ctx.probe ? new Probe() : undefined;
  const sat = summary(await dnsperf(target, ['-d', queryFile, '-l', String(SECONDS), '-c', '4', '-q', '500', '-t', '2'], join(ctx.dir, 'sat.out'), (SECONDS + 10) * 1000));
  const satServer: ProbeResult | undefined = probe?.stop(sat.sent - sat.lost);
  return {
    load_average,
    saturation_qps: sat.qps,
    saturation_lost: sat.lost,
    ...(satServer ? { saturation_server_cpu_ms_per_1k_queries: satServer.cpu_ms_per_1k_queries } : {}),
    [`at_${RATE}_qps`]: await paced(ctx, target, queryFile),
  };
}

/** The paced run again while one Service changes CHURN times a second (every change is a zone rebuild). */
async function measureChurn(ctx: Ctx, target: Target, queryFile: string, client: FakeApiClient) {
  const load_average = load();
  let n = 0;
  const timer = setInterval(() => client.seed(R.services, service(N - 1, 8000 + (n++ % 2))), 1000 / CHURN);
  try {
    return { load_average, changes_per_s: CHURN, [`at_${RATE}_qps`]: await paced(ctx, target, queryFile) };
  } finally {
    clearInterval(timer);
  }
}

/** Starts dns2-server.ts in its own process; resolves with it and its port. */
function startDns2(hostsFile: string): Promise<{ proc: ChildProcess; port: number }> {
  const loader = new URL('../../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href;
  const proc = spawn(process.execPath, [`--import=${loader}`, new URL('./dns2-server.ts', import.meta.url).pathname, hostsFile, DNS2_ADDRESS], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`dns2 server exited with ${code}`)));
    proc.stdout!.once('data', (d: Buffer) => resolve({ proc, port: Number(d.toString().trim()) }));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-dns-'));
  let dnsmasq: ChildProcess | undefined;
  let dnsmasqFwd: ChildProcess | undefined;
  let dns2: ChildProcess | undefined;
  let stopDns: (() => Promise<void>) | undefined;
  try {
    const names = Array.from({ length: N }, (_, i) => `svc-${i}.bench.svc.cluster.local`);
    writeFileSync(join(dir, 'hosts'), names.map((n, i) => `${ipOf(i)} ${n}`).join('\n') + '\n192.0.2.7 fwd.bench.test\n');
    writeFileSync(join(dir, 'cluster.txt'), names.map((n) => `${n} A`).join('\n') + '\n');
    writeFileSync(join(dir, 'forward.txt'), 'fwd.bench.test A\n');

    const dnsmasqPort = await freePort(DNSMASQ);
    dnsmasq = spawn('dnsmasq', ['-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${join(dir, 'hosts')}`, `--listen-address=${DNSMASQ}`, '--bind-interfaces', `--port=${dnsmasqPort}`, '--cache-size=10000', '--local-ttl=300', '--user=root', `--pid-file=${join(dir, 'dnsmasq.pid')}`], { stdio: 'ignore' });

    const fwdPort = await freePort(DNSMASQ_FWD);
    dnsmasqFwd = spawn('dnsmasq', ['-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--server=${DNSMASQ}#${dnsmasqPort}`, `--listen-address=${DNSMASQ_FWD}`, '--bind-interfaces', `--port=${fwdPort}`, '--cache-size=10000', '--user=root', `--pid-file=${join(dir, 'dnsmasq-fwd.pid')}`], { stdio: 'ignore' });

    const client = new FakeApiClient();
    client.seed(R.namespaces, { metadata: { name: 'bench' } } as KubeObject);
    for (let i = 0; i < N; i++) client.seed(R.services, service(i));
    const startSkiff = async (workers: number) => {
      const dns = await startDns({ client, listen: [{ address: SKIFF, port: await freePort(SKIFF) }], upstreams: [`${DNSMASQ}:${dnsmasqPort}`], rateLimit: { qps: 0, burst: 0 }, workers });
      stopDns = () => dns.stop();
      await new Promise((r) => setTimeout(r, 500));
      return { address: SKIFF, port: dns.port() };
    };

    const result: Record<string, unknown> = { names: N, skiff_workers: WORKERS[0], load_average_start: load() };
    const cluster = join(dir, 'cluster.txt');
    const forward = join(dir, 'forward.txt');
    if (ONLY !== 'dnsmasq') {
      const ctx = { dir, probe: true };
      for (const [i, workers] of WORKERS.entries()) {
        const skiff = await startSkiff(workers);
        if (i === 0) {
          result.skiff_cluster = await measure(ctx, skiff, cluster);
          result.skiff_forwarded_cached = await measure(ctx, skiff, forward);
          if (CHURN > 0) result.skiff_cluster_churn = await measureChurn(ctx, skiff, cluster, client);
        } else {
          result[`skiff_cluster_workers_${workers}`] = await measure(ctx, skiff, cluster);
        }
        await stopDns?.();
        stopDns = undefined;
      }
    }
    if (ONLY !== 'skiff') {
      const ctx = { dir, probe: false };
      result.dnsmasq_cluster = await measure(ctx, { address: DNSMASQ, port: dnsmasqPort }, cluster);
      result.dnsmasq_forwarded_cached = await measure(ctx, { address: DNSMASQ_FWD, port: fwdPort }, forward);
    }
    if (DNS2) {
      const started = await startDns2(join(dir, 'hosts'));
      dns2 = started.proc;
      result.dns2_cluster = await measure({ dir, probe: false }, { address: DNS2_ADDRESS, port: started.port }, cluster);
    }
    result.load_average = load();
    const qps = (k: string) => (result[k] as { saturation_qps: number } | undefined)?.saturation_qps;
    const ratio = (qps('skiff_cluster') ?? NaN) / (qps('dnsmasq_cluster') ?? NaN);
    process.stdout.write(JSON.stringify({ ...result, skiff_vs_dnsmasq_qps: Number.isNaN(ratio) ? null : round(ratio) }, null, 2) + '\n');
  } finally {
    await stopDns?.();
    for (const p of [dnsmasq, dnsmasqFwd, dns2]) if (p && p.exitCode === null) p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
