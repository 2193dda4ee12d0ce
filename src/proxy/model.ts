import type { Service, ServicePort } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';

/** The label an EndpointSlice carries naming its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** One port of one Service, slimmed to what the proxy renders. Key: `ns/name:portName/PROTO`. */
export interface ServicePortInfo {
  key: string;
  namespace: string;
  name: string;
  portName: string;
  protocol: Protocol;
  port: number;
  clusterIP?: string;
  nodePort?: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  loadBalancerSourceRanges: string[];
  /** ClientIP affinity timeout in seconds; 0 means no affinity. */
  affinitySeconds: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  healthCheckNodePort?: number;
}

/** One endpoint address:port for one service port, with its conditions. */
export interface EndpointInfo {
  ip: string;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
}

/** Everything one render needs: service ports and their endpoints, by service port key. */
export interface ProxySnapshot {
  services: Map<string, ServicePortInfo>;
  endpoints: Map<string, EndpointInfo[]>;
}

export function servicePortKey(ns: string, name: string, portName: string, protocol: string): string {
  return `${ns}/${name}:${portName}/${protocol}`;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function isIPv4(ip: string | undefined): ip is string {
  return !!ip && IPV4.test(ip);
}

/** Converts a Service into its proxied ports; headless, ExternalName and IPv6-only Services give none. */
export function servicePortsOf(svc: Service): ServicePortInfo[] {
  const spec = svc.spec;
  const ns = svc.metadata?.namespace ?? 'default';
  const name = svc.metadata?.name ?? '';
  if (!spec || spec.type === 'ExternalName') return [];
  const clusterIP = isIPv4(spec.clusterIP) ? spec.clusterIP : undefined;
  if (!clusterIP) return [];
  const external = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const lbIPs = spec.type === 'LoadBalancer' ? (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(isIPv4) : [];
  const affinity = spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : 0;
  return (spec.ports ?? []).map((p: ServicePort) => {
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    const info: ServicePortInfo = {
      key: servicePortKey(ns, name, p.name ?? '', protocol),
      namespace: ns,
      name,
      portName: p.name ?? '',
      protocol,
      port: p.port,
      clusterIP,
      externalIPs: uniqSorted((spec.externalIPs ?? []).filter(isIPv4)),
      loadBalancerIPs: uniqSorted(lbIPs),
      loadBalancerSourceRanges: uniqSorted((spec.loadBalancerSourceRanges ?? []).map((r) => r.trim()).filter((r) => r.length > 0 && !r.includes(':'))),
      affinitySeconds: affinity,
      externalPolicyLocal: external && spec.externalTrafficPolicy === 'Local',
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
    };
    if (external && p.nodePort) info.nodePort = p.nodePort;
    if (info.externalPolicyLocal && spec.healthCheckNodePort) info.healthCheckNodePort = spec.healthCheckNodePort;
    return info;
  });
}

/** The Service an EndpointSlice belongs to (`ns/name`), or undefined when unlabelled. */
export function sliceServiceKey(slice: EndpointSlice): string | undefined {
  const svc = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  return svc ? `${slice.metadata?.namespace ?? 'default'}/${svc}` : undefined;
}

/**
 * Merges the IPv4 slices of one Service into endpoints per service port key, deduplicated by
 * ip:port (a ready copy wins) and sorted, so the render is deterministic.
 */
export function endpointsOf(ports: ServicePortInfo[], slices: EndpointSlice[]): Map<string, EndpointInfo[]> {
  const out = new Map<string, Map<string, EndpointInfo>>();
  for (const sp of ports) out.set(sp.key, new Map());
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    for (const sport of slice.ports ?? []) {
      const sp = ports.find((p) => p.portName === (sport.name ?? '') && p.protocol === (sport.protocol ?? 'TCP'));
      if (!sp || !sport.port) continue;
      const acc = out.get(sp.key)!;
      for (const ep of slice.endpoints ?? []) {
        const ip = ep.addresses?.[0];
        if (!isIPv4(ip)) continue;
        const c = ep.conditions ?? {};
        const ready = c.ready ?? true;
        const info: EndpointInfo = { ip, port: sport.port, ready, serving: c.serving ?? ready, terminating: c.terminating ?? false };
        if (ep.nodeName) info.nodeName = ep.nodeName;
        const id = `${ip}:${sport.port}`;
        const prev = acc.get(id);
        if (!prev || (!prev.ready && info.ready)) acc.set(id, info);
      }
    }
  }
  const res = new Map<string, EndpointInfo[]>();
  for (const [key, acc] of out) res.set(key, sortEndpoints([...acc.values()]));
  return res;
}

/** Endpoints by address then port (each address parsed once, not once per comparison). */
export function sortEndpoints(eps: EndpointInfo[]): EndpointInfo[] {
  const keyed = eps.map((ep) => ({ ep, ip: ipToNum(ep.ip) }));
  keyed.sort((a, b) => a.ip - b.ip || a.ep.port - b.ep.port);
  return keyed.map((k) => k.ep);
}

/** A dotted IPv4 address as a number (the caller has checked the format). */
export function ipToNum(ip: string): number {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return n * 256 + octet;
}

/** Whether `ip` lies inside `cidr` (IPv4 a.b.c.d/n). */
export function cidrContains(cidr: string, ip: string): boolean {
  const [net, mask] = parsedCidr(cidr);
  return ((ipToNum(ip) & mask) >>> 0) === net;
}

const cidrCache = new Map<string, [number, number]>();

/** A CIDR as [network, mask], parsed once (the render asks once per service port, for the same few CIDRs). */
function parsedCidr(cidr: string): [number, number] {
  let c = cidrCache.get(cidr);
  if (c === undefined) {
    const [base, bitsStr] = cidr.split('/');
    const bits = Number(bitsStr ?? 32);
    const mask = bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    c = [((ipToNum(base) & mask) >>> 0), mask];
    if (cidrCache.size > 1000) cidrCache.clear();
    cidrCache.set(cidr, c);
  }
  return c;
}

/**
 * Endpoints that take traffic: the ready ones; when none is ready, the serving-but-terminating
 * ones (graceful drain), as kube-proxy does.
 */
export function usableEndpoints(eps: EndpointInfo[]): EndpointInfo[] {
  const ready = eps.filter((e) => e.ready);
  if (ready.length > 0) return ready;
  return eps.filter((e) => e.serving && e.terminating);
}

function uniqSorted(xs: string[]): string[] {
  return [...new Set(xs)].sort();
}

/** Builds a snapshot from whole Services and EndpointSlices (tests, benchmarks, full rebuilds). */
export function snapshotFromObjects(services: Service[], slices: EndpointSlice[]): ProxySnapshot {
  const bySvc = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const k = sliceServiceKey(s);
    if (!k) continue;
    const list = bySvc.get(k) ?? [];
    list.push(s);
    bySvc.set(k, list);
  }
  const snap: ProxySnapshot = { services: new Map(), endpoints: new Map() };
  for (const svc of services) {
    const ports = servicePortsOf(svc);
    const eps = endpointsOf(ports, bySvc.get(`${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name}`) ?? []);
    for (const p of ports) {
      snap.services.set(p.key, p);
      snap.endpoints.set(p.key, eps.get(p.key) ?? []);
    }
  }
  return snap;
}
