import client from 'prom-client';
import { registry } from '../util/metrics.js';

/**
 * Ingress metrics live in a per-process registry so that worker processes can ship theirs to the
 * controller process, which serves the sum through the shared skiff registry.
 */

type MetricJSON = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

export class IngressMetrics {
  readonly local = new client.Registry();
  readonly requests = new client.Counter({
    name: 'skiff_ingress_requests_total',
    help: 'Requests served by the ingress, by Ingress, rule host, rule path and status code.',
    labelNames: ['ingress', 'host', 'path', 'status'] as const,
    registers: [this.local],
  });
  readonly latency = new client.Histogram({
    name: 'skiff_ingress_request_duration_seconds',
    help: 'Time from request to the end of the response, by Ingress, rule host and rule path.',
    labelNames: ['ingress', 'host', 'path'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.local],
  });
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
