import type { Namespace, Pod } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from 'kubernetes-types/networking/v1.js';
import { fromLabelSelector, type Selector } from '../api/labels.js';
import { SkiffError } from '../util/errors.js';

/**
 * Slim internal structs: API objects are converted at the edge, once, into only what the engine
 * needs. Everything downstream (selection, render, trace, explain, lab) works on these.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

export interface ContainerPort {
  name?: string;
  port: number;
  protocol: Protocol;
}

export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** IPv4 pod IPs (the engine programs IPv4 only). */
  ips: string[];
  nodeName: string;
  ports: ContainerPort[];
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/** One `ports` entry; `port` undefined = every port of the protocol. */
export interface PortSpec {
  protocol: Protocol;
  port?: number | string;
  endPort?: number;
}

export type Peer =
  /** podSelector and/or namespaceSelector; null namespaceSelector = the policy's namespace. */
  | { kind: 'pods'; podSelector: Selector; namespaceSelector: Selector | null }
  | { kind: 'ipBlock'; cidr: string; except: string[] };

/** A rule: empty `peers` = every peer, empty `ports` = every port. */
export interface Rule {
  peers: Peer[];
  ports: PortSpec[];
}

export interface PolicyInfo {
  namespace: string;
  name: string;
  podSelector: Selector;
  ingressIsolation: boolean;
  egressIsolation: boolean;
  ingress: Rule[];
  egress: Rule[];
}

/** Everything render needs: the cluster's pods, namespaces and policies, plus what this node owns. */
export interface Snapshot {
  pods: PodInfo[];
  namespaces: NamespaceInfo[];
  policies: PolicyInfo[];
  nodeName: string;
}

export type Direction = 'ingress' | 'egress';

export function podKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

function toProtocol(p: string | undefined): Protocol {
  const v = (p ?? 'TCP').toUpperCase();
  if (v === 'TCP' || v === 'UDP' || v === 'SCTP') return v;
  throw new SkiffError('ERR_NETPOL_INVALID', `unsupported protocol ${JSON.stringify(p)}`);
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** A pod as the engine sees it, or null when it has no IPv4 address that policy applies to. */
export function toPodInfo(pod: Pod): PodInfo | null {
  const md = pod.metadata ?? {};
  const spec = pod.spec;
  const status = pod.status;
  if (!md.name || !md.namespace || !spec || spec.hostNetwork) return null;
  if (status?.phase === 'Succeeded' || status?.phase === 'Failed') return null;
  const ips = [...new Set([...(status?.podIPs ?? []).map((x) => x.ip), status?.podIP].filter((ip): ip is string => !!ip && IPV4.test(ip)))].sort();
  if (ips.length === 0) return null;
  const ports: ContainerPort[] = [];
  for (const c of spec.containers ?? []) {
    for (const p of c.ports ?? []) ports.push({ name: p.name, port: p.containerPort, protocol: toProtocol(p.protocol) });
  }
  return { namespace: md.namespace, name: md.name, labels: { ...(md.labels ?? {}) }, ips, nodeName: spec.nodeName ?? '', ports };
}

export function toNamespaceInfo(ns: Namespace): NamespaceInfo {
  const name = ns.metadata?.name ?? '';
  // Kubernetes sets this label on every namespace; policies commonly select namespaces by it.
  return { name, labels: { 'kubernetes.io/metadata.name': name, ...(ns.metadata?.labels ?? {}) } };
}

function toPeer(p: NetworkPolicyPeer, where: string): Peer {
  if (p.ipBlock) {
    if (p.podSelector || p.namespaceSelector) throw new SkiffError('ERR_NETPOL_INVALID', `${where}: ipBlock cannot be combined with selectors`);
    return { kind: 'ipBlock', cidr: p.ipBlock.cidr, except: [...(p.ipBlock.except ?? [])] };
  }
  if (!p.podSelector && !p.namespaceSelector) throw new SkiffError('ERR_NETPOL_INVALID', `${where}: peer needs podSelector, namespaceSelector or ipBlock`);
  // A missing podSelector next to a namespaceSelector means every pod of those namespaces.
  return { kind: 'pods', podSelector: fromLabelSelector(p.podSelector ?? {}) ?? [], namespaceSelector: p.namespaceSelector ? (fromLabelSelector(p.namespaceSelector) ?? []) : null };
}

function toPort(p: NetworkPolicyPort): PortSpec {
  const out: PortSpec = { protocol: toProtocol(p.protocol) };
  if (p.port !== undefined && p.port !== null) {
    out.port = typeof p.port === 'number' ? p.port : /^\d+$/.test(p.port) ? Number(p.port) : p.port;
    if (p.endPort !== undefined && typeof out.port === 'number') out.endPort = p.endPort;
  }
  return out;
}

/**
 * A NetworkPolicy as the engine sees it, with the API's defaulting applied: without policyTypes a
 * policy isolates ingress always and egress only when it has egress rules.
 */
export function toPolicyInfo(np: NetworkPolicy): PolicyInfo {
  const md = np.metadata ?? {};
  const spec = np.spec ?? { podSelector: {} };
  const where = `${md.namespace}/${md.name}`;
  const types = spec.policyTypes && spec.policyTypes.length > 0 ? spec.policyTypes : spec.egress && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  const rules = (list: readonly { from?: readonly NetworkPolicyPeer[]; to?: readonly NetworkPolicyPeer[]; ports?: readonly NetworkPolicyPort[] }[] | undefined): Rule[] =>
    (list ?? []).map((r, i) => ({
      peers: (r.from ?? r.to ?? []).map((p, j) => toPeer(p, `${where} rule ${i} peer ${j}`)),
      ports: (r.ports ?? []).map(toPort),
    }));
  return {
    namespace: md.namespace ?? 'default',
    name: md.name ?? '',
    podSelector: fromLabelSelector(spec.podSelector ?? {}) ?? [],
    ingressIsolation: types.includes('Ingress'),
    egressIsolation: types.includes('Egress'),
    ingress: rules(spec.ingress),
    egress: rules(spec.egress),
  };
}
