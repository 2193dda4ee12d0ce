import { hash } from 'node:crypto';
import type { JumpRule } from '../host/iptables.js';

/** Our prefix: every chain, recent-table and jump comment we own starts with it. */
export const PREFIX = 'SKIFF-';

export const SERVICES = 'SKIFF-SERVICES';
export const NODEPORTS = 'SKIFF-NODEPORTS';
export const POSTROUTING = 'SKIFF-POSTROUTING';
export const MARK_MASQ = 'SKIFF-MARK-MASQ';
export const EXTERNAL_SERVICES = 'SKIFF-EXTERNAL-SERVICES';
export const FORWARD = 'SKIFF-FORWARD';
export const FIREWALL = 'SKIFF-FIREWALL';

/** The packet-mark bit that asks SKIFF-POSTROUTING to masquerade. */
export const MASQ_MARK = '0x4000';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

const hashCache = new Map<string, string>();

/** 16 base32 chars of sha256(input), like kube-proxy's portProtoHash (memoized: names are stable). */
export function hash16(input: string): string {
  let h = hashCache.get(input);
  if (h === undefined) {
    if (hashCache.size > 200_000) hashCache.clear();
    h = computeHash16(input);
    hashCache.set(input, h);
  }
  return h;
}

function computeHash16(input: string): string {
  // One-shot hash: a createHash object per name cost ~70 ms of a cold 10k-Service render.
  const buf = hash('sha256', input, 'buffer');
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= 16) break;
  }
  return out;
}

/** Cluster-policy chain of a service port: DNATs to all usable endpoints. */
export function svcChain(key: string): string {
  return `SKIFF-SVC-${hash16(key)}`;
}

/** Local-policy chain: DNATs to this node's usable endpoints only. */
export function svlChain(key: string): string {
  return `SKIFF-SVL-${hash16(key)}`;
}

/** External chain, only for externalTrafficPolicy Local: pods/node → cluster chain, others → local chain. */
export function extChain(key: string): string {
  return `SKIFF-EXT-${hash16(key)}`;
}

/** xt_recent table name for ClientIP affinity to one endpoint of one service port. */
export function affinityName(key: string, ep: string): string {
  return `SKIFF-SEP-${hash16(`${key}>${ep}`)}`;
}

/** Built-in chains that jump into ours; ensured one by one, never written by restore. */
export function jumpRules(): JumpRule[] {
  const c = (text: string) => ['-m', 'comment', '--comment', text];
  const neu = ['-m', 'conntrack', '--ctstate', 'NEW'];
  return [
    { table: 'nat', chain: 'PREROUTING', args: [...c('SKIFF-SERVICES: service portals'), '-j', SERVICES] },
    { table: 'nat', chain: 'OUTPUT', args: [...c('SKIFF-SERVICES: service portals'), '-j', SERVICES] },
    { table: 'nat', chain: 'POSTROUTING', args: [...c('SKIFF-POSTROUTING: service masquerade'), '-j', POSTROUTING] },
    { table: 'filter', chain: 'INPUT', args: [...neu, ...c('SKIFF-EXTERNAL-SERVICES: external service portals'), '-j', EXTERNAL_SERVICES] },
    { table: 'filter', chain: 'INPUT', args: [...c('SKIFF-FIREWALL: localnet guard'), '-j', FIREWALL] },
    { table: 'filter', chain: 'FORWARD', args: [...c('SKIFF-FORWARD: service forwarding'), '-j', FORWARD] },
    { table: 'filter', chain: 'FORWARD', args: [...neu, ...c('SKIFF-SERVICES: service portals'), '-j', SERVICES] },
    { table: 'filter', chain: 'FORWARD', args: [...neu, ...c('SKIFF-EXTERNAL-SERVICES: external service portals'), '-j', EXTERNAL_SERVICES] },
    { table: 'filter', chain: 'OUTPUT', args: [...neu, ...c('SKIFF-SERVICES: service portals'), '-j', SERVICES] },
    { table: 'filter', chain: 'OUTPUT', args: [...c('SKIFF-FIREWALL: localnet guard'), '-j', FIREWALL] },
  ];
}

const FIXED = new Set([SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ, EXTERNAL_SERVICES, FORWARD, FIREWALL]);

const SERVICE_PORT_CHAIN = /^SKIFF-(SVC|SVL|EXT)-[A-Z2-7]{16}$/;

/** A chain of one service port (SVC, SVL or EXT), as opposed to the fixed chains. */
export function isServicePortChain(name: string): boolean {
  return SERVICE_PORT_CHAIN.test(name);
}

/** Chains the proxy owns (and only these are ever deleted by it). */
export function isProxyChain(name: string): boolean {
  return FIXED.has(name) || isServicePortChain(name);
}
