import { counter, gauge, histogram } from '../util/metrics.js';

/** The proxy's Prometheus metrics (one set per process, shared by proxier instances). */
export function proxyMetrics() {
  return {
    syncDuration: histogram<'mode'>({
      name: 'skiff_proxy_sync_duration_seconds',
      help: 'Time to render and apply one proxy sync, by mode (full, partial, noop).',
      labelNames: ['mode'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    lastSync: gauge({ name: 'skiff_proxy_last_sync_success_timestamp_seconds', help: 'Unix time of the last successful proxy sync.' }),
    programming: histogram({
      name: 'skiff_proxy_network_programming_duration_seconds',
      help: 'From an EndpointSlice change (its trigger-time annotation, else when seen) to rules in the kernel.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
    rules: gauge<'table'>({ name: 'skiff_proxy_rules', help: 'Rules the proxy programs, by table.', labelNames: ['table'] }),
    restoreFailures: counter({ name: 'skiff_proxy_restore_failures_total', help: 'Failed iptables-restore runs (each forces a full sync).' }),
    syncs: counter<'mode'>({ name: 'skiff_proxy_syncs_total', help: 'Proxy syncs by mode (full, partial, noop).', labelNames: ['mode'] }),
  };
}
