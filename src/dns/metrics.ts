/**
 * DNS metrics. The hot path only bumps plain counters in a Map; a timer flushes them into the
 * prom-client registry once a second (label hashing per packet would cost more than the answer).
 */
import { counter, histogram } from '../util/metrics.js';
import { RCODE_NAMES, TYPE_NAMES } from './wire.js';

export const metrics = {
  queries: counter({ name: 'skiff_dns_queries_total', help: 'DNS queries answered, by query type and response code', labelNames: ['type', 'rcode'] as const }),
  latency: histogram({
    name: 'skiff_dns_request_duration_seconds',
    help: 'Time to answer a DNS query (in-process, excluding the network; sampled, 1 query in 32)',
    buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 2.5],
  }),
  cacheHits: counter({ name: 'skiff_dns_cache_hits_total', help: 'Answers served from a cache', labelNames: ['cache'] as const }),
  forwarded: counter({ name: 'skiff_dns_forwarded_total', help: 'Queries for names outside the cluster zones sent to (or answered from the cache of) the upstreams', labelNames: ['rcode', 'cached'] as const }),
  rateLimited: counter({ name: 'skiff_dns_rate_limited_total', help: 'Queries dropped by the per-client rate limit' }),
  malformed: counter({ name: 'skiff_dns_malformed_total', help: 'Packets that did not parse as a DNS query' }),
  programming: histogram({
    name: 'skiff_dns_programming_latency_seconds',
    help: 'Time from a Service/EndpointSlice/Namespace change being seen to it being served',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }),
};

function typeLabel(t: number): string {
  return TYPE_NAMES[t] ?? 'other';
}

function rcodeLabel(r: number): string {
  return RCODE_NAMES[r] ?? String(r);
}

/** One flush worth of aggregated counts (also what a worker process sends to the primary). */
export interface StatsBatch {
  /** `qtype|rcode` → count */
  counts: [string, number][];
  packetHits: number;
  latencies: number[];
  /** `rcode|cached` → count */
  forwarded: [string, number][];
  rateLimited: number;
  malformed: number;
}

/** Moves a batch into the prom-client registry. */
export function recordBatch(b: StatsBatch): void {
  for (const [key, n] of b.counts) {
    const [t, r] = key.split('|').map(Number);
    metrics.queries.inc({ type: typeLabel(t), rcode: rcodeLabel(r) }, n);
  }
  if (b.packetHits) metrics.cacheHits.inc({ cache: 'packet' }, b.packetHits);
  for (const [key, n] of b.forwarded) {
    const [r, cached] = key.split('|');
    metrics.forwarded.inc({ rcode: rcodeLabel(Number(r)), cached }, n);
    if (cached === 'true') metrics.cacheHits.inc({ cache: 'forward' }, n);
  }
  if (b.rateLimited) metrics.rateLimited.inc(b.rateLimited);
  if (b.malformed) metrics.malformed.inc(b.malformed);
  for (const s of b.latencies) metrics.latency.observe(s);
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/** Per-process aggregation; flushed once a second to `sink` (the registry, or the primary process). */
export class DnsStats {
  private counts = new Map<number, number>();
  private seen = 0;
  private fwd = new Map<string, number>();
  private hits = 0;
  private limited = 0;
  private bad = 0;
  private latencies: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sink: (b: StatsBatch) => void = recordBatch) {
    this.timer = setInterval(() => this.flush(), 1000);
    this.timer.unref();
  }

  /**
   * A start time for 1 query in 32 (at most 2000 a second), else 0n: the latency histogram is
   * sampled so that the once-a-second flush into prom-client never stalls the event loop.
   */
  sampleStart(): bigint {
    return (++this.seen & 31) === 0 && this.latencies.length < 2000 ? process.hrtime.bigint() : 0n;
  }

  answered(qtype: number, rcode: number, startNs: bigint, fromCache: boolean): void {
    const key = qtype * 32 + rcode;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (fromCache) this.hits++;
    if (startNs !== 0n) this.latencies.push(Number(process.hrtime.bigint() - startNs) / 1e9);
  }

  forwarded(rcode: number, cached: boolean): void {
    bump(this.fwd, `${rcode}|${cached}`);
  }

  rateLimited(): void {
    this.limited++;
  }

  malformed(): void {
    this.bad++;
  }

  flush(): void {
    if (!this.counts.size && !this.fwd.size && !this.limited && !this.bad) return;
    const counts: [string, number][] = [...this.counts].map(([k, n]) => [`${Math.floor(k / 32)}|${k % 32}`, n]);
    const batch: StatsBatch = { counts, packetHits: this.hits, latencies: this.latencies, forwarded: [...this.fwd], rateLimited: this.limited, malformed: this.bad };
    this.counts = new Map();
    this.fwd = new Map();
    this.hits = this.limited = this.bad = 0;
    this.latencies = [];
    this.sink(batch);
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
