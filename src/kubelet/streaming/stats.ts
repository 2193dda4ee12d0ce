import { readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ContainerInfo, ContainerStats } from '../runtime/types.js';

/** The subset of the kubelet Summary API (/stats/summary) that resource metrics need. */
export interface Summary {
  node: { nodeName: string; cpu: { time: string; usageNanoCores: number }; memory: { time: string; workingSetBytes: number } };
  pods: {
    podRef: { name: string; namespace: string; uid: string };
    containers: { name: string; cpu: { time: string; usageNanoCores: number }; memory: { time: string; workingSetBytes: number } }[];
  }[];
}

/** Pure: the Summary from the node's pods, the runtime's running containers and their stats. */
export function renderSummary(nodeName: string, pods: Pod[], containers: ContainerInfo[], stats: Map<string, ContainerStats>, node: ContainerStats, now: Date): Summary {
  const time = now.toISOString();
  const out: Summary = { node: { nodeName, cpu: { time, usageNanoCores: node.cpuNanoCores }, memory: { time, workingSetBytes: node.memoryBytes } }, pods: [] };
  for (const p of [...pods].sort((a, b) => `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`))) {
    const uid = p.metadata?.uid ?? '';
    const cs = containers.filter((c) => c.podUid === uid && c.state === 'running' && c.role === 'app' && stats.has(c.id)).sort((a, b) => a.name.localeCompare(b.name));
    if (cs.length === 0) continue;
    out.pods.push({
      podRef: { name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '', uid },
      containers: cs.map((c) => ({ name: c.name, cpu: { time, usageNanoCores: stats.get(c.id)!.cpuNanoCores }, memory: { time, workingSetBytes: stats.get(c.id)!.memoryBytes } })),
    });
  }
  return out;
}

async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Node CPU (sampled over `ms`) and memory in use. */
export async function nodeUsage(cores: number, ms = 200): Promise<ContainerStats> {
  const a = await cpuTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = await cpuTicks();
  const frac = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
  return { cpuNanoCores: Math.round(frac * cores * 1e9), memoryBytes: totalmem() - freemem() };
}
