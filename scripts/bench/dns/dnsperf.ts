/**
 * Running dnsperf for the DNS benchmark and reading its report. dnsperf writes into a file, not a
 * pipe: at 10k qps `-v` prints ~500 KB/s, and a pipe read by the benchmark's own event loop (which
 * is also skiff's event loop when skiff runs in-process) would both cost the server CPU and block
 * dnsperf's receive thread whenever the pipe filled, adding latency to both servers.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';

export interface Target {
  address: string;
  port: number;
}

/** Runs dnsperf with its stdout+stderr in `outFile`; resolves with that text. */
export function dnsperf(target: Target, args: string[], outFile: string, maxMs: number): Promise<string> {
  const fd = openSync(outFile, 'w');
  return new Promise<string>((resolve, reject) => {
    const p = spawn('dnsperf', ['-s', target.address, '-p', String(target.port), ...args], { stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => p.kill('SIGKILL'), maxMs);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(timer);
      resolve(readFileSync(outFile, 'latin1'));
    });
  }).finally(() => {
    closeSync(fd);
    rmSync(outFile, { force: true });
  });
}

export interface Summary {
  qps: number;
  sent: number;
  lost: number;
}

export function summary(out: string): Summary {
  return {
    qps: Math.round(Number(out.match(/Queries per second:\s+([\d.]+)/)?.[1] ?? NaN)),
    sent: Number(out.match(/Queries sent:\s+(\d+)/)?.[1] ?? NaN),
    lost: Number(out.match(/Queries lost:\s+(\d+)/)?.[1] ?? NaN),
  };
}

/** Per-query latencies (ms, sorted) from `-v` lines such as `> NOERROR name A 0.000123`. */
export function latencies(out: string): Float64Array {
  const lat: number[] = [];
  const re = /^> \S+ .* ([\d.]+)$/gm;
  for (let m = re.exec(out); m; m = re.exec(out)) lat.push(Number(m[1]) * 1000);
  return Float64Array.from(lat).sort();
}

/**
 * The p-th percentile (nearest rank) counting lost queries as slower than any answer: with more
 * than (100-p)% lost the percentile is Infinity (printed as null in JSON), never a flattering number.
 */
export function percentile(sorted: Float64Array, lost: number, p: number): number {
  const n = sorted.length + lost;
  if (n === 0) return NaN;
  const rank = Math.ceil((p / 100) * n) - 1;
  return rank < sorted.length ? sorted[Math.max(0, rank)] : Infinity;
}
