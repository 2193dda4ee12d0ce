import client from 'prom-client';

/**
 * One registry for the process. Components register their metrics here with the `skiff_` prefix;
 * the apiserver, agent and add-ons serve it on /metrics.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'skiff_process_' });

type Cfg<T extends string> = { name: string; help: string; labelNames?: readonly T[] };

function existing(name: string) {
  return registry.getSingleMetric(name);
}

export function counter<T extends string>(cfg: Cfg<T>): client.Counter<T> {
  return (existing(cfg.name) as client.Counter<T>) ?? new client.Counter<T>({ ...cfg, registers: [registry] });
}

export function gauge<T extends string>(cfg: Cfg<T>): client.Gauge<T> {
  return (existing(cfg.name) as client.Gauge<T>) ?? new client.Gauge<T>({ ...cfg, registers: [registry] });
}

export function histogram<T extends string>(cfg: Cfg<T> & { buckets?: number[] }): client.Histogram<T> {
  return (existing(cfg.name) as client.Histogram<T>) ?? new client.Histogram<T>({ ...cfg, registers: [registry] });
}

export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
