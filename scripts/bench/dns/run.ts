/**
 * DNS benchmark: dnsperf (apt) against skiff's cluster DNS and, in the same run, against dnsmasq
 * serving the same names from a hosts file. Prints one JSON object: qps at saturation and
 * latency p50/p99 at a fixed rate, for cluster names and for a cached forwarded name (skiff and a
 * second, forwarding dnsmasq both forward to the hosts-file dnsmasq and cache the answer).
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/dns/run.ts
 *
 * Env: BENCH_NAMES (1000), BENCH_SECONDS (8, saturation run), BENCH_RATE (10000 qps),
 * BENCH_RATE_SECONDS (5), BENCH_WORKERS (skiff workers, default 1).
 * Everything stays on 127.0.0.0/8; dnsmasq and temp files are removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { startDns } from '../../../src/dns/index.js';

const N = Number(process.env.BENCH_NAMES ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 10000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 5);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const SKIFF = '127.0.0.61';
const DNSMASQ = '127.0.0.62';
/** a second dnsmasq that forwards to the first and caches, for the forwarded-name comparison */
const DNSMASQ_FWD = '127.0.0.63';

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

function run(cmd: string, args: string[], maxMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => out.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), maxMs);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(out).toString());
    });
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(server: { address: string; port: number }, queryFile: string) {
  // Warm-up: JIT, packet caches and the forward cache, so the runs measure the steady state.
  await run('dnsperf', ['-s', server.address, '-p', String(server.port), '-d', queryFile, '-n', '3', '-l', '3', '-t', '2'], 15_000);
  const sat = await run('dnsperf', ['-s', server.address, '-p', String(server.port), '-d', queryFile, '-l', String(SECONDS), '-c', '4', '-q', '500', '-t', '2'], (SECONDS + 10) * 1000);
  const qps = Number(sat.match(/Queries per second:\s+([\d.]+)/)?.[1] ?? NaN);
  const lost = Number(sat.match(/Queries lost:\s+(\d+)/)?.[1] ?? NaN);
  const paced = await run('dnsperf', ['-s', server.address, '-p', String(server.port), '-d', queryFile, '-l', String(RATE_SECONDS), '-Q', String(RATE), '-c', '4', '-q', '500', '-t', '2', '-v'], (RATE_SECONDS + 10) * 1000);
  const lat = [...paced.matchAll(/^> \S+ .* ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  const achieved = Number(paced.match(/Queries per second:\s+([\d.]+)/)?.[1] ?? NaN);
  return {
    saturation_qps: Math.round(qps),
    saturation_lost: lost,
    [`at_${RATE}_qps`]: { achieved_qps: Math.round(achieved), samples: lat.length, p50_ms: round(percentile(lat, 50)), p99_ms: round(percentile(lat, 99)) },
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-dns-'));
  let dnsmasq: ChildProcess | undefined;
  let dnsmasqFwd: ChildProcess | undefined;
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
    for (let i = 0; i < N; i++) {
      client.seed(R.services, { metadata: { namespace: 'bench', name: `svc-${i}` }, spec: { type: 'ClusterIP', clusterIP: ipOf(i), clusterIPs: [ipOf(i)], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] } } as KubeObject);
    }
    const dns = await startDns({ client, listen: [{ address: SKIFF, port: await freePort(SKIFF) }], upstreams: [`${DNSMASQ}:${dnsmasqPort}`], rateLimit: { qps: 0, burst: 0 }, workers: WORKERS });
    stopDns = () => dns.stop();
    await new Promise((r) => setTimeout(r, 500));

    const skiff = { address: SKIFF, port: dns.port() };
    const result = {
      names: N,
      skiff_workers: WORKERS,
      skiff_cluster: await measure(skiff, join(dir, 'cluster.txt')),
      skiff_forwarded_cached: await measure(skiff, join(dir, 'forward.txt')),
      dnsmasq_cluster: await measure({ address: DNSMASQ, port: dnsmasqPort }, join(dir, 'cluster.txt')),
      dnsmasq_forwarded_cached: await measure({ address: DNSMASQ_FWD, port: fwdPort }, join(dir, 'forward.txt')),
      load_average: loadavg().map(round),
    };
    const ratio = result.skiff_cluster.saturation_qps / result.dnsmasq_cluster.saturation_qps;
    process.stdout.write(JSON.stringify({ ...result, skiff_vs_dnsmasq_qps: round(ratio) }, null, 2) + '\n');
  } finally {
    await stopDns?.();
    for (const p of [dnsmasq, dnsmasqFwd]) if (p && p.exitCode === null) p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
