import { Address4 } from 'ip-address';
import type { KubeObject } from '../api/object.js';
import { errors } from './errors.js';

type Obj = Record<string, unknown>;

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/**
 * ClusterIP and NodePort allocation for Services, done by the apiserver: requested values are
 * honoured or clearly refused, allocations are released on delete, and the allocator state is
 * rebuilt from the stored Services at start (repair after restart).
 */
export class ServiceAllocators {
  private readonly usedIPs = new Set<number>();
  private readonly usedPorts = new Set<number>();
  private readonly first: number;
  private readonly last: number;
  private nextIP: number;
  private nextPort: number;

  constructor(
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

  rebuild(services: KubeObject[]): void {
    this.usedIPs.clear();
    this.usedPorts.clear();
    for (const s of services) this.markUsed(s);
  }

  private markUsed(s: KubeObject): void {
    const spec = (s.spec ?? {}) as Obj;
    for (const ip of this.ipsOf(spec)) if (this.inRange(ip)) this.usedIPs.add(ipToInt(ip));
    for (const p of this.nodePortsOf(spec)) this.usedPorts.add(p);
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

  /**
   * Fills in spec.clusterIP(s) and node ports of a Service being created or updated (old = the
   * stored one). Mutates `svc`. Returns what was newly allocated, to release if the write fails.
   */
  allocate(svc: KubeObject, old?: KubeObject): { ips: number[]; ports: number[] } {
    const spec = (svc.spec ?? {}) as Obj;
    const oldSpec = (old?.spec ?? {}) as Obj;
    const got = { ips: [] as number[], ports: [] as number[] };
    const type = spec.type ?? 'ClusterIP';
    if (type === 'ExternalName') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    } else if (spec.clusterIP !== 'None') {
      if (old && oldSpec.clusterIP && oldSpec.clusterIP !== 'None' && (!spec.clusterIP || spec.clusterIP === oldSpec.clusterIP)) {
        spec.clusterIP = oldSpec.clusterIP;
      } else if (spec.clusterIP) {
        const ip = String(spec.clusterIP);
        if (!this.inRange(ip)) throw errors.invalid('Service', '', String(svc.metadata?.name), [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: "${ip}": failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.serviceCIDR}` }]);
        const n = ipToInt(ip);
        if (this.usedIPs.has(n)) throw errors.invalid('Service', '', String(svc.metadata?.name), [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: []string{"${ip}"}: failed to allocate IP ${ip}: provided IP is already allocated` }]);
        this.usedIPs.add(n);
        got.ips.push(n);
      } else {
        const n = this.takeIP();
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
          const n = this.takePort();
          p.nodePort = n;
          got.ports.push(n);
        }
      } else if (Number(p.nodePort) !== prev) {
        const n = Number(p.nodePort);
        if (n < this.nodePortRange[0] || n > this.nodePortRange[1])
          throw errors.invalid('Service', '', String(svc.metadata?.name), [{ reason: 'FieldValueInvalid', field: 'spec.ports[].nodePort', message: `Invalid value: ${n}: provided port is not in the valid range. The range of valid ports is ${this.nodePortRange[0]}-${this.nodePortRange[1]}` }]);
        if (this.usedPorts.has(n) && !got.ports.includes(n))
          throw errors.invalid('Service', '', String(svc.metadata?.name), [{ reason: 'FieldValueInvalid', field: 'spec.ports[].nodePort', message: `Invalid value: ${n}: provided port is already allocated` }]);
        this.usedPorts.add(n);
        got.ports.push(n);
      }
    }
    if (type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local' && !spec.healthCheckNodePort) {
      const n = (oldSpec.healthCheckNodePort as number | undefined) ?? this.takePort();
      spec.healthCheckNodePort = n;
      if (!oldSpec.healthCheckNodePort) got.ports.push(n);
    }
    return got;
  }

  release(got: { ips: number[]; ports: number[] }): void {
    for (const n of got.ips) this.usedIPs.delete(n);
    for (const p of got.ports) this.usedPorts.delete(p);
  }

  /** Releases what a Service held that its new version (or deletion) no longer uses. */
  releaseService(old: KubeObject, now?: KubeObject): void {
    const keepIPs = new Set(now ? this.ipsOf((now.spec ?? {}) as Obj).map(ipToInt) : []);
    const keepPorts = new Set(now ? this.nodePortsOf((now.spec ?? {}) as Obj) : []);
    for (const ip of this.ipsOf((old.spec ?? {}) as Obj)) if (!keepIPs.has(ipToInt(ip))) this.usedIPs.delete(ipToInt(ip));
    for (const p of this.nodePortsOf((old.spec ?? {}) as Obj)) if (!keepPorts.has(p)) this.usedPorts.delete(p);
  }

  private takeIP(): number {
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const n = this.first + ((this.nextIP - this.first + i) % size);
      if (!this.usedIPs.has(n) && n - this.first >= 10) {
        this.usedIPs.add(n);
        this.nextIP = n + 1;
        return n;
      }
    }
    throw errors.internal(`failed to allocate a serviceIP: range is full (${this.serviceCIDR})`);
  }

  private takePort(): number {
    const [lo, hi] = this.nodePortRange;
    const size = hi - lo + 1;
    for (let i = 0; i < size; i++) {
      const n = lo + ((this.nextPort - lo + i) % size);
      if (!this.usedPorts.has(n)) {
        this.usedPorts.add(n);
        this.nextPort = n + 1;
        return n;
      }
    }
    throw errors.internal('failed to allocate a nodePort: range is full');
  }
}
