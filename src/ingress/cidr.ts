import { isIPv4, isIPv6 } from 'node:net';

/** A parsed CIDR: the network as a bigint, its prefix length and the address family. */
export interface Cidr {
  v6: boolean;
  net: bigint;
  bits: number;
}

function v4ToBig(ip: string): bigint {
  return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBig(ip: string): bigint {
  let s = ip;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const n = v4ToBig(v4tail[1]);
    s = s.slice(0, -v4tail[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Normalises an address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes IPv4. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** `10.0.0.0/24`, `172.10.0.1` (a /32), `fd00::/8`; undefined when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const [addr, len, extra] = s.trim().split('/');
  if (extra !== undefined) return undefined;
  const v6 = isIPv6(addr);
  if (!v6 && !isIPv4(addr)) return undefined;
  const max = v6 ? 128 : 32;
  const bits = len === undefined ? max : /^\d+$/.test(len) ? Number(len) : NaN;
  if (!(bits >= 0 && bits <= max)) return undefined;
  const value = v6 ? v6ToBig(addr) : v4ToBig(addr);
  const shift = BigInt(max - bits);
  return { v6, net: (value >> shift) << shift, bits };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const a = normalizeIp(ip);
  const v6 = isIPv6(a);
  if (v6 !== c.v6 || (!v6 && !isIPv4(a))) return false;
  const shift = BigInt((v6 ? 128 : 32) - c.bits);
  return ((v6 ? v6ToBig(a) : v4ToBig(a)) >> shift) << shift === c.net;
}
