import { matches, type Selector } from '../api/labels.js';
import { cidrContains, parseCidr } from './ip.js';
import type { Direction, NamespaceInfo, Peer, PodInfo, PolicyInfo, PortSpec, Protocol, Rule, Snapshot } from './model.js';
import { podKey } from './model.js';

/**
 * NetworkPolicy selection semantics, pure. `Selection` indexes a snapshot once (pods by namespace,
 * namespace labels, memoized selector matches) so render stays fast at 1,000 x 1,000.
 */

const selectorKeys = new WeakMap<Selector, string>();

/** A canonical string of a selector, memoized per (immutable) selector. */
export function selectorKey(sel: Selector): string {
  let key = selectorKeys.get(sel);
  if (key === undefined) {
    const reqs = sel.map((r) => JSON.stringify('values' in r ? { ...r, values: [...r.values].sort() } : r));
    key = `[${reqs.sort().join(',')}]`;
    selectorKeys.set(sel, key);
  }
  return key;
}

/** A stable identity for a pod peer, used to share one ipset between policies. */
export function podPeerKey(policyNs: string, peer: Extract<Peer, { kind: 'pods' }>): string {
  const ns = peer.namespaceSelector === null ? `ns=${policyNs}` : `nssel=${selectorKey(peer.namespaceSelector)}`;
  return `${ns}|pods=${selectorKey(peer.podSelector)}`;
}

export interface PortRange {
  protocol: Protocol;
  /** undefined = every port of the protocol */
  from?: number;
  to?: number;
}

export class Selection {
  readonly podsByNs = new Map<string, PodInfo[]>();
  readonly nsByName = new Map<string, NamespaceInfo>();
  readonly podByIp = new Map<string, PodInfo>();
  readonly policiesByNs = new Map<string, PolicyInfo[]>();
  private readonly peerMemo = new Map<string, PodInfo[]>();

  constructor(readonly snap: Snapshot) {
    for (const ns of snap.namespaces) this.nsByName.set(ns.name, ns);
    const pods = [...snap.pods].sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
    for (const p of pods) {
      push(this.podsByNs, p.namespace, p);
      for (const ip of p.ips) this.podByIp.set(ip, p);
    }
    const pols = [...snap.policies].sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
    for (const pol of pols) push(this.policiesByNs, pol.namespace, pol);
  }

  /** Pods of this node that have an address (the ones the engine programs), sorted by key. */
  localPods(): PodInfo[] {
    return [...this.podsByNs.values()].flat().filter((p) => p.nodeName === this.snap.nodeName);
  }

  /** Policies that select `pod` and isolate it in `dir`, sorted by namespace/name. */
  isolating(pod: PodInfo, dir: Direction): PolicyInfo[] {
    return (this.policiesByNs.get(pod.namespace) ?? []).filter(
      (pol) => (dir === 'ingress' ? pol.ingressIsolation : pol.egressIsolation) && matches(pol.podSelector, pod.labels),
    );
  }

  /** Pods a pod peer selects (every node's), sorted by key. */
  peerPods(policyNs: string, peer: Extract<Peer, { kind: 'pods' }>): PodInfo[] {
    const key = podPeerKey(policyNs, peer);
    let out = this.peerMemo.get(key);
    if (!out) {
      const namespaces = peer.namespaceSelector === null
        ? [policyNs]
        : [...this.nsByName.values()].filter((ns) => matches(peer.namespaceSelector!, ns.labels)).map((ns) => ns.name).sort();
      out = namespaces.flatMap((ns) => (this.podsByNs.get(ns) ?? []).filter((p) => matches(peer.podSelector, p.labels)));
      this.peerMemo.set(key, out);
    }
    return out;
  }

  /** Does a peer admit an endpoint (a known pod or a bare address)? */
  peerMatches(policyNs: string, peer: Peer, ep: Endpoint): boolean {
    if (peer.kind === 'ipBlock') return ipInBlock(ep.ip, peer.cidr, peer.except);
    if (!ep.pod) return false;
    const ns = this.nsByName.get(ep.pod.namespace);
    const nsOk = peer.namespaceSelector === null ? ep.pod.namespace === policyNs : !!ns && matches(peer.namespaceSelector, ns.labels);
    return nsOk && matches(peer.podSelector, ep.pod.labels);
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export function ipInBlock(ip: string, cidr: string, except: readonly string[]): boolean {
  const c = parseCidr(cidr);
  if (!c || !cidrContains(c, ip)) return false;
  return !except.some((e) => {
    const x = parseCidr(e);
    return !!x && cidrContains(x, ip);
  });
}

/**
 * Resolves a port entry against the pod that receives the traffic (the destination pod): numbers
 * pass through, names are looked up in that pod's container ports with the same protocol. null =
 * the entry matches nothing for this pod (unknown name, or a name with no pod to resolve on).
 */
export function resolvePort(spec: PortSpec, dest: PodInfo | undefined): PortRange | null {
  if (spec.port === undefined) return { protocol: spec.protocol };
  if (typeof spec.port === 'number') return { protocol: spec.protocol, from: spec.port, to: spec.endPort ?? spec.port };
  const cp = dest?.ports.find((p) => p.name === spec.port && p.protocol === spec.protocol);
  return cp ? { protocol: spec.protocol, from: cp.port, to: cp.port } : null;
}

export interface Endpoint {
  ip: string;
  pod?: PodInfo;
}

export interface RuleRef {
  policy: string;
  direction: Direction;
  rule: number;
}

export interface DirectionVerdict {
  /** Pod key the direction applies to (source for egress, destination for ingress), if a pod. */
  pod?: string;
  /** Whether the policy engine programs this side (a pod of this cluster). */
  applies: boolean;
  isolatedBy: string[];
  allowedBy: RuleRef[];
  allowed: boolean;
}

export interface Verdict {
  allowed: boolean;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

function ruleAllows(sel: Selection, pol: PolicyInfo, rule: Rule, peer: Endpoint, dest: Endpoint, port: number, proto: Protocol): boolean {
  const peerOk = rule.peers.length === 0 || rule.peers.some((p) => sel.peerMatches(pol.namespace, p, peer));
  if (!peerOk) return false;
  if (rule.ports.length === 0) return true;
  return rule.ports.some((spec) => {
    const r = resolvePort(spec, dest.pod);
    return !!r && r.protocol === proto && (r.from === undefined || (port >= r.from && port <= (r.to ?? r.from)));
  });
}

function directionVerdict(sel: Selection, dir: Direction, self: Endpoint, peer: Endpoint, dest: Endpoint, port: number, proto: Protocol): DirectionVerdict {
  if (!self.pod) return { applies: false, isolatedBy: [], allowedBy: [], allowed: true };
  const pols = sel.isolating(self.pod, dir);
  const allowedBy: RuleRef[] = [];
  for (const pol of pols) {
    const rules = dir === 'ingress' ? pol.ingress : pol.egress;
    rules.forEach((rule, i) => {
      if (ruleAllows(sel, pol, rule, peer, dest, port, proto)) allowedBy.push({ policy: podKey(pol), direction: dir, rule: i });
    });
  }
  return { pod: podKey(self.pod), applies: true, isolatedBy: pols.map(podKey), allowedBy, allowed: pols.length === 0 || allowedBy.length > 0 };
}

/**
 * The reference answer: is a new connection src -> dst:port/proto allowed? Egress of the source
 * pod and ingress of the destination pod must both allow it; policies add up.
 */
export function evaluate(sel: Selection, src: Endpoint, dst: Endpoint, port: number, proto: Protocol): Verdict {
  const egress = directionVerdict(sel, 'egress', src, dst, dst, port, proto);
  const ingress = directionVerdict(sel, 'ingress', dst, src, dst, port, proto);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/** An endpoint by pod key or address. */
export function endpointOf(sel: Selection, ref: string): Endpoint | null {
  if (ref.includes('/') && !/^\d/.test(ref)) {
    const [ns, name] = ref.split('/');
    const pod = (sel.podsByNs.get(ns) ?? []).find((p) => p.name === name);
    return pod ? { ip: pod.ips[0], pod } : null;
  }
  return { ip: ref, pod: sel.podByIp.get(ref) };
}
