// Bench: the apiserver over its two stores, and etcd alone, in one run. Prints one JSON document.
//  - sqlite: build() from src/apiserver/app.ts on a SqliteStore file (WAL, group commit with one fsync per batch), plain
//    HTTP on loopback, RestClient with keep-alive. The server runs in a child process of its own
//    (scripts/bench/apiserver-server.ts), as a real apiserver runs apart from its clients; SERVER=inprocess
//    runs it in this process instead (the way this bench measured before).
//  - etcd: the same apiserver on an EtcdStore against a real etcd started (and killed) here.
//  - etcdDirect: etcd alone, a bounded put loop with the etcd3 client (concurrency 32).
// Per backend: creates/s (concurrency 32, BENCH_SECONDS), gets/s, list latency over 5,000 pods
// (full list and limit=500 pages), create latency at a fixed offered load (open loop, measured from
// each request's due time), and watch delivery with 100 watchers (store commit -> event at the watcher).
// CPU per operation is reported for client and server together (cpuMsPerOp) and apart.
// Run: node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs scripts/bench/apiserver.ts
// Env: BENCH_SECONDS (10), BENCH_RATE (500), LIST_PODS (5000), WATCHERS (100), WATCH_EVENTS (200),
//      WARMUP (2000 unmeasured creates), BACKENDS (sqlite,etcd,etcdDirect), PHASES (create,get,list,rate,watch),
//      SERVER (process | inprocess), SERVER_CPU_PROF (dir: --cpu-prof of the server process)
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Etcd3 } from 'etcd3';
import { build } from '../../src/apiserver/app.js';
import { R } from '../../src/api/registry.js';
import type { KubeObject } from '../../src/api/object.js';
import { RestClient } from '../../src/client/rest.js';
import type { Watch } from '../../src/client/types.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { logger } from '../../src/util/log.js';
import { closedLoop, cpuMsPer, epochMs, forkServer, openLoop, startEtcd, stats, timedStore, WATCH_PREFIX, type BenchServer, type EtcdProcess } from './apiserver-lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const LIST_PODS = Number(process.env.LIST_PODS ?? 5000);
const WATCHERS = Number(process.env.WATCHERS ?? 100);
const WATCH_EVENTS = Number(process.env.WATCH_EVENTS ?? 200);
const WARMUP = Number(process.env.WARMUP ?? 2000);
const CONCURRENCY = 32;
const BACKENDS = (process.env.BACKENDS ?? 'sqlite,etcd,etcdDirect').split(',');
const PHASES = (process.env.PHASES ?? 'create,get,list,rate,watch').split(',');
const SERVER = process.env.SERVER ?? 'process';

const pod = (name: string, ns: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels: { app: 'bench', tier: 'web' } },
  spec: { containers: [{ name: 'c', image: 'skiff/pause:3.9', ports: [{ containerPort: 8080 }], resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
});

async function createNamespace(client: RestClient, name: string): Promise<void> {
  await client.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

async function fill(client: RestClient, ns: string, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < n; i = next++) await client.create(R.pods, pod(`p-${String(i).padStart(5, '0')}`, ns), ns);
    }),
  );
}

async function listBench(client: RestClient, server: BenchServer): Promise<Record<string, unknown>> {
  await createNamespace(client, 'list');
  const t0 = performance.now();
  await fill(client, 'list', LIST_PODS);
  const fillMs = performance.now() - t0;
  const full: number[] = [];
  let srv0 = await server.cpu();
  let cpu0 = process.cpuUsage();
  for (let i = 0; i < 10; i++) {
    const s = performance.now();
    const l = await client.list(R.pods, { namespace: 'list' });
    full.push(performance.now() - s);
    if (l.items.length !== LIST_PODS) throw new Error(`full list returned ${l.items.length} pods, want ${LIST_PODS}`);
  }
  const fullCpu = withServerCpu({ cpuMsPerOp: cpuMsPer(cpu0, full.length) }, srv0, await server.cpu(), full.length);
  const pages: number[] = [];
  srv0 = await server.cpu();
  cpu0 = process.cpuUsage();
  for (let round = 0; round < 3; round++) {
    let cont: string | undefined;
    let seen = 0;
    do {
      const s = performance.now();
      const l = await client.list(R.pods, { namespace: 'list', limit: 500, continue: cont });
      pages.push(performance.now() - s);
      seen += l.items.length;
      cont = l.metadata?.continue;
    } while (cont);
    if (seen !== LIST_PODS) throw new Error(`paged list returned ${seen} pods, want ${LIST_PODS}`);
  }
  const pageCpu = withServerCpu({ cpuMsPerOp: cpuMsPer(cpu0, pages.length) }, srv0, await server.cpu(), pages.length);
  return { pods: LIST_PODS, fillCreatesPerSec: Math.round(LIST_PODS / (fillMs / 1000)), fullList: { ...stats(full), ...fullCpu }, page500: { ...stats(pages), ...pageCpu } };
}

/**
 * Adds the server's CPU per operation (when it runs apart) to a client-side figure: cpuMsPerOp
 * becomes client + server, as it is when both share this process.
 */
function withServerCpu<T extends { cpuMsPerOp: number }>(r: T, s0: NodeJS.CpuUsage | null, s1: NodeJS.CpuUsage | null, ops: number): T & { clientCpuMsPerOp?: number; serverCpuMsPerOp?: number } {
  if (!s0 || !s1 || !ops) return r;
  const server = Math.round(((s1.user - s0.user + s1.system - s0.system) / 1000 / ops) * 100) / 100;
  return { ...r, cpuMsPerOp: Math.round((r.cpuMsPerOp + server) * 100) / 100, clientCpuMsPerOp: r.cpuMsPerOp, serverCpuMsPerOp: server };
}

/** A load phase with the server's CPU added (see withServerCpu). */
async function phase<T extends { cpuMsPerOp: number; ok: number }>(server: BenchServer, name: string, run: () => Promise<T>): Promise<T> {
  await server.profile('start');
  const s0 = await server.cpu();
  const r = await run();
  const s1 = await server.cpu();
  await server.profile('stop', name);
  return withServerCpu(r, s0, s1, r.ok);
}

/**
 * WATCHERS watches on one namespace (spread over clients of <= 50 sockets each); pods are created
 * one at a time at ~100/s. `delivery` is event arrival minus the moment the store acknowledged the
 * write (committed and durable: what a watch can deliver at the earliest), so it measures the
 * apiserver's fan-out and the watch stream, not the write itself; deliveryFromRequestSent is
 * arrival minus the time the create was sent (write + fsync + fan-out); deliveryFromResponse is
 * arrival minus the create's response, floored at 0 (the server notifies watchers before it
 * answers, so events usually arrive first: arrivedBeforeResponse counts them).
 */
async function watchBench(server: BenchServer, client: RestClient): Promise<Record<string, unknown>> {
  const url = server.url;
  await createNamespace(client, 'watch');
  const rv = (await client.list(R.pods, { namespace: 'watch' })).metadata?.resourceVersion;
  const clients = Array.from({ length: Math.ceil(WATCHERS / 50) }, () => new RestClient({ server: url }));
  const arrivals = Array.from({ length: WATCHERS }, () => new Map<string, number>());
  const watches: Watch[] = [];
  try {
    for (let w = 0; w < WATCHERS; w++) {
      watches.push(clients[w % clients.length].watch(R.pods, { namespace: 'watch', resourceVersion: rv }, (ev) => {
        if (ev.type === 'ADDED') arrivals[w].set(ev.object.metadata!.name!, epochMs());
      }));
    }
    await client.create(R.pods, pod('sentinel', 'watch'), 'watch');
    await waitFor('all watchers see the sentinel', () => arrivals.every((m) => m.has('sentinel')), 30_000);
    const responded = new Map<string, number>();
    const sent = new Map<string, number>();
    const t0 = performance.now();
    for (let i = 0; i < WATCH_EVENTS; i++) {
      const name = `w-${i}`;
      sent.set(name, epochMs());
      await client.create(R.pods, pod(name, 'watch'), 'watch');
      responded.set(name, epochMs());
      const due = t0 + (i + 1) * 10;
      if (performance.now() < due) await new Promise((r) => setTimeout(r, due - performance.now()));
    }
    await waitFor('all watchers see all events', () => arrivals.every((m) => m.size === WATCH_EVENTS + 1), 60_000);
    const committed = await server.commits();
    const delivery: number[] = [];
    const fromResponse: number[] = [];
    const fromSend: number[] = [];
    let early = 0;
    for (const m of arrivals)
      for (const [name, at] of responded) {
        const d = m.get(name)! - at;
        if (d < 0) early++;
        fromResponse.push(Math.max(0, d));
        fromSend.push(m.get(name)! - sent.get(name)!);
        const c = committed.get(`${WATCH_PREFIX}${name}`);
        if (c === undefined) throw new Error(`no commit time recorded for ${name}`);
        delivery.push(m.get(name)! - c);
      }
    return {
      watchers: WATCHERS,
      events: WATCH_EVENTS,
      deliveries: delivery.length,
      delivery: stats(delivery),
      deliveryFromRequestSent: stats(fromSend),
      deliveryFromResponse: stats(fromResponse),
      arrivedBeforeResponse: early,
      createLatency: stats([...responded].map(([n, at]) => at - sent.get(n)!)),
    };
  } finally {
    for (const w of watches) w.stop();
    for (const c of clients) c.close();
  }
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The apiserver in this process (SERVER=inprocess): client and server share one thread. */
async function inProcessServer(backend: Store): Promise<BenchServer> {
  const committed = new Map<string, number>();
  const app = await build({ store: timedStore(backend, committed) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, mode: 'in-process', cpu: async () => null, commits: async () => committed, profile: async () => undefined, close: () => app.close() };
}

async function apiserverBench(server: BenchServer): Promise<Record<string, unknown>> {
  const client = new RestClient({ server: server.url });
  try {
    const out: Record<string, unknown> = { server: server.mode };
    // JIT warm-up, not measured
    await createNamespace(client, 'warmup');
    await fill(client, 'warmup', WARMUP);
    await createNamespace(client, 'bench');
    const create = await phase(server, 'create', () => closedLoop(CONCURRENCY, SECONDS, (i) => client.create(R.pods, pod(`c-${i}`, 'bench'), 'bench')));
    if (PHASES.includes('create')) out.create = create;
    if (PHASES.includes('get')) out.get = await phase(server, 'get', () => closedLoop(CONCURRENCY, Math.max(2, SECONDS / 2), (i) => client.get(R.pods, `c-${(i * 7919) % create.ok}`, 'bench')));
    if (PHASES.includes('list')) out.list = await listBench(client, server);
    if (PHASES.includes('rate')) {
      await createNamespace(client, 'rate');
      out.createAtFixedRate = await phase(server, 'rate', () => openLoop(RATE, SECONDS, (i) => client.create(R.pods, pod(`r-${i}`, 'rate'), 'rate')));
    }
    if (PHASES.includes('watch')) out.watch = await watchBench(server, client);
    return out;
  } finally {
    client.close();
  }
}

/** Runs the apiserver bench on one backend, the server in its own process or in this one. */
async function onBackend(kind: 'sqlite' | 'etcd', where: string): Promise<Record<string, unknown>> {
  if (SERVER === 'inprocess') {
    const store = kind === 'sqlite' ? new SqliteStore(where) : new EtcdStore([where]);
    try {
      const server = await inProcessServer(store);
      try {
        return await apiserverBench(server);
      } finally {
        await server.close();
      }
    } finally {
      await store.close();
    }
  }
  const server = await forkServer(kind, where);
  try {
    return await apiserverBench(server);
  } finally {
    await server.close();
  }
}

async function etcdDirectBench(endpoint: string): Promise<Record<string, unknown>> {
  const etcd = new Etcd3({ hosts: endpoint });
  try {
    const value = Buffer.from(JSON.stringify(pod('x', 'bench')));
    const put = await closedLoop(CONCURRENCY, SECONDS, (i) => etcd.put(`/bench/direct/${i}`).value(value).exec());
    const txn = await closedLoop(CONCURRENCY, Math.max(2, SECONDS / 2), (i) => etcd.if(`/bench/txn/${i}`, 'Create', '==', 0).then(etcd.put(`/bench/txn/${i}`).value(value)).commit());
    return { put, createTxn: txn };
  } finally {
    etcd.close();
  }
}

async function main(): Promise<void> {
  // stdout carries only the JSON result; failures surface as counted request errors
  logger.level = process.env.SKIFF_LOG_LEVEL ?? 'silent';
  const result: Record<string, unknown> = { loadavgBefore: loadavg().map((x) => Math.round(x * 100) / 100), cpus: (await import('node:os')).cpus().length, seconds: SECONDS, concurrency: CONCURRENCY };
  let etcd: EtcdProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-sqlite-'));
  try {
    if (BACKENDS.includes('sqlite')) {
      result.sqlite = await onBackend('sqlite', join(dir, 'store.db'));
      result.loadavgAfterSqlite = loadavg().map((x) => Math.round(x * 100) / 100);
    }
    if (BACKENDS.includes('etcd') || BACKENDS.includes('etcdDirect')) {
      etcd = await startEtcd();
      if (BACKENDS.includes('etcd')) result.etcd = await onBackend('etcd', etcd.endpoint);
      if (BACKENDS.includes('etcdDirect')) result.etcdDirect = await etcdDirectBench(etcd.endpoint);
    }
  } finally {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  result.loadavgAfter = loadavg().map((x) => Math.round(x * 100) / 100);
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
