import { blockOf } from './ip.js';
import type { Direction } from './model.js';
import { blockChainName, EGRESS_CHAIN, INGRESS_CHAIN } from './names.js';

/**
 * Dispatch chains (`SKIFF-NP-INGRESS/EGRESS` and their /28 block chains): by pod address to the
 * pod's chain, with `-g` so an allow returns straight to the main chain. Pure output; the
 * renderer keeps one `Dispatcher` per direction so that blocks whose entries did not change keep
 * their (identical) line arrays and restore.ts can skip them without comparing text.
 */

export interface DispatchEntry {
  ip: string;
  chain: string;
  pod: string;
}

/** Above this many dispatch entries, dispatch goes through one chain per /28 block. */
const FLAT_DISPATCH_MAX = 16;
const BLOCK_BITS = 28;

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const sameEntries = (a: readonly DispatchEntry[], b: readonly DispatchEntry[]): boolean =>
  a.length === b.length && a.every((e, i) => e.ip === b[i].ip && e.chain === b[i].chain && e.pod === b[i].pod);

interface Cached {
  entries: DispatchEntry[];
  lines: string[];
}

export class Dispatcher {
  private readonly root: string;
  private readonly flag: string;
  private blocks = new Map<string, Cached>();
  private root_: Cached | null = null;
  private readonly blockOfIp = new Map<string, string>();
  private readonly blockNames = new Map<string, string>();

  constructor(readonly dir: Direction) {
    this.root = dir === 'ingress' ? INGRESS_CHAIN : EGRESS_CHAIN;
    this.flag = dir === 'ingress' ? '-d' : '-s';
  }

  // No comment naming the pod: a comment match per pod was a fifth of a full restore's CPU, and
  // `skiff policy explain` names the pod behind an address.
  private line(chain: string, e: DispatchEntry): string {
    return `-A ${chain} ${this.flag} ${e.ip}/32 -g ${e.chain}`;
  }

  private block(ip: string): string {
    let b = this.blockOfIp.get(ip);
    if (b === undefined) {
      if (this.blockOfIp.size > 100_000) this.blockOfIp.clear();
      b = blockOf(ip, BLOCK_BITS);
      this.blockOfIp.set(ip, b);
    }
    return b;
  }

  private blockChain(block: string): string {
    let name = this.blockNames.get(block);
    if (name === undefined) {
      if (this.blockNames.size > 100_000) this.blockNames.clear();
      name = blockChainName(this.dir, block);
      this.blockNames.set(block, name);
    }
    return name;
  }

  /** Adds the dispatch chains for `entries` to `chains`. */
  render(entries: DispatchEntry[], chains: Map<string, string[]>): void {
    const sorted = [...entries].sort((a, b) => byText(a.ip, b.ip));
    if (sorted.length <= FLAT_DISPATCH_MAX) {
      chains.set(this.root, this.reuse(this.root_, sorted, () => sorted.map((e) => this.line(this.root, e)), (c) => (this.root_ = c)));
      this.blocks = new Map();
      return;
    }
    const groups = new Map<string, DispatchEntry[]>();
    for (const e of sorted) {
      const b = this.block(e.ip);
      const list = groups.get(b);
      if (list) list.push(e);
      else groups.set(b, [e]);
    }
    const next = new Map<string, Cached>();
    const rootEntries: DispatchEntry[] = [];
    for (const [block, list] of [...groups.entries()].sort((a, b) => byText(a[0], b[0]))) {
      if (list.length === 1) {
        rootEntries.push(list[0]);
        continue;
      }
      const bc = this.blockChain(block);
      rootEntries.push({ ip: block, chain: bc, pod: '' });
      chains.set(bc, this.reuse(this.blocks.get(block) ?? null, list, () => list.map((e) => this.line(bc, e)), (c) => next.set(block, c)));
    }
    this.blocks = next;
    const rootLine = (e: DispatchEntry) => (e.pod ? this.line(this.root, e) : `-A ${this.root} ${this.flag} ${e.ip} -g ${e.chain}`);
    chains.set(this.root, this.reuse(this.root_, rootEntries, () => rootEntries.map(rootLine), (c) => (this.root_ = c)));
  }

  private reuse(prev: Cached | null, entries: DispatchEntry[], build: () => string[], keep: (c: Cached) => void): string[] {
    const c = prev && sameEntries(prev.entries, entries) ? prev : { entries, lines: build() };
    keep(c);
    return c.lines;
  }
}
