// Helpers of the apiserver benchmark: latency stats, bounded load loops, a throwaway etcd.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdStore } from '../../src/store/etcd.js';

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
