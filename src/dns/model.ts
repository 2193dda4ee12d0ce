/**
 * Slim internal structs for DNS, converted at the edge from API objects, and the immutable
 * Snapshot the record lookups read. Only the fields DNS needs survive the conversion.
 */
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { isIP } from 'node:net';
import { formatV6, ipv6Bytes } from './wire.js';

export interface DnsPort {
  /** '' for an unnamed port */
  name: string;
  /** lowercase: 'tcp' | 'udp' | 'sctp' */
  protocol: string;
  port: number;
}

export type ServiceKind = 'ClusterIP' | 'Headless' | 'ExternalName';

export interface DnsService {
  namespace: string;
  name: string;
  kind: ServiceKind;
  /** ClusterIPs (canonical text form); empty for headless and ExternalName */
  clusterIPs: string[];
  externalName?: string;
  ports: DnsPort[];
  publishNotReadyAddresses: boolean;
}

export interface DnsEndpoint {
  /** canonical text form */
  address: string;
  hostname?: string;
  ready: boolean;
  /** the EndpointSlice's ports (target ports) */
  ports: DnsPort[];
}

export interface Snapshot {
  /** false until every informer has synced: NXDOMAIN then becomes SERVFAIL */
  synced: boolean;
  namespaces: Set<string>;
  /** key `ns/name` */
  services: Map<string, DnsService>;
  /** key `ns/service`, all slices of the service merged, deduplicated by address */
  endpoints: Map<string, DnsEndpoint[]>;
  /** `ns` → pod IPs (for `pods verified`) */
  podIPs: Map<string, Set<string>>;
  /** Unix seconds of the last change (the SOA serial) */
  serial: number;
}

export function emptySnapshot(synced = true): Snapshot {
  return { synced, namespaces: new Set(), services: new Map(), endpoints: new Map(), podIPs: new Map(), serial: Math.floor(Date.now() / 1000) };
}

/** Canonical text form of an IP (lowercase, RFC 5952 for IPv6), or undefined if it is not an IP. */
export function canonicalIP(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  const v = isIP(ip);
  if (v === 4) return ip.split('.').map(Number).join('.');
  if (v === 6) return formatV6(ipv6Bytes(ip)!);
  return undefined;
}

function toPorts(ports: readonly { name?: string; protocol?: string; port?: number }[] | undefined): DnsPort[] {
  return (ports ?? [])
    .filter((p) => typeof p.port === 'number' && p.port > 0)
    .map((p) => ({ name: (p.name ?? '').toLowerCase(), protocol: (p.protocol ?? 'TCP').toLowerCase(), port: p.port! }));
}

export function toDnsService(svc: Service): DnsService | undefined {
  const ns = svc.metadata?.namespace;
  const name = svc.metadata?.name;
  if (!ns || !name) return undefined;
  const spec = svc.spec ?? {};
  const base = { namespace: ns, name, ports: toPorts(spec.ports), publishNotReadyAddresses: spec.publishNotReadyAddresses === true };
  if (spec.type === 'ExternalName') return { ...base, kind: 'ExternalName', clusterIPs: [], externalName: spec.externalName ?? '' };
  const raw = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  if (raw.length === 0 || raw[0] === 'None') return { ...base, kind: 'Headless', clusterIPs: [] };
  const ips = raw.map(canonicalIP).filter((x): x is string => !!x);
  return { ...base, kind: 'ClusterIP', clusterIPs: [...new Set(ips)] };
}

/** The Service an EndpointSlice belongs to: `ns/name` from the kubernetes.io/service-name label. */
export function sliceServiceKey(slice: EndpointSlice): string | undefined {
  const svc = slice.metadata?.labels?.['kubernetes.io/service-name'];
  const ns = slice.metadata?.namespace;
  return svc && ns ? `${ns}/${svc}` : undefined;
}

export function toDnsEndpoints(slice: EndpointSlice): DnsEndpoint[] {
  const ports = toPorts(slice.ports);
  const out: DnsEndpoint[] = [];
  for (const ep of slice.endpoints ?? []) {
    const ready = ep.conditions?.ready ?? true;
    for (const a of ep.addresses ?? []) {
      const address = canonicalIP(a);
      if (address) out.push({ address, hostname: ep.hostname ? ep.hostname.toLowerCase() : undefined, ready, ports });
    }
  }
  return out;
}

/** Merges endpoints of several slices of one service; the first occurrence of an address wins, ready beats not ready. */
export function mergeEndpoints(lists: DnsEndpoint[][]): DnsEndpoint[] {
  const byAddr = new Map<string, DnsEndpoint>();
  for (const list of lists) {
    for (const ep of list) {
      const key = `${ep.address}|${ep.hostname ?? ''}`;
      const cur = byAddr.get(key);
      if (!cur || (!cur.ready && ep.ready)) byAddr.set(key, ep);
    }
  }
  return [...byAddr.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

export interface SnapshotSources {
  services: Service[];
  slices: EndpointSlice[];
  namespaces: { metadata?: { name?: string } }[];
  pods?: { metadata?: { namespace?: string }; status?: { podIPs?: readonly { ip?: string }[]; podIP?: string } }[];
  synced: boolean;
  serial?: number;
}

/**
 * Conversions remembered per API object. Informer caches keep an unchanged object's identity, so
 * a rebuild after one change converts one object, not all of them. The remembered results are
 * what the pure conversions return, so a snapshot built with a memo equals one built without.
 */
export class SnapshotMemo {
  readonly services = new WeakMap<object, DnsService | undefined>();
  readonly slices = new WeakMap<object, DnsEndpoint[]>();
  /** a one-slice Service's endpoints, sorted, keyed on that slice's converted list */
  readonly merged = new WeakMap<DnsEndpoint[], DnsEndpoint[]>();
}

function memoized<K extends object, V>(memo: WeakMap<K, V> | undefined, key: K, fn: (k: K) => V): V {
  if (!memo) return fn(key);
  if (memo.has(key)) return memo.get(key) as V;
  const v = fn(key);
  memo.set(key, v);
  return v;
}

/** Builds the immutable snapshot the lookups read (pure: same objects, same snapshot). */
export function buildSnapshot(src: SnapshotSources, memo?: SnapshotMemo): Snapshot {
  const snap = emptySnapshot(src.synced);
  if (src.serial !== undefined) snap.serial = src.serial;
  for (const ns of src.namespaces) if (ns.metadata?.name) snap.namespaces.add(ns.metadata.name);
  for (const s of src.services) {
    const d = memoized(memo?.services, s, toDnsService);
    if (d) snap.services.set(`${d.namespace}/${d.name}`, d);
  }
  const bySvc = new Map<string, DnsEndpoint[][]>();
  for (const slice of src.slices) {
    const key = sliceServiceKey(slice);
    if (!key) continue;
    const lists = bySvc.get(key) ?? [];
    lists.push(memoized(memo?.slices, slice, toDnsEndpoints));
    bySvc.set(key, lists);
  }
  for (const [key, lists] of bySvc) snap.endpoints.set(key, lists.length === 1 ? memoized(memo?.merged, lists[0], (l) => mergeEndpoints([l])) : mergeEndpoints(lists));
  for (const p of src.pods ?? []) {
    const ns = p.metadata?.namespace;
    if (!ns) continue;
    const ips = (p.status?.podIPs ?? []).map((x) => x.ip).concat(p.status?.podIP ? [p.status.podIP] : []);
    for (const ip of ips.map(canonicalIP)) {
      if (!ip) continue;
      const set = snap.podIPs.get(ns) ?? new Set<string>();
      set.add(ip);
      snap.podIPs.set(ns, set);
    }
  }
  return snap;
}

/**
 * The Services (`ns/name`) whose DNS data (the Service or its endpoints) differ between two
 * snapshots, or undefined when something wider changed (the namespaces or the sync state), so
 * that any answer may differ. Compares field by field: a rebuild makes new structs for every
 * Service, and a worker gets its snapshots through IPC, so identity says nothing.
 */
export function changedServices(a: Snapshot, b: Snapshot): Set<string> | undefined {
  if (a.synced !== b.synced || a.namespaces.size !== b.namespaces.size) return undefined;
  for (const ns of a.namespaces) if (!b.namespaces.has(ns)) return undefined;
  const changed = new Set<string>();
  for (const [k, s] of a.services) if (!sameService(s, b.services.get(k))) changed.add(k);
  for (const k of b.services.keys()) if (!a.services.has(k)) changed.add(k);
  for (const [k, eps] of a.endpoints) if (!sameEndpoints(eps, b.endpoints.get(k))) changed.add(k);
  for (const k of b.endpoints.keys()) if (!a.endpoints.has(k)) changed.add(k);
  return changed;
}

function sameService(a: DnsService, b: DnsService | undefined): boolean {
  if (a === b) return true;
  if (!b || a.kind !== b.kind || a.externalName !== b.externalName || a.publishNotReadyAddresses !== b.publishNotReadyAddresses) return false;
  return a.namespace === b.namespace && a.name === b.name && sameStrings(a.clusterIPs, b.clusterIPs) && samePorts(a.ports, b.ports);
}

function sameEndpoints(a: DnsEndpoint[], b: DnsEndpoint[] | undefined): boolean {
  if (a === b) return true;
  if (!b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.address !== y.address || x.hostname !== y.hostname || x.ready !== y.ready || !samePorts(x.ports, y.ports)) return false;
  }
  return true;
}

function samePorts(a: DnsPort[], b: DnsPort[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].name !== b[i].name || a[i].protocol !== b[i].protocol || a[i].port !== b[i].port) return false;
  return true;
}

function sameStrings(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A snapshot as plain JSON (for worker processes). */
export interface WireSnapshot {
  synced: boolean;
  serial: number;
  namespaces: string[];
  services: DnsService[];
  endpoints: [string, DnsEndpoint[]][];
  podIPs: [string, string[]][];
}

export function snapshotToWire(s: Snapshot): WireSnapshot {
  return {
    synced: s.synced,
    serial: s.serial,
    namespaces: [...s.namespaces],
    services: [...s.services.values()],
    endpoints: [...s.endpoints],
    podIPs: [...s.podIPs].map(([ns, ips]) => [ns, [...ips]]),
  };
}

export function snapshotFromWire(w: WireSnapshot): Snapshot {
  return {
    synced: w.synced,
    serial: w.serial,
    namespaces: new Set(w.namespaces),
    services: new Map(w.services.map((s) => [`${s.namespace}/${s.name}`, s])),
    endpoints: new Map(w.endpoints),
    podIPs: new Map(w.podIPs.map(([ns, ips]) => [ns, new Set(ips)])),
  };
}
