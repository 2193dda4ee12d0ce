import type { Node, Pod, PodAffinityTerm, Taint } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../api/object.js';
import { objectKey } from '../api/object.js';
import { parseBytes, parseCpuMilli } from './quantity.js';

export type NodeObj = KubeObject & Node;
export type PodObj = KubeObject & Pod;

export interface Resources {
  cpu: number; // millicores
  memory: number; // bytes
  pods: number;
}

/** What scoring assumes a container without requests uses (as kube-scheduler does). */
export const DEFAULT_NONZERO_CPU = 100;
export const DEFAULT_NONZERO_MEMORY = 200 * 1024 * 1024;

/** A pod as the scheduler sees it: only the fields filters and scores need. */
export interface PodInfo {
  key: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  requests: Resources;
  nonzero: Resources;
  ownerUid?: string;
  /** spec.affinity.podAntiAffinity required terms (existing pods' terms constrain newcomers) */
  requiredAntiAffinity: readonly PodAffinityTerm[];
  pod: PodObj;
}

/** A node and what is placed on it (including pods assumed but not yet bound). */
export interface NodeInfo {
  name: string;
  node?: NodeObj;
  labels: Record<string, string>;
  taints: Taint[];
  unschedulable: boolean;
  allocatable: Resources;
  requested: Resources;
  nonzeroRequested: Resources;
  pods: Map<string, PodInfo>;
  // aggregates kept with `pods`, so a cycle need not walk every pod of every node
  /** placed pods per controller owner uid (SelectorSpread) */
  ownerCounts: Map<string, number>;
  /** placed pods with required anti-affinity terms (InterPodAffinity checks them against each newcomer) */
  podsWithRequiredAntiAffinity: Map<string, PodInfo>;
}

function containerRequests(c: { resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> } }): { cpu?: number; memory?: number } {
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  // requests default to limits when only limits are set
  const cpu = req.cpu ?? lim.cpu;
  const mem = req.memory ?? lim.memory;
  return { cpu: cpu === undefined ? undefined : parseCpuMilli(cpu as string), memory: mem === undefined ? undefined : parseBytes(mem as string) };
}

/** Effective pod requests: sum over containers, at least the largest init container, plus overhead. */
export function podRequests(pod: Pod): { requests: Resources; nonzero: Resources } {
  const requests: Resources = { cpu: 0, memory: 0, pods: 1 };
  const nonzero: Resources = { cpu: 0, memory: 0, pods: 1 };
  for (const c of pod.spec?.containers ?? []) {
    const r = containerRequests(c);
    requests.cpu += r.cpu ?? 0;
    requests.memory += r.memory ?? 0;
    nonzero.cpu += r.cpu ?? DEFAULT_NONZERO_CPU;
    nonzero.memory += r.memory ?? DEFAULT_NONZERO_MEMORY;
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const r = containerRequests(c);
    requests.cpu = Math.max(requests.cpu, r.cpu ?? 0);
    requests.memory = Math.max(requests.memory, r.memory ?? 0);
  }
  const oh = pod.spec?.overhead;
  if (oh) {
    requests.cpu += parseCpuMilli(oh.cpu as string | undefined);
    requests.memory += parseBytes(oh.memory as string | undefined);
  }
  return { requests, nonzero };
}

export function toPodInfo(pod: PodObj): PodInfo {
  const { requests, nonzero } = podRequests(pod);
  return {
    key: objectKey(pod),
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    labels: pod.metadata?.labels ?? {},
    requests,
    nonzero,
    ownerUid: pod.metadata?.ownerReferences?.find((o) => o.controller)?.uid,
    requiredAntiAffinity: pod.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [],
    pod,
  };
}

function emptyNodeInfo(name: string): NodeInfo {
  return {
    name,
    labels: {},
    taints: [],
    unschedulable: false,
    allocatable: { cpu: 0, memory: 0, pods: 0 },
    requested: { cpu: 0, memory: 0, pods: 0 },
    nonzeroRequested: { cpu: 0, memory: 0, pods: 0 },
    pods: new Map(),
    ownerCounts: new Map(),
    podsWithRequiredAntiAffinity: new Map(),
  };
}

function setNode(ni: NodeInfo, node: NodeObj): void {
  const a = node.status?.allocatable ?? node.status?.capacity ?? {};
  ni.node = node;
  ni.labels = node.metadata?.labels ?? {};
  ni.taints = [...(node.spec?.taints ?? [])];
  ni.unschedulable = !!node.spec?.unschedulable;
  ni.allocatable = {
    cpu: parseCpuMilli(a.cpu as string | undefined),
    memory: parseBytes(a.memory as string | undefined),
    pods: a.pods === undefined ? 110 : Number(parseBytes(a.pods as string)),
  };
}

const isTerminal = (p: Pod) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

/**
 * The scheduler's view of the cluster, updated by informer events and by assume/forget: nodes
 * with the pods placed on them and the sums of their requests. Filters and scores read it
 * synchronously inside one scheduling cycle, so a cycle always sees one consistent state.
 */
export class SchedulerCache {
  readonly nodes = new Map<string, NodeInfo>();
  private readonly podNode = new Map<string, string>();
  private readonly assumed = new Set<string>();
  /** nodeList() between node additions and removals (NodeInfos are updated in place) */
  private sorted?: NodeInfo[];

  upsertNode(node: NodeObj): void {
    const name = node.metadata!.name!;
    let ni = this.nodes.get(name);
    if (!ni) this.nodes.set(name, (ni = emptyNodeInfo(name)));
    if (!ni.node) this.sorted = undefined;
    setNode(ni, node);
  }

  removeNode(name: string): void {
    const ni = this.nodes.get(name);
    if (!ni) return;
    this.sorted = undefined;
    if (ni.pods.size === 0) this.nodes.delete(name);
    else ni.node = undefined; // pods still there: keep their accounting until they go
  }

  /** An assigned pod seen by the informer (add/update). Terminal pods free their resources. */
  upsertPod(pod: PodObj): void {
    const key = objectKey(pod);
    const nodeName = pod.spec?.nodeName;
    if (!nodeName || isTerminal(pod)) {
      this.removePod(key);
      return;
    }
    this.assumed.delete(key);
    const prev = this.podNode.get(key);
    if (prev) this.detach(key, prev);
    this.attach(toPodInfo(pod), nodeName);
  }

  removePod(key: string): void {
    const prev = this.podNode.get(key);
    if (prev) this.detach(key, prev);
    this.assumed.delete(key);
  }

  /** Places a pod on a node before its binding is confirmed. */
  assume(pod: PodObj, nodeName: string): void {
    const key = objectKey(pod);
    const prev = this.podNode.get(key);
    if (prev) this.detach(key, prev);
    const withNode = { ...pod, spec: { ...pod.spec, nodeName } } as PodObj;
    this.attach(toPodInfo(withNode), nodeName);
    this.assumed.add(key);
  }

  /** Undoes assume() after a failed binding (no-op once the informer has confirmed the pod). */
  forget(key: string): void {
    if (this.assumed.has(key)) this.removePod(key);
  }

  isPlaced(key: string): boolean {
    return this.podNode.has(key);
  }

  isAssumed(key: string): boolean {
    return this.assumed.has(key);
  }

  /** Nodes that exist (have a Node object), sorted by name for deterministic scheduling. Do not modify. */
  nodeList(): readonly NodeInfo[] {
    this.sorted ??= [...this.nodes.values()].filter((n) => n.node).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.sorted;
  }

  private attach(pi: PodInfo, nodeName: string): void {
    let ni = this.nodes.get(nodeName);
    if (!ni) this.nodes.set(nodeName, (ni = emptyNodeInfo(nodeName)));
    ni.pods.set(pi.key, pi);
    add(ni.requested, pi.requests, 1);
    add(ni.nonzeroRequested, pi.nonzero, 1);
    if (pi.ownerUid) ni.ownerCounts.set(pi.ownerUid, (ni.ownerCounts.get(pi.ownerUid) ?? 0) + 1);
    if (pi.requiredAntiAffinity.length) ni.podsWithRequiredAntiAffinity.set(pi.key, pi);
    this.podNode.set(pi.key, nodeName);
  }

  private detach(key: string, nodeName: string): void {
    this.podNode.delete(key);
    const ni = this.nodes.get(nodeName);
    const pi = ni?.pods.get(key);
    if (!ni || !pi) return;
    ni.pods.delete(key);
    add(ni.requested, pi.requests, -1);
    add(ni.nonzeroRequested, pi.nonzero, -1);
    if (pi.ownerUid) {
      const n = (ni.ownerCounts.get(pi.ownerUid) ?? 1) - 1;
      if (n > 0) ni.ownerCounts.set(pi.ownerUid, n);
      else ni.ownerCounts.delete(pi.ownerUid);
    }
    ni.podsWithRequiredAntiAffinity.delete(key);
    if (!ni.node && ni.pods.size === 0) this.nodes.delete(nodeName);
  }
}

function add(into: Resources, r: Resources, sign: 1 | -1): void {
  into.cpu += sign * r.cpu;
  into.memory += sign * r.memory;
  into.pods += sign * r.pods;
}
