import type { Namespace, Pod } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy, NetworkPolicySpec } from 'kubernetes-types/networking/v1.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type PodInfo, type Snapshot } from './model.js';

/**
 * Compact builders of API objects, shared by unit tests, the policy lab and the benchmark, so
 * every path feeds the engine the same shapes the API serves.
 */

export interface PodSpecLite {
  labels?: Record<string, string>;
  ip?: string;
  node?: string;
  /** `80/TCP`, `serve-81-udp=81/UDP` (name=port/proto) */
  ports?: string[];
}

export function parsePortDecl(decl: string): { name?: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' } {
  const m = decl.match(/^(?:([a-z0-9-]+)=)?(\d+)(?:\/(TCP|UDP|SCTP))?$/i);
  if (!m) throw new Error(`bad port ${JSON.stringify(decl)}: expected [name=]port[/TCP|UDP|SCTP]`);
  return { name: m[1], port: Number(m[2]), protocol: (m[3]?.toUpperCase() ?? 'TCP') as 'TCP' | 'UDP' | 'SCTP' };
}

export function makePod(ns: string, name: string, spec: PodSpecLite = {}): Pod {
  const ports = (spec.ports ?? []).map(parsePortDecl).map((p) => ({ name: p.name, containerPort: p.port, protocol: p.protocol }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: ns, name, labels: { ...(spec.labels ?? {}) } },
    spec: { nodeName: spec.node ?? 'node-a', containers: [{ name: 'c', image: 'skiff/busybox:1.36', ports }] },
    status: spec.ip ? { phase: 'Running', podIP: spec.ip, podIPs: [{ ip: spec.ip }] } : { phase: 'Pending' },
  };
}

export function makeNamespace(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...labels } } };
}

export function makePolicy(ns: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: ns, name }, spec };
}

export const XYZ_PORTS = ['serve-80-tcp=80/TCP', 'serve-81-tcp=81/TCP', 'serve-80-udp=80/UDP', 'serve-81-udp=81/UDP'];

/** The upstream e2e model as a snapshot: namespaces x, y, z (label ns=NAME) with pods a, b, c (label pod=NAME). */
export function xyz(policies: [string, string, NetworkPolicySpec][], nodeName = 'node-a'): Snapshot {
  const pods: PodInfo[] = [];
  let n = 10;
  for (const ns of ['x', 'y', 'z']) for (const p of ['a', 'b', 'c']) pods.push(toPodInfo(makePod(ns, p, { labels: { pod: p }, ip: `10.244.0.${n++}`, ports: XYZ_PORTS }))!);
  return {
    nodeName,
    pods,
    namespaces: ['x', 'y', 'z'].map((ns) => toNamespaceInfo(makeNamespace(ns, { ns }))),
    policies: policies.map(([ns, name, spec]) => toPolicyInfo(makePolicy(ns, name, spec))),
  };
}
