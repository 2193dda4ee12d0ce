import client from 'prom-client';
import { registry } from '../util/metrics.js';

/**
 * Ingress metrics live in a per-process registry so that worker processes can ship theirs to the
 * controller process, which serves the sum through the shared skiff registry.
 */

type MetricJSON = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Requests and latency of one route (Ingress, rule host, rule path), counted with plain arithmetic
 * on the request path; turned into prom-client values only when the metrics are read. (prom-client's
 * own inc/observe hash and validate the label object on every call: ~4 µs a request.)
 */
export class RouteStats {
  readonly byStatus = new Map<number, number>();
  /** per bucket, not cumulative; the last one is +Inf */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(readonly labels: { ingress: string; host: string; path: string }) {}

  record(status: number, seconds: number): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    let b = 0;
    while (b < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[b]) b++;
    this.buckets[b]++;
    this.sum += seconds;
    this.count++;
  }
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/** A prom-client-compatible metric (name, help, type, aggregator, get) computed from RouteStats. */
function statsMetric(name: string, help: string, type: 'counter' | 'histogram', rows: Map<string, RouteStats>): client.Metric {
  const values = (): MetricValue[] => {
    const out: MetricValue[] = [];
    for (const r of rows.values()) {
      if (type === 'counter') {
        for (const [status, n] of r.byStatus) out.push({ labels: { ...r.labels, status: String(status) }, value: n });
        continue;
      }
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += r.buckets[i];
        out.push({ labels: { ...r.labels, le }, value: acc, metricName: `${name}_bucket` });
      });
      out.push({ labels: { ...r.labels, le: '+Inf' }, value: r.count, metricName: `${name}_bucket` });
      out.push({ labels: { ...r.labels }, value: r.sum, metricName: `${name}_sum` });
      out.push({ labels: { ...r.labels }, value: r.count, metricName: `${name}_count` });
    }
    return out;
  };
  return { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as unknown as client.Metric;
}

export class IngressMetrics {
  readonly local = new client.Registry();
  private readonly routeStats = new Map<string, RouteStats>();
  readonly requests = statsMetric('skiff_ingress_requests_total', 'Requests served by the ingress, by Ingress, rule host, rule path and status code.', 'counter', this.routeStats);
  readonly latency = statsMetric('skiff_ingress_request_duration_seconds', 'Time from request to the end of the response, by Ingress, rule host and rule path.', 'histogram', this.routeStats);

  constructor() {
    this.local.registerMetric(this.requests);
    this.local.registerMetric(this.latency);
  }

  /** The counters of a route (one object per label set, kept for the life of the process). */
  stats(ingress: string, host: string, path: string): RouteStats {
    const key = `${ingress}\n${host}\n${path}`;
    let r = this.routeStats.get(key);
    if (!r) this.routeStats.set(key, (r = new RouteStats({ ingress, host, path })));
    return r;
  }

  readonly upstreamErrors = new client.Counter({
    name: 'skiff_ingress_upstream_errors_total',
    help: 'Failed attempts to reach an upstream endpoint, by Service and reason.',
    labelNames: ['service', 'reason'] as const,
    registers: [this.local],
  });
  readonly swaps = new client.Counter({
    name: 'skiff_ingress_config_swaps_total',
    help: 'Route table swaps applied by this process.',
    registers: [this.local],
  });
  readonly swapSeconds = new client.Histogram({
    name: 'skiff_ingress_config_swap_duration_seconds',
    help: 'Time to compile and swap in a new route table.',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.local],
  });
  readonly routes = new client.Gauge({
    name: 'skiff_ingress_routes',
    help: 'Path routes in the current route table.',
    registers: [this.local],
  });

  private readonly remote = new Map<string, MetricJSON>();
  private exported: string[] = [];

  /** Latest metrics of a worker process (replaces its previous report). */
  setRemote(worker: string, metrics: MetricJSON | undefined): void {
    if (metrics) this.remote.set(worker, metrics);
    else this.remote.delete(worker);
  }

  /** Serves the sum of local and worker metrics through the shared registry. */
  exportToShared(): void {
    for (const m of this.local.getMetricsAsArray()) {
      const name = m.name;
      const proxy = {
        name,
        help: m.help,
        type: m.type,
        aggregator: m.aggregator,
        get: async () => {
          const all = [await this.local.getMetricsAsJSON(), ...this.remote.values()];
          const agg = client.AggregatorRegistry.aggregate(all).getSingleMetric(name);
          return agg ? agg.get() : { name, help: m.help, type: m.type, values: [], aggregator: m.aggregator };
        },
      };
      registry.removeSingleMetric(name);
      registry.registerMetric(proxy as unknown as client.Metric);
      this.exported.push(name);
    }
  }

  unexport(): void {
    for (const name of this.exported) registry.removeSingleMetric(name);
    this.exported = [];
  }
}
