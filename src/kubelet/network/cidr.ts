import { SkiffError } from '../../util/errors.js';

/** Minimal IPv4 helpers for the pod range (a /24 per node by default). */
export interface Cidr4 {
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new SkiffError('ERR_BAD_IP', `not an IPv4 address: ${ip}`);
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(s: string): Cidr4 {
  const [ip, len] = s.split('/');
  const prefix = Number(len);
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new SkiffError('ERR_BAD_CIDR', `unsupported pod CIDR: ${s}`);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, prefix };
}

export function cidrString(c: Cidr4): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

/** The bridge/gateway address: the range's first host address. */
export function gatewayOf(c: Cidr4): string {
  return intToIp(c.base + 1);
}

/** Host addresses available to pods: first+1 .. broadcast-1. */
export function podAddressRange(c: Cidr4): { first: number; last: number } {
  const size = 2 ** (32 - c.prefix);
  return { first: c.base + 2, last: c.base + size - 2 };
}

export function cidrContains(c: Cidr4, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= c.base && n < c.base + 2 ** (32 - c.prefix);
}
