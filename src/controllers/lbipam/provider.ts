import type { LoadBalancerIngress } from 'kubernetes-types/core/v1.js';
import { objectKey } from '../../api/object.js';
import { SkiffError } from '../../util/errors.js';
import { cidrSize, intToIp, ipToInt, parseCidr } from '../nodeipam/cidr.js';
import type { SvcObj } from '../endpointslice/reconcile.js';

/** Why a LoadBalancer stays pending (the controller turns it into a Warning Event). */
export class LoadBalancerPendingError extends SkiffError {
  constructor(reason: string, message: string) {
    super('ERR_LB_PENDING', message, { details: { reason } });
  }
  get reason(): string {
    return String(this.details?.reason);
  }
}

/**
 * A LoadBalancer implementation, in the spirit of the cloud-provider interface: ensure returns
 * the ingress to publish for a Service (throw LoadBalancerPendingError to stay pending), and
 * ensureDeleted frees what the Service held. `lbServices` are all Services of type LoadBalancer
 * this provider handles, as cached (their status says what is in use).
 */
export interface LoadBalancerProvider {
  readonly name: string;
  ensureLoadBalancer(svc: SvcObj, lbServices: readonly SvcObj[]): Promise<LoadBalancerIngress[]>;
  ensureLoadBalancerDeleted(svcKey: string): Promise<void>;
}

export interface IpRange {
  first: number;
  last: number;
}

/** Pool entries: CIDRs (`192.168.50.0/28`), ranges (`192.168.50.10-192.168.50.20`) or single IPs. */
export function parsePool(entries: readonly string[]): IpRange[] {
  return entries.map((e) => {
    const s = e.trim();
    if (s.includes('/')) {
      const c = parseCidr(s);
      return { first: c.base, last: c.base + cidrSize(c) - 1 };
    }
    const [a, b] = s.split('-').map((x) => x.trim());
    const first = ipToInt(a);
    const last = b ? ipToInt(b) : first;
    if (last < first) throw new SkiffError('ERR_BAD_POOL', `empty address range ${s}`);
    return { first, last };
  });
}

function inPool(pool: readonly IpRange[], ip: number): boolean {
  return pool.some((r) => ip >= r.first && ip <= r.last);
}

/** The lowest pool address not in `taken`, preferring `wanted` (in order) when free. */
export function pickAddress(pool: readonly IpRange[], taken: ReadonlySet<number>, wanted: readonly number[] = []): number | undefined {
  for (const w of wanted) if (inPool(pool, w) && !taken.has(w)) return w;
  for (const r of pool) for (let ip = r.first; ip <= r.last; ip++) if (!taken.has(ip)) return ip;
  return undefined;
}

/** The built-in provider: one address per Service from the --lb-pool ranges. */
export class PoolProvider implements LoadBalancerProvider {
  readonly name = 'pool';
  private readonly pool: IpRange[];
  /** Our assignments that the cached statuses may not show yet. */
  private readonly assigned = new Map<string, number>();

  constructor(entries: readonly string[] | undefined) {
    this.pool = parsePool(entries ?? []);
  }

  async ensureLoadBalancer(svc: SvcObj, lbServices: readonly SvcObj[]): Promise<LoadBalancerIngress[]> {
    if (this.pool.length === 0) throw new LoadBalancerPendingError('NoPool', 'no LoadBalancer address pool is configured (skiff server --lb-pool)');
    const key = objectKey(svc);
    const alive = new Set(lbServices.map(objectKey));
    for (const k of [...this.assigned.keys()]) if (!alive.has(k) && k !== key) this.assigned.delete(k);
    const taken = new Set<number>();
    for (const other of lbServices) {
      if (objectKey(other) === key) continue;
      for (const ing of other.status?.loadBalancer?.ingress ?? []) if (ing.ip && !ing.ip.includes(':')) taken.add(ipToInt(ing.ip));
    }
    for (const [k, ip] of this.assigned) if (k !== key) taken.add(ip);
    const wanted: number[] = [];
    const mine = this.assigned.get(key);
    if (mine !== undefined) wanted.push(mine);
    if (svc.spec?.loadBalancerIP) wanted.unshift(ipToInt(svc.spec.loadBalancerIP));
    for (const ing of svc.status?.loadBalancer?.ingress ?? []) if (ing.ip && !ing.ip.includes(':')) wanted.push(ipToInt(ing.ip));
    if (svc.spec?.loadBalancerIP) {
      const req = ipToInt(svc.spec.loadBalancerIP);
      if (!inPool(this.pool, req)) throw new LoadBalancerPendingError('AddressNotInPool', `requested loadBalancerIP ${svc.spec.loadBalancerIP} is not in the address pool`);
      if (taken.has(req)) throw new LoadBalancerPendingError('AddressInUse', `requested loadBalancerIP ${svc.spec.loadBalancerIP} is already in use`);
    }
    const ip = pickAddress(this.pool, taken, wanted);
    if (ip === undefined) throw new LoadBalancerPendingError('PoolExhausted', 'the LoadBalancer address pool is exhausted');
    this.assigned.set(key, ip);
    return [{ ip: intToIp(ip), ipMode: 'VIP' }];
  }

  async ensureLoadBalancerDeleted(svcKey: string): Promise<void> {
    this.assigned.delete(svcKey);
  }
}
