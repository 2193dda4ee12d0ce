import { Address4 } from 'ip-address';
import type { KubeObject } from '../api/object.js';
import type { Store } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { componentLogger } from '../util/log.js';
import { errors } from './errors.js';

type Obj = Record<string, unknown>;

const log = componentLogger('allocators');

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Store keys of allocation records: one per ClusterIP and one per NodePort in use. */
export const IP_RECORDS = '/registry/skiff/allocations/ip/';
export const PORT_RECORDS = '/registry/skiff/allocations/nodeport/';

/** What an allocation record says: the Service holding the value, and when it was claimed. */
export interface AllocationRecord {
  namespace: string;
  name: string;
  uid: string;
  /** ms since the epoch: a record whose Service never appeared is reclaimed only after a grace period */
  created: number;
}

/** What one allocate() claimed, to release if the write of the Service fails. */
export interface Allocated {
  uid: string;
  ips: number[];
  ports: number[];
}

/** A record whose Service never got written (a crash, or a failed write whose release failed) is reclaimed after this. */
export const LEAK_GRACE_MS = 2 * 60_000;

/**
 * ClusterIP and NodePort allocation for Services, done by the apiserver: requested values are
 * honoured or clearly refused, allocations are released on delete, and a repair pass reconciles
 * them with the stored Services (at start and periodically).
 *
 * Safe across apiservers sharing one store (HA on etcd): every IP and port in use has a record in
 * the store (like Kubernetes' IPAddress objects), claimed with create-if-absent before the Service
 * is written, so two apiservers can never hand out the same value. The in-memory sets are only a
 * hint of what is taken, to pick free candidates without a round trip per taken value; the store
 * decides.
 */
export class ServiceAllocators {
  private readonly usedIPs = new Set<number>();
  private readonly usedPorts = new Set<number>();
  private readonly first: number;
  private readonly last: number;
  private nextIP: number;
  private nextPort: number;

  constructor(
    private readonly store: Store,
    readonly serviceCIDR: string,
    readonly nodePortRange: [number, number] = [30000, 32767],
  ) {
    const a = new Address4(serviceCIDR);
    this.first = ipToInt(a.startAddress().address) + 1;
    this.last = ipToInt(a.endAddress().address) - 1;
    this.nextIP = this.first + 9; // .10 and below are handed out only on request (DNS is .10)
    this.nextPort = nodePortRange[0];
  }

  /** The well-known first address (the kubernetes Service). */
  firstIP(): string {
    return intToIp(this.first);
  }

  nthIP(n: number): string {
    return intToIp(this.first + n - 1);
  }

  private ipsOf(spec: Obj): string[] {
    const ips = new Set<string>();
    if (typeof spec.clusterIP === 'string' && spec.clusterIP && spec.clusterIP !== 'None') ips.add(spec.clusterIP);
    for (const ip of (spec.clusterIPs as string[] | undefined) ?? []) if (ip && ip !== 'None') ips.add(ip);
    return [...ips];
  }

  private nodePortsOf(spec: Obj): number[] {
    const out = ((spec.ports as Obj[] | undefined) ?? []).map((p) => Number(p.nodePort)).filter((n) => n > 0);
    if (typeof spec.healthCheckNodePort === 'number' && spec.healthCheckNodePort > 0) out.push(spec.healthCheckNodePort);
    return out;
  }

  private inRange(ip: string): boolean {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false;
    const n = ipToInt(ip);
    return n >= this.first && n <= this.last;
  }

  private ipKey(n: number): string {
    return `${IP_RECORDS}${intToIp(n)}`;
  }

  private portKey(p: number): string {
    return `${PORT_RECORDS}${p}`;
  }

  /**
   * Claims `key` for the Service: true if it is now this Service's (newly, or it already was),
   * false if another Service holds it. A dry run only looks.
   */
  private async claim(key: string, svc: KubeObject, dryRun: boolean): Promise<boolean> {
    const m = svc.metadata ?? {};
    if (dryRun) {
      const kv = await this.store.get(key);
      return !kv || parseRecord(kv.value)?.uid === m.uid;
    }
    const rec: AllocationRecord = { namespace: String(m.namespace ?? ''), name: String(m.name ?? ''), uid: String(m.uid ?? ''), created: Date.now() };
    try {
      await this.store.create(key, Buffer.from(JSON.stringify(rec)));
      return true;
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'AlreadyExists')) throw err;
      const kv = await this.store.get(key);
      // released meanwhile: try once more; held by this very Service (an earlier attempt): ours
      if (!kv) return this.claim(key, svc, dryRun);
      return parseRecord(kv.value)?.uid === m.uid;
    }
  }

  /**
   * Deletes `key`'s record if the Service with `uid` holds it (never another Service's). Never
   * fails: a record left behind is reclaimed by the next repair.
   */
  private async unclaim(key: string, uid: string): Promise<void> {
    try {
      const kv = await this.store.get(key);
      if (!kv || parseRecord(kv.value)?.uid !== uid) return;
      await this.store.delete(key, kv.modRevision);
    } catch (err) {
      if (!(err instanceof StoreError && (err.code === 'NotFound' || err.code === 'Conflict'))) log.warn({ err, key }, 'allocation record not released (repair will)');
    }
  }

  /**
   * Fills in spec.clusterIP(s) and node ports of a Service being created or updated (old = the
   * stored one), claiming every new value in the store. Mutates `svc`. Returns what was newly
   * claimed, to release if the write fails. A dry run claims nothing.
   */
  async allocate(svc: KubeObject, old?: KubeObject, dryRun = false): Promise<Allocated> {
    const got: Allocated = { uid: String(svc.metadata?.uid ?? ''), ips: [], ports: [] };
    try {
      await this.allocateInto(got, svc, old, dryRun);
    } catch (err) {
      if (!dryRun) await this.release(got);
      throw err;
    }
    if (dryRun) return { uid: got.uid, ips: [], ports: [] };
    return got;
  }

  private async allocateInto(got: Allocated, svc: KubeObject, old: KubeObject | undefined, dryRun: boolean): Promise<void> {
    const spec = (svc.spec ?? {}) as Obj;
    const oldSpec = (old?.spec ?? {}) as Obj;
    const name = String(svc.metadata?.name);
    const type = spec.type ?? 'ClusterIP';
    if (type === 'ExternalName') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    } else if (spec.clusterIP !== 'None') {
      if (old && oldSpec.clusterIP && oldSpec.clusterIP !== 'None' && (!spec.clusterIP || spec.clusterIP === oldSpec.clusterIP)) {
        spec.clusterIP = oldSpec.clusterIP;
      } else if (spec.clusterIP) {
        const ip = String(spec.clusterIP);
        if (!this.inRange(ip)) throw errors.invalid('Service', '', name, [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: "${ip}": failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.serviceCIDR}` }]);
        const n = ipToInt(ip);
        if (!(await this.claim(this.ipKey(n), svc, dryRun))) {
          this.usedIPs.add(n);
          throw errors.invalid('Service', '', name, [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: []string{"${ip}"}: failed to allocate IP ${ip}: provided IP is already allocated` }]);
        }
        this.usedIPs.add(n);
        got.ips.push(n);
      } else {
        const n = await this.takeIP(svc, dryRun);
        spec.clusterIP = intToIp(n);
        got.ips.push(n);
      }
      spec.clusterIPs = [spec.clusterIP];
    } else {
      spec.clusterIPs = ['None'];
    }
    const wantsNodePorts = type === 'NodePort' || (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
    const oldPorts = new Map(((oldSpec.ports as Obj[] | undefined) ?? []).map((p) => [`${p.port}/${p.protocol ?? 'TCP'}`, Number(p.nodePort)]));
    for (const p of (spec.ports as Obj[] | undefined) ?? []) {
      if (!wantsNodePorts) {
        if (type === 'ClusterIP' || type === 'ExternalName') delete p.nodePort;
        continue;
      }
      const prev = oldPorts.get(`${p.port}/${p.protocol ?? 'TCP'}`);
      if (p.nodePort === undefined || p.nodePort === 0) {
        if (prev) p.nodePort = prev;
        else {
          const n = await this.takePort(svc, dryRun);
          p.nodePort = n;
          got.ports.push(n);
        }
      } else if (Number(p.nodePort) !== prev) {
        const n = Number(p.nodePort);
        if (n < this.nodePortRange[0] || n > this.nodePortRange[1])
          throw errors.invalid('Service', '', name, [{ reason: 'FieldValueInvalid', field: 'spec.ports[].nodePort', message: `Invalid value: ${n}: provided port is not in the valid range. The range of valid ports is ${this.nodePortRange[0]}-${this.nodePortRange[1]}` }]);
        if (got.ports.includes(n)) continue;
        if (!(await this.claim(this.portKey(n), svc, dryRun))) {
          this.usedPorts.add(n);
          throw errors.invalid('Service', '', name, [{ reason: 'FieldValueInvalid', field: 'spec.ports[].nodePort', message: `Invalid value: ${n}: provided port is already allocated` }]);
        }
        this.usedPorts.add(n);
        got.ports.push(n);
      }
    }
    if (type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' && !spec.healthCheckNodePort) {
      const prev = oldSpec.healthCheckNodePort as number | undefined;
      const n = prev ?? (await this.takePort(svc, dryRun));
      spec.healthCheckNodePort = n;
      if (!prev) got.ports.push(n);
    }
  }

  /** Releases what allocate() claimed (its Service was not written). */
  async release(got: Allocated): Promise<void> {
    for (const n of got.ips) {
      await this.unclaim(this.ipKey(n), got.uid);
      this.usedIPs.delete(n);
    }
    for (const p of got.ports) {
      await this.unclaim(this.portKey(p), got.uid);
      this.usedPorts.delete(p);
    }
  }

  /** Releases what a Service held that its new version (or deletion) no longer uses. */
  async releaseService(old: KubeObject, now?: KubeObject): Promise<void> {
    const uid = String(old.metadata?.uid ?? '');
    const keepIPs = new Set(now ? this.ipsOf((now.spec ?? {}) as Obj).map(ipToInt) : []);
    const keepPorts = new Set(now ? this.nodePortsOf((now.spec ?? {}) as Obj) : []);
    for (const ip of this.ipsOf((old.spec ?? {}) as Obj)) {
      const n = ipToInt(ip);
      if (keepIPs.has(n) || !this.inRange(ip)) continue;
      await this.unclaim(this.ipKey(n), uid);
      this.usedIPs.delete(n);
    }
    for (const p of this.nodePortsOf((old.spec ?? {}) as Obj)) {
      if (keepPorts.has(p)) continue;
      await this.unclaim(this.portKey(p), uid);
      this.usedPorts.delete(p);
    }
  }

  /** The next free address after the last one handed out, claimed in the store. */
  private async takeIP(svc: KubeObject, dryRun: boolean): Promise<number> {
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const n = this.first + ((this.nextIP - this.first + i) % size);
      if (this.usedIPs.has(n) || n - this.first < 10) continue;
      this.usedIPs.add(n);
      let claimed: boolean;
      try {
        claimed = await this.claim(this.ipKey(n), svc, dryRun);
      } catch (err) {
        this.usedIPs.delete(n);
        throw err;
      }
      if (claimed) {
        if (dryRun) this.usedIPs.delete(n);
        else this.nextIP = n + 1;
        return n;
      }
    }
    throw errors.internal(`failed to allocate a serviceIP: range is full (${this.serviceCIDR})`);
  }

  private async takePort(svc: KubeObject, dryRun: boolean): Promise<number> {
    const [lo, hi] = this.nodePortRange;
    const size = hi - lo + 1;
    for (let i = 0; i < size; i++) {
      const n = lo + ((this.nextPort - lo + i) % size);
      if (this.usedPorts.has(n)) continue;
      this.usedPorts.add(n);
      let claimed: boolean;
      try {
        claimed = await this.claim(this.portKey(n), svc, dryRun);
      } catch (err) {
        this.usedPorts.delete(n);
        throw err;
      }
      if (claimed) {
        if (dryRun) this.usedPorts.delete(n);
        else this.nextPort = n + 1;
        return n;
      }
    }
    throw errors.internal('failed to allocate a nodePort: range is full');
  }

  /**
   * Reconciles the records with the stored Services (at start and periodically): a Service value
   * without a record gets one (data written before records existed), a record no Service holds is
   * deleted once older than the grace period, and the in-memory hints are rebuilt from the records.
   */
  async repair(services: KubeObject[], now = Date.now()): Promise<void> {
    const held = new Map<string, KubeObject>();
    for (const s of services) {
      const spec = (s.spec ?? {}) as Obj;
      for (const ip of this.ipsOf(spec)) if (this.inRange(ip)) held.set(this.ipKey(ipToInt(ip)), s);
      for (const p of this.nodePortsOf(spec)) held.set(this.portKey(p), s);
    }
    const records = [...(await this.store.list(IP_RECORDS)).items, ...(await this.store.list(PORT_RECORDS)).items];
    const seen = new Set<string>();
    this.usedIPs.clear();
    this.usedPorts.clear();
    for (const kv of records) {
      seen.add(kv.key);
      const rec = parseRecord(kv.value);
      const holder = held.get(kv.key);
      if (holder && rec?.uid === holder.metadata?.uid) {
        this.markUsed(kv.key);
        continue;
      }
      if (holder) log.warn({ key: kv.key, service: `${holder.metadata?.namespace}/${holder.metadata?.name}`, record: rec }, 'allocation record held by another service');
      if (!holder && (!rec || now - rec.created > LEAK_GRACE_MS)) {
        await this.store.delete(kv.key, kv.modRevision).catch(() => undefined);
        continue;
      }
      this.markUsed(kv.key);
    }
    for (const [key, s] of held) {
      if (seen.has(key)) continue;
      const m = s.metadata ?? {};
      const rec: AllocationRecord = { namespace: String(m.namespace ?? ''), name: String(m.name ?? ''), uid: String(m.uid ?? ''), created: now };
      await this.store.create(key, Buffer.from(JSON.stringify(rec))).catch((err: unknown) => {
        if (!(err instanceof StoreError && err.code === 'AlreadyExists')) throw err;
      });
      this.markUsed(key);
    }
  }

  private markUsed(key: string): void {
    if (key.startsWith(IP_RECORDS)) this.usedIPs.add(ipToInt(key.slice(IP_RECORDS.length)));
    else this.usedPorts.add(Number(key.slice(PORT_RECORDS.length)));
  }
}

function parseRecord(value: Buffer): AllocationRecord | null {
  try {
    return JSON.parse(value.toString()) as AllocationRecord;
  } catch {
    return null;
  }
}
