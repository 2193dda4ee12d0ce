import { SkiffError } from '../../util/errors.js';

/** IPv4 CIDR arithmetic on 32-bit integers (node IPAM and the LoadBalancer pool). */
export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new SkiffError('ERR_BAD_IP', `not an IPv4 address: ${ip}`);
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  base: number; // network address
  bits: number; // prefix length
}

export function parseCidr(text: string): Cidr {
  const m = text.trim().match(/^([\d.]+)\/(\d{1,2})$/);
  if (!m || Number(m[2]) > 32) throw new SkiffError('ERR_BAD_CIDR', `not an IPv4 CIDR: ${text}`);
  const bits = Number(m[2]);
  const size = 2 ** (32 - bits);
  const base = ipToInt(m[1]) - (ipToInt(m[1]) % size);
  return { base, bits };
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.bits}`;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + cidrSize(c);
}

/**
 * The lowest subnet of `maskSize` inside `cluster` that is not in `used` (formatted CIDRs), or
 * undefined when the range is full.
 */
export function nextFreeSubnet(cluster: Cidr, maskSize: number, used: ReadonlySet<string>): string | undefined {
  if (maskSize < cluster.bits || maskSize > 32) throw new SkiffError('ERR_BAD_CIDR', `mask /${maskSize} does not fit in ${formatCidr(cluster)}`);
  const step = 2 ** (32 - maskSize);
  const count = cidrSize(cluster) / step;
  for (let i = 0; i < count; i++) {
    const c = formatCidr({ base: cluster.base + i * step, bits: maskSize });
    if (!used.has(c)) return c;
  }
  return undefined;
}
