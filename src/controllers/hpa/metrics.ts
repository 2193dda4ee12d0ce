import type { ApiClient } from '../../client/types.js';
import { parseCpuMilli } from '../../scheduler/quantity.js';

/** Where the HPA reads pod CPU usage. */
export interface PodMetricsSource {
  /** CPU usage in millicores per pod name, for the pods of `namespace` matching `selector` (label selector string). */
  podCpu(namespace: string, selector: string): Promise<Map<string, number>>;
}

interface PodMetricsList {
  items?: { metadata?: { name?: string }; containers?: { usage?: { cpu?: string } }[] }[];
}

/**
 * Reads the resource metrics API (metrics.k8s.io/v1beta1 PodMetrics, what `kubectl top pods`
 * reads), which the apiserver serves from the kubelets' stats.
 */
export class ResourceMetricsApiSource implements PodMetricsSource {
  constructor(private readonly client: ApiClient) {}
  async podCpu(namespace: string, selector: string): Promise<Map<string, number>> {
    const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
    const res = await this.client.request('GET', `/apis/metrics.k8s.io/v1beta1/namespaces/${encodeURIComponent(namespace)}/pods${q}`);
    const out = new Map<string, number>();
    for (const item of (res.body as PodMetricsList)?.items ?? []) {
      const name = item.metadata?.name;
      if (!name) continue;
      out.set(name, (item.containers ?? []).reduce((sum, c) => sum + parseCpuMilli(c.usage?.cpu), 0));
    }
    return out;
  }
}

/** Synthetic CPU figures for tests and benchmarks. */
export class FakeMetricsSource implements PodMetricsSource {
  private readonly cpu = new Map<string, number>();
  set(namespace: string, pod: string, milli: number): void {
    this.cpu.set(`${namespace}/${pod}`, milli);
  }
  clear(): void {
    this.cpu.clear();
  }
  async podCpu(namespace: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [k, v] of this.cpu) if (k.startsWith(`${namespace}/`)) out.set(k.slice(namespace.length + 1), v);
    return out;
  }
}
