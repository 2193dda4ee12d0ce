// Helpers of the apiserver benchmark: latency stats, bounded load loops, a throwaway etcd, the
// apiserver under test in a child process.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdStore } from '../../src/store/etcd.js';
import type { Store } from '../../src/store/types.js';

export interface LatencyStats {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const round = (x: number): number => Math.round(x * 100) / 100;

export function stats(samples: number[]): LatencyStats {
  if (!samples.length) return { n: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const s = Float64Array.from(samples).sort();
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(s[s.length - 1]) };
}

/** Runs `op(i)` from `concurrency` loops until `seconds` have passed; returns ops/s and latencies. */
export async function closedLoop(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; ok: number; errors: number; firstError?: string; cpuMsPerOp: number; latency: LatencyStats }> {
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const i = next++;
        const s = performance.now();
        try {
          await op(i);
          lat.push(performance.now() - s);
        } catch (err) {
          errors++;
          firstError ??= String((err as Error).message ?? err);
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return { opsPerSec: Math.round(lat.length / elapsed), ok: lat.length, errors, firstError, cpuMsPerOp: cpuMsPer(cpu0, lat.length), latency: stats(lat) };
}

/**
 * Open loop: request i is due at t0 + i/rate, whether or not earlier ones have answered. Latency is
 * measured from the due time (no coordinated omission), so a stalled server shows up in the tail.
 */
export async function openLoop(
  rate: number,
  seconds: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ offeredPerSec: number; achievedPerSec: number; ok: number; errors: number; notSent: number; cpuMsPerOp: number; latency: LatencyStats }> {
  const cpu0 = process.cpuUsage();
  const total = Math.round(rate * seconds);
  const lat: number[] = [];
  const inflight: Promise<void>[] = [];
  let errors = 0;
  let open = 0;
  let notSent = 0;
  // bounded: a server that falls behind by more than 2 s of offered load gets no more requests
  const maxOpen = Math.max(64, rate * 2);
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      if (open >= maxOpen) {
        notSent++;
        continue;
      }
      const dueAt = t0 + (sent / rate) * 1000;
      open++;
      inflight.push(
        op(sent).then(
          () => void lat.push(performance.now() - dueAt),
          () => void errors++,
        ).finally(() => open--),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  return { offeredPerSec: rate, achievedPerSec: Math.round(lat.length / elapsed), ok: lat.length, errors, notSent, cpuMsPerOp: cpuMsPer(cpu0, lat.length), latency: stats(lat) };
}

/**
 * CPU time (user + system) of this process per operation since `since`: client and server
 * together, so a load-independent cost figure on a shared machine.
 */
export function cpuMsPer(since: NodeJS.CpuUsage, ops: number): number {
  const d = process.cpuUsage(since);
  return ops ? round((d.user + d.system) / 1000 / ops) : 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export interface EtcdProcess {
  endpoint: string;
  stop(): Promise<void>;
}

/** A real etcd (from apt) on loopback ports with a temp data dir; `stop()` kills it and removes the dir. */
export async function startEtcd(): Promise<EtcdProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const proc: ChildProcess = spawn(
    'etcd',
    ['--data-dir', dir, '--name', 'default', '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint, '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--log-level', 'error'],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => proc.once('exit', r));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const probe = new EtcdStore([endpoint]);
  const deadline = Date.now() + 20_000;
  try {
    for (;;) {
      try {
        await probe.currentRevision();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await probe.close();
  }
  return { endpoint, stop };
}

/** Epoch milliseconds with sub-millisecond precision, comparable across processes. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/**
 * The store as the apiserver sees it, recording when each create under the watch namespace was
 * acknowledged (committed and durable): the earliest moment a watch can deliver it.
 */
export function timedStore(store: Store, committed: Map<string, number>): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'create') {
        return async (key: string, value: Buffer): Promise<number> => {
          const rev = await target.create(key, value);
          if (key.startsWith(WATCH_PREFIX)) committed.set(key, epochMs());
          return rev;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Store keys of the watch phase's pods (namespace `watch`). */
export const WATCH_PREFIX = '/registry/core/pods/watch/';

export type ServerRequest = { type: 'cpu' | 'commits' | 'close' | 'profile-start' | 'profile-stop'; id: number; name?: string };
export type ServerMessage =
  | { type: 'ready'; url: string }
  | { type: 'cpu'; id: number; usage: NodeJS.CpuUsage }
  | { type: 'commits'; id: number; commits: [string, number][] }
  | { type: 'closed'; id: number }
  | { type: 'profile'; id: number };

/** The apiserver under test, wherever it runs. */
export interface BenchServer {
  url: string;
  /** where it runs: `process` (its own, measured apart) or `in-process` (with the client) */
  mode: string;
  /** the server's CPU usage so far; null when it shares this process */
  cpu(): Promise<NodeJS.CpuUsage | null>;
  /** epoch ms at which the store acknowledged each create under WATCH_PREFIX */
  commits(): Promise<Map<string, number>>;
  /** with SERVER_CPU_PROF: starts, or stops and writes (DIR/<name>.cpuprofile), a CPU profile of the server */
  profile(what: 'start' | 'stop', name?: string): Promise<void>;
  close(): Promise<void>;
}

/** The apiserver in a child process (scripts/bench/apiserver-server.ts). */
export async function forkServer(backend: 'sqlite' | 'etcd', where: string): Promise<BenchServer> {
  const child = fork(fileURLToPath(new URL('./apiserver-server.ts', import.meta.url)), [backend, where], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, (m: ServerMessage) => void>();
  let nextId = 0;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench apiserver exited with ${code} before it was ready`)));
    child.on('message', (m: ServerMessage) => {
      if (m.type === 'ready') resolve(m.url);
      else waiting.get(m.id)?.(m);
    });
  });
  const ask = (type: ServerRequest['type'], name?: string): Promise<ServerMessage> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (m) => {
        waiting.delete(id);
        resolve(m);
      });
      child.send({ type, id, name } satisfies ServerRequest, (err) => err && reject(err));
    });
  return {
    url,
    mode: 'process',
    cpu: async () => (await ask('cpu') as Extract<ServerMessage, { type: 'cpu' }>).usage,
    commits: async () => new Map((await ask('commits') as Extract<ServerMessage, { type: 'commits' }>).commits),
    profile: async (what, name) => void (await ask(what === 'start' ? 'profile-start' : 'profile-stop', name)),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await Promise.race([ask('close').then(() => exited), exited]);
      clearTimeout(timer);
    },
  };
}
