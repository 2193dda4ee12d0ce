import { createHash } from 'node:crypto';

/** Every chain, set and comment the engine owns carries these prefixes; clean-up touches nothing else. */
export const MAIN_CHAIN = 'SKIFF-NETPOL';
export const INGRESS_CHAIN = 'SKIFF-NP-INGRESS';
export const EGRESS_CHAIN = 'SKIFF-NP-EGRESS';
export const KNOWN_SET = 'SKIFF-NP-KNOWN';
export const CHAIN_PREFIXES = ['SKIFF-NETPOL', 'SKIFF-NP-'];
export const SET_PREFIX = 'SKIFF-NP';
export const DROP_LOG_PREFIX = 'SKIFF-NP-DROP';

export function isOwnedChain(name: string): boolean {
  return CHAIN_PREFIXES.some((p) => name.startsWith(p));
}

export function isOwnedSet(name: string): boolean {
  return name.startsWith(SET_PREFIX);
}

/** 16 characters of base32(sha256(text)), as kube-proxy names its chains. */
export function shortHash(text: string): string {
  const digest = createHash('sha256').update(text).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= 16) break;
  }
  return out;
}

/**
 * Pod-policy chain (<= 27 chars), named by what it is built from (the isolating policies' names,
 * and the pod's named ports where they matter): pods isolated by the same policies share one chain,
 * and a changed policy rewrites its chains in place under the same names.
 */
export function podChainName(dir: 'ingress' | 'egress', key: string): string {
  return `SKIFF-NP-${dir === 'ingress' ? 'I' : 'E'}-${shortHash(key)}`;
}

export function blockChainName(dir: 'ingress' | 'egress', block: string): string {
  return `SKIFF-NP-${dir === 'ingress' ? 'IB' : 'EB'}-${shortHash(block)}`;
}

/** Peer set (<= 26 chars; ipset allows 31). kind: S pod IPs, N nets, P pod IP + port. */
export function setName(kind: 'S' | 'N' | 'P', key: string): string {
  return `SKIFF-NP${kind}-${shortHash(key)}`;
}

/** The temporary twin a set is built in before `ipset swap`. */
export function tempSetName(name: string): string {
  return `SKIFF-NPT-${shortHash(name)}`;
}
