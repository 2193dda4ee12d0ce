/**
 * Pure record lookups for the cluster zone and the reverse zones, per the Kubernetes DNS spec
 * (schema 1.1.0) with CoreDNS kubernetes-plugin behaviour where the spec is silent:
 * NXDOMAIN vs NODATA, SRV weights, endpoint names, PTR for ClusterIPs and endpoints.
 * `new ClusterZone(snapshot, config).lookup(qname, qtype)` returns sections, or undefined when
 * the name is not ours (the server forwards it).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { DnsEndpoint, DnsService, Snapshot } from './model.js';
import { canonicalIP } from './model.js';
import { RCODE, T, type Name, type RR } from './wire.js';

export type PodMode = 'disabled' | 'insecure' | 'verified';

export interface ZoneConfig {
  /** e.g. 'cluster.local' */
  clusterDomain: string;
  /** TTL of synthesized records, 0-3600 */
  ttl: number;
  pods: PodMode;
  /** Unanswerable reverse lookups go upstream (kubeadm `fallthrough in-addr.arpa ip6.arpa`). */
  reverseFallthrough: boolean;
  /** Addresses of this server for the apex NS glue when no kube-dns Service exists. */
  nsAddresses: string[];
}

export interface LookupResult {
  rcode: number;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  /** ExternalName: the answer holds the CNAME; the server appends the target's records. */
  chase?: { target: Name; type: number };
  /**
   * Set on positive answers that the data of one Service (`ns/name`: the Service and its
   * endpoints) alone decides, so a precomputed answer survives zone swaps that leave it alone.
   */
  dep?: string;
}

export const DNS_SCHEMA_VERSION = '1.1.0';
const VERSION_TTL = 28800;

interface SrvItem {
  port: number;
  target: Name;
  address: string;
}

/** What a forward name in the cluster zone resolves to. */
type Node = { kind: 'node'; addrs: string[]; srv: SrvItem[]; cname?: Name; version?: boolean; apex?: boolean; dep?: string };
type Found = { kind: 'nx' } | Node;

const NX: Found = { kind: 'nx' };
const EMPTY: Node = { kind: 'node', addrs: [], srv: [] };

function lc(n: Name): Name {
  return n.map((l) => l.toLowerCase());
}

function hasSuffix(name: Name, suffix: Name): boolean {
  if (name.length < suffix.length) return false;
  const off = name.length - suffix.length;
  for (let i = 0; i < suffix.length; i++) if (name[off + i] !== suffix[i]) return false;
  return true;
}

/** The system-assigned endpoint name: hostname, else the dashed IP (CoreDNS endpointHostname). */
export function endpointName(ep: DnsEndpoint): string {
  if (ep.hostname) return ep.hostname;
  if (ep.address.includes('.')) return ep.address.replace(/\./g, '-');
  const v6 = ep.address.replace(/:/g, '-');
  return v6.endsWith('-') ? `${v6}0` : v6.startsWith('-') ? `0${v6}` : v6;
}

/** `10-244-1-5` → 10.244.1.5, `fd00-10-244-1--5` → fd00:10:244:1::5; undefined if not an IP. */
export function podLabelToIP(label: string): string | undefined {
  const dashes = label.split('-').length - 1;
  const candidate = dashes === 3 && !label.includes('--') ? label.replace(/-/g, '.') : label.replace(/-/g, ':');
  return isIPv4(candidate) || isIPv6(candidate) ? canonicalIP(candidate) : undefined;
}

/** Parses `<reversed octets>.in-addr.arpa` / `<nibbles>.ip6.arpa` labels (lowercase, zone stripped). */
export function reverseToIP(labels: Name, v6: boolean): string | undefined {
  if (!v6) {
    if (labels.length !== 4 || !labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) < 256)) return undefined;
    return [...labels].reverse().join('.');
  }
  if (labels.length !== 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return undefined;
  const hex = [...labels].reverse().join('');
  return canonicalIP(hex.match(/.{4}/g)!.join(':'));
}

export class ClusterZone {
  private readonly zone: Name;
  private ptrIndex?: Map<string, Name[]>;

  constructor(
    readonly snap: Snapshot,
    readonly cfg: ZoneConfig,
  ) {
    this.zone = lc(cfg.clusterDomain.split('.').filter(Boolean));
  }

  /**
   * IP → PTR targets, built on the first reverse lookup rather than with the zone: a zone is
   * rebuilt on every API change, on the thread that serves DNS, and most zones never see a PTR query.
   */
  private get ptr(): Map<string, Name[]> {
    if (this.ptrIndex) return this.ptrIndex;
    const ptr = new Map<string, Name[]>();
    const add = (ip: string, n: Name) => {
      const list = ptr.get(ip) ?? [];
      if (!list.some((x) => x.join('.') === n.join('.'))) list.push(n);
      ptr.set(ip, list);
    };
    for (const svc of this.snap.services.values()) for (const ip of svc.clusterIPs) ptr.set(ip, [[svc.name, svc.namespace, 'svc', ...this.zone]]);
    for (const svc of this.snap.services.values()) {
      if (svc.kind === 'ExternalName') continue;
      for (const ep of this.readyEndpoints(svc)) {
        if (this.isClusterIP(ep.address)) continue;
        add(ep.address, [endpointName(ep), svc.name, svc.namespace, 'svc', ...this.zone]);
      }
    }
    this.ptrIndex = ptr;
    return ptr;
  }

  private clusterIPs?: Set<string>;
  private isClusterIP(ip: string): boolean {
    this.clusterIPs ??= new Set([...this.snap.services.values()].flatMap((s) => s.clusterIPs));
    return this.clusterIPs.has(ip);
  }

  private readyEndpoints(svc: DnsService): DnsEndpoint[] {
    const eps = this.snap.endpoints.get(`${svc.namespace}/${svc.name}`) ?? [];
    return svc.publishNotReadyAddresses ? eps : eps.filter((e) => e.ready);
  }

  /** Sections for a question, or undefined if the name is outside our zones (or falls through). */
  lookup(qname: Name, qtype: number): LookupResult | undefined {
    const lower = lc(qname);
    if (hasSuffix(lower, this.zone)) return this.lookupCluster(qname, lower, qtype);
    if (hasSuffix(lower, ['in-addr', 'arpa'])) return this.lookupReverse(qname, lower.slice(0, -2), false, qtype);
    if (hasSuffix(lower, ['ip6', 'arpa'])) return this.lookupReverse(qname, lower.slice(0, -2), true, qtype);
    return undefined;
  }

  private soa(owner: Name, zone: Name): RR {
    const ttl = this.cfg.ttl;
    return {
      name: owner,
      type: T.SOA,
      ttl: Math.min(ttl, 300),
      data: { kind: 'soa', mname: ['ns', 'dns', ...zone], rname: ['hostmaster', ...zone], serial: this.snap.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl },
    };
  }

  private negative(rcode: number, soa: RR): LookupResult {
    if (rcode === RCODE.NXDOMAIN && !this.snap.synced) rcode = RCODE.SERVFAIL;
    return { rcode, answer: [], authority: [soa], additional: [] };
  }

  private lookupCluster(qname: Name, lower: Name, qtype: number): LookupResult {
    const zoneInQuery = qname.slice(qname.length - this.zone.length);
    const soa = this.soa(zoneInQuery, this.zone);
    if (qtype === T.AXFR || qtype === T.IXFR) return { rcode: RCODE.REFUSED, answer: [], authority: [], additional: [] };
    const rel = lower.slice(0, lower.length - this.zone.length);
    const found = this.resolve(rel, zoneInQuery);
    if (found.kind === 'nx') return this.negative(RCODE.NXDOMAIN, soa);
    const ttl = this.cfg.ttl;
    const ok = (answer: RR[], additional: RR[] = []): LookupResult =>
      answer.length ? { rcode: RCODE.NOERROR, answer, authority: [], additional, dep: found.dep } : this.negative(RCODE.NOERROR, soa);
    if (found.apex && qtype === T.SOA) return ok([soa]);
    if (found.apex && qtype === T.NS) return this.apexNS(qname, zoneInQuery);
    if (found.version) return ok(qtype === T.TXT ? [{ name: qname, type: T.TXT, ttl: VERSION_TTL, data: { kind: 'txt', text: [DNS_SCHEMA_VERSION] } }] : []);
    if (found.cname) {
      const cname: RR = { name: qname, type: T.CNAME, ttl, data: { kind: 'name', target: found.cname } };
      if (qtype === T.CNAME) return ok([cname]);
      if (qtype === T.A || qtype === T.AAAA) return { rcode: RCODE.NOERROR, answer: [cname], authority: [], additional: [], chase: { target: found.cname, type: qtype } };
      return ok([]);
    }
    if (qtype === T.A || qtype === T.AAAA) {
      const want = qtype === T.A ? isIPv4 : isIPv6;
      return ok(found.addrs.filter((a) => want(a)).map((a) => addrRR(qname, a, ttl)));
    }
    if (qtype === T.SRV) return ok(...this.srvRecords(qname, found.srv));
    return ok([]);
  }

  private srvRecords(qname: Name, items: SrvItem[]): [RR[], RR[]] {
    const weight = Math.max(1, Math.floor(100 / Math.max(1, items.length)));
    const answer: RR[] = [];
    const additional: RR[] = [];
    const seenSrv = new Set<string>();
    const seenAddr = new Set<string>();
    for (const it of items) {
      const key = `${it.port}|${it.target.join('.')}`;
      if (!seenSrv.has(key)) {
        seenSrv.add(key);
        answer.push({ name: qname, type: T.SRV, ttl: this.cfg.ttl, data: { kind: 'srv', priority: 0, weight, port: it.port, target: it.target } });
      }
      const akey = `${it.target.join('.')}|${it.address}`;
      if (!seenAddr.has(akey)) {
        seenAddr.add(akey);
        additional.push(addrRR(it.target, it.address, this.cfg.ttl));
      }
    }
    return [answer, additional];
  }

  private apexNS(qname: Name, zone: Name): LookupResult {
    const dns = this.snap.services.get('kube-system/kube-dns');
    const useSvc = dns?.kind === 'ClusterIP' && dns.clusterIPs.length > 0;
    const target = useSvc ? ['kube-dns', 'kube-system', 'svc', ...zone] : ['ns', 'dns', ...zone];
    const addrs = useSvc ? dns!.clusterIPs : this.cfg.nsAddresses;
    return {
      rcode: RCODE.NOERROR,
      answer: [{ name: qname, type: T.NS, ttl: this.cfg.ttl, data: { kind: 'name', target } }],
      authority: [],
      additional: addrs.map((a) => addrRR(target, a, this.cfg.ttl)),
    };
  }

  /** Resolves the labels left of the zone (lowercase) to a node of the name tree. */
  private resolve(rel: Name, zone: Name): Found {
    if (rel.length === 0) return { ...EMPTY, apex: true };
    if (rel.length === 1 && rel[0] === 'dns-version') return { ...EMPTY, version: true };
    const kind = rel[rel.length - 1];
    if (kind === 'pod') return this.resolvePod(rel);
    if (kind !== 'svc') return NX;
    if (rel.length === 1) return EMPTY;
    const ns = rel[rel.length - 2];
    if (!this.snap.namespaces.has(ns)) return NX;
    if (rel.length === 2) return EMPTY;
    const key = `${ns}/${rel[rel.length - 3]}`;
    const svc = this.snap.services.get(key);
    if (!svc) return NX;
    const found = this.resolveInService(svc, rel, zone);
    return found.kind === 'node' ? { ...found, dep: key } : found;
  }

  /** `<svc>`, `<endpoint>.<svc>` or `_<port>._<proto>.<svc>` (rel ends in `<svc>.<ns>.svc`). */
  private resolveInService(svc: DnsService, rel: Name, zone: Name): Found {
    const svcName: Name = [svc.name, svc.namespace, 'svc', ...zone];
    if (rel.length === 3) return this.resolveService(svc, svcName);
    if (svc.kind === 'ExternalName') return NX;
    if (rel.length === 4) return this.resolveEndpoint(svc, rel[0], zone);
    if (rel.length === 5) return this.resolvePort(svc, svcName, stripUnderscore(rel[0]), stripUnderscore(rel[1]), zone);
    return NX;
  }

  private resolveService(svc: DnsService, svcName: Name): Found {
    if (svc.kind === 'ExternalName') {
      const ext = svc.externalName ?? '';
      if (!ext || canonicalIP(ext)) return NX;
      return { kind: 'node', addrs: [], srv: [], cname: ext.split('.').filter(Boolean) };
    }
    if (svc.kind === 'ClusterIP') {
      const srv = svc.clusterIPs.flatMap((ip) => svc.ports.map((p) => ({ port: p.port, target: svcName, address: ip })));
      return { kind: 'node', addrs: svc.clusterIPs, srv };
    }
    const eps = this.readyEndpoints(svc);
    if (eps.length === 0) return NX;
    const srv = eps.flatMap((ep) => ep.ports.map((p) => ({ port: p.port, target: [endpointName(ep), ...svcName], address: ep.address })));
    return { kind: 'node', addrs: uniq(eps.map((e) => e.address)), srv };
  }

  private resolveEndpoint(svc: DnsService, label: string, zone: Name): Found {
    const eps = this.readyEndpoints(svc).filter((ep) => endpointName(ep) === label);
    if (eps.length === 0) return NX;
    const target = [label, svc.name, svc.namespace, 'svc', ...zone];
    const srv = eps.flatMap((ep) => ep.ports.map((p) => ({ port: p.port, target, address: ep.address })));
    return { kind: 'node', addrs: uniq(eps.map((e) => e.address)), srv };
  }

  private resolvePort(svc: DnsService, svcName: Name, port: string, proto: string, zone: Name): Found {
    const match = (p: { name: string; protocol: string }) => p.name !== '' && p.name === port && p.protocol === proto;
    if (svc.kind === 'ClusterIP') {
      const ports = svc.ports.filter(match);
      if (ports.length === 0) return NX;
      const srv = svc.clusterIPs.flatMap((ip) => ports.map((p) => ({ port: p.port, target: svcName, address: ip })));
      return { kind: 'node', addrs: svc.clusterIPs, srv };
    }
    const srv: SrvItem[] = [];
    for (const ep of this.readyEndpoints(svc)) {
      for (const p of ep.ports.filter(match)) srv.push({ port: p.port, target: [endpointName(ep), svc.name, svc.namespace, 'svc', ...zone], address: ep.address });
    }
    if (srv.length === 0) return NX;
    return { kind: 'node', addrs: uniq(srv.map((s) => s.address)), srv };
  }

  private resolvePod(rel: Name): Found {
    if (rel.length === 1) return EMPTY;
    if (this.cfg.pods === 'disabled') return NX;
    const ns = rel[rel.length - 2];
    if (!this.snap.namespaces.has(ns)) return NX;
    if (rel.length === 2) return EMPTY;
    if (rel.length !== 3) return NX;
    const ip = podLabelToIP(rel[0]);
    if (!ip) return NX;
    if (this.cfg.pods === 'verified' && !this.snap.podIPs.get(ns)?.has(ip)) return NX;
    return { kind: 'node', addrs: [ip], srv: [] };
  }

  private lookupReverse(qname: Name, rel: Name, v6: boolean, qtype: number): LookupResult | undefined {
    const zone = v6 ? ['ip6', 'arpa'] : ['in-addr', 'arpa'];
    const ip = reverseToIP(rel, v6);
    const targets = ip ? this.ptr.get(ip) : undefined;
    if (!targets) {
      if (this.cfg.reverseFallthrough) return undefined;
      return this.negative(RCODE.NXDOMAIN, this.soa(zone, zone));
    }
    if (qtype !== T.PTR) return this.negative(RCODE.NOERROR, this.soa(zone, zone));
    return {
      rcode: RCODE.NOERROR,
      answer: targets.map((target) => ({ name: qname, type: T.PTR, ttl: this.cfg.ttl, data: { kind: 'name', target } })),
      authority: [],
      additional: [],
    };
  }
}

function stripUnderscore(s: string): string {
  return s.startsWith('_') ? s.slice(1) : s;
}

function uniq<X>(xs: X[]): X[] {
  return [...new Set(xs)];
}

function addrRR(name: Name, address: string, ttl: number): RR {
  return { name, type: isIPv4(address) ? T.A : T.AAAA, ttl, data: { kind: 'addr', address } };
}
