/** Small IPv4 helpers for selection and tracing (pure, no allocation-heavy parsing). */

export function ipv4ToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) return NaN;
  let n = 0;
  for (const part of p) {
    const v = Number(part);
    if (!/^\d{1,3}$/.test(part) || v > 255) return NaN;
    n = n * 256 + v;
  }
  return n;
}

export function isIPv4(s: string): boolean {
  return !Number.isNaN(ipv4ToInt(s));
}

export interface Cidr {
  base: number;
  bits: number;
}

/** Parses `a.b.c.d/n` (or a bare address as /32); null when it is not IPv4. */
export function parseCidr(text: string): Cidr | null {
  const [addr, len] = text.split('/');
  const bits = len === undefined ? 32 : Number(len);
  const n = ipv4ToInt(addr);
  if (Number.isNaN(n) || !Number.isInteger(bits) || bits < 0 || bits > 32) return null;
  const size = 2 ** (32 - bits);
  return { base: n - (n % size), bits };
}

export function cidrContains(c: Cidr, ip: string | number): boolean {
  const n = typeof ip === 'number' ? ip : ipv4ToInt(ip);
  if (Number.isNaN(n)) return false;
  const size = 2 ** (32 - c.bits);
  return n - (n % size) === c.base;
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function cidrString(c: Cidr): string {
  return `${intToIpv4(c.base)}/${c.bits}`;
}

/** The enclosing block of `bits` for an address: `10.244.1.17`, 28 -> `10.244.1.16/28`. */
export function blockOf(ip: string, bits: number): string {
  const c = parseCidr(`${ip}/${bits}`);
  return c ? cidrString(c) : ip;
}
