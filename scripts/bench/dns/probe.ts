/**
 * What skiff's DNS processes did during one dnsperf run: CPU time (this process plus the DNS
 * worker processes it forked, read from /proc), and for this process the event-loop delay and GC
 * pauses. It tells whether a latency tail comes from inside the server (GC, a stalled loop) or
 * from outside it (the kernel scheduler, dnsperf itself, other load on the machine).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

const TICKS = 100; // USER_HZ on Linux

/** utime+stime in ms of the direct children of `ppid` (the forked DNS workers). */
function childrenCpuMs(ppid: number): number {
  let ms = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'latin1');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) === ppid) ms += ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
  }
  return ms;
}

export interface ProbeResult {
  /** CPU ms of the DNS processes per 1000 answered queries */
  cpu_ms_per_1k_queries: number;
  cpu_ms: number;
  loop_delay_ms: { p50: number; p99: number; max: number };
  gc: { count: number; total_ms: number; max_ms: number };
}

export class Probe {
  private readonly cpu0 = process.cpuUsage();
  private readonly child0 = childrenCpuMs(process.pid);
  private readonly loop = monitorEventLoopDelay({ resolution: 2 });
  private readonly gcPauses: number[] = [];
  private readonly obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as PerformanceEntry[]) this.gcPauses.push(e.duration);
  });

  constructor() {
    this.loop.enable();
    this.obs.observe({ entryTypes: ['gc'] });
  }

  stop(answered: number): ProbeResult {
    this.loop.disable();
    this.obs.disconnect();
    const cpu = process.cpuUsage(this.cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000 + childrenCpuMs(process.pid) - this.child0;
    const ms = (ns: number) => r3(ns / 1e6);
    return {
      cpu_ms_per_1k_queries: r3((cpuMs * 1000) / Math.max(1, answered)),
      cpu_ms: Math.round(cpuMs),
      // the monitor reports lateness beyond its own 2 ms timer
      loop_delay_ms: { p50: ms(this.loop.percentile(50)), p99: ms(this.loop.percentile(99)), max: ms(this.loop.max) },
      gc: { count: this.gcPauses.length, total_ms: r3(this.gcPauses.reduce((a, b) => a + b, 0)), max_ms: r3(Math.max(0, ...this.gcPauses)) },
    };
  }
}

function r3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
