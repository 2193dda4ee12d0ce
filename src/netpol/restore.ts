import { KNOWN_SET, isOwnedChain, isOwnedSet, tempSetName } from './names.js';
import type { IpSet, Rendered } from './render.js';

/**
 * Pure diffs from what the kernel holds to what render wants, as `ipset restore` and
 * `iptables-restore --noflush` input. Only changed chains are rewritten; a changed set gets its
 * `del`/`add` lines, or is built in a temporary twin and swapped in when that is shorter.
 */

export interface AppliedState {
  chains: Map<string, string>;
  sets: Map<string, AppliedSet>;
  known: Set<string>;
  /** sets still in the kernel that no rule references anymore, destroyed with the next ipset call */
  orphans: Set<string>;
}

export interface AppliedSet {
  /** type + entries as text: equal text, nothing to do */
  text: string;
  entries: readonly string[];
}

/** What the kernel holds of ours, for a full sync (names listed, KNOWN contents read). */
export interface KernelInventory {
  chains: Set<string>;
  sets: Set<string>;
  known: Set<string>;
}

export function emptyState(): AppliedState {
  return { chains: new Map(), sets: new Map(), known: new Set(), orphans: new Set() };
}

// The incremental renderer hands back the same arrays for unchanged chains and sets: their text is
// joined once, not on every sync.
const joined = new WeakMap<readonly string[], string>();
function joinLines(lines: readonly string[]): string {
  let text = joined.get(lines);
  if (text === undefined) {
    text = lines.join('\n');
    joined.set(lines, text);
  }
  return text;
}

function setContent(s: IpSet): string {
  return `${s.type}\n${joinLines(s.entries)}`;
}

export function stateOf(r: Rendered, orphans: readonly string[] = []): AppliedState {
  return {
    chains: new Map([...r.chains].map(([k, v]) => [k, joinLines(v)])),
    sets: new Map([...r.sets].map(([k, v]) => [k, { text: setContent(v), entries: v.entries }])),
    known: new Set(r.known),
    orphans: new Set(orphans),
  };
}

export interface RestorePlan {
  /** ipset input run before the filter table changes: new and changed sets, KNOWN removals ('' = nothing) */
  ipsetBefore: string;
  /** iptables-restore input ('' = nothing to change) */
  iptables: string;
  /**
   * ipset input run after: KNOWN additions, then destroying sets no rule references anymore
   * (when the filter table does not change, KNOWN additions are in `ipsetBefore` instead)
   */
  ipsetAfter: string;
  changedChains: number;
  changedSets: number;
  /** unreferenced sets left for a later ipset call (the next state's `orphans`) */
  orphans: string[];
}

function createLine(name: string, s: IpSet): string {
  return `create ${name} ${s.type} family inet`;
}

/**
 * A changed set of pod addresses as `del` lines, then `add` lines, when that is shorter than
 * rebuilding it (null: rebuild in a twin and swap). Every set a rule matches allows traffic, so
 * deleting first never opens more than the old and the new contents both allow: in between the
 * set holds their intersection. ipBlock sets (hash:net, `nomatch` entries) are always swapped.
 */
function entryDiff(name: string, s: IpSet, applied: AppliedSet): string[] | null {
  if (s.type === 'hash:net' || !applied.text.startsWith(`${s.type}\n`)) return null;
  const was = new Set(applied.entries);
  const now = new Set(s.entries);
  const lines: string[] = [];
  for (const e of applied.entries) if (!now.has(e)) lines.push(`del ${name} ${e}`);
  for (const e of s.entries) if (!was.has(e)) lines.push(`add ${name} ${e}`);
  return lines.length < s.entries.length + 4 ? lines : null;
}

/**
 * Where `destroy` of the sets nothing references anymore goes, so that it never costs an exec of
 * its own: a set the previous rules referenced only after this sync's iptables-restore; one
 * already unreferenced (an orphan) in whichever ipset call runs anyway. Sets with no call to ride
 * in stay as orphans (harmless: nothing matches them) until the next one or the next full sync.
 */
function planDestroys(prev: AppliedState | null, next: Rendered, existing: Set<string>, before: string[], after: string[]): string[] {
  const unused = [...existing].filter((name) => !next.sets.has(name) && name !== KNOWN_SET && isOwnedSet(name)).sort();
  if (!prev) {
    after.push(...unused.map((name) => `destroy ${name}`)); // full sync: clean up now
    return [];
  }
  const orphans: string[] = [];
  for (const name of unused) {
    if (after.length > 0) after.push(`destroy ${name}`);
    else if (prev.orphans.has(name) && before.length > 1) before.push(`destroy ${name}`);
    else orphans.push(name);
  }
  return orphans;
}

/**
 * prev = what this process applied last (null after start or a failure: full sync against `inv`).
 */
export function planRestore(prev: AppliedState | null, next: Rendered, inv: KernelInventory | null): RestorePlan {
  const before: string[] = [`create ${KNOWN_SET} hash:ip family inet`];
  const after: string[] = [];
  const existingSets = prev ? new Set([...prev.sets.keys(), ...prev.orphans]) : new Set(inv?.sets ?? []);
  let changedSets = 0;
  for (const [name, s] of next.sets) {
    const applied = prev?.sets.get(name);
    if (applied && applied.text === setContent(s)) continue;
    changedSets++;
    if (!existingSets.has(name)) {
      before.push(createLine(name, s), ...s.entries.map((e) => `add ${name} ${e}`));
      continue;
    }
    const diff = applied ? entryDiff(name, s, applied) : null;
    if (diff) {
      before.push(...diff);
      continue;
    }
    const tmp = tempSetName(name);
    before.push(createLine(tmp, s), `flush ${tmp}`, ...s.entries.map((e) => `add ${tmp} ${e}`), createLine(name, s), `swap ${tmp} ${name}`, `destroy ${tmp}`);
  }
  const knownNow = prev ? prev.known : (inv?.known ?? new Set<string>());
  const knownNext = new Set(next.known);
  for (const ip of [...knownNow].sort()) if (!knownNext.has(ip)) before.push(`del ${KNOWN_SET} ${ip}`);
  for (const ip of next.known) if (!knownNow.has(ip) || !prev) after.push(`add ${KNOWN_SET} ${ip}`);

  const existingChains = prev ? new Set(prev.chains.keys()) : new Set(inv?.chains ?? []);
  const changed = [...next.chains.keys()].filter((c) => !prev || prev.chains.get(c) !== joinLines(next.chains.get(c)!));
  const stale = [...existingChains].filter((c) => !next.chains.has(c) && isOwnedChain(c)).sort();
  let iptables = '';
  if (changed.length > 0 || stale.length > 0) {
    const lines = ['*filter'];
    for (const c of [...changed, ...stale]) lines.push(`:${c} - [0:0]`);
    for (const c of changed) lines.push(...next.chains.get(c)!);
    for (const c of stale) lines.push(`-X ${c}`);
    lines.push('COMMIT');
    iptables = `${lines.join('\n')}\n`;
  }
  // Nothing changes in the filter table: KNOWN additions need not wait for it, one ipset call does all.
  if (!iptables) before.push(...after.splice(0));
  const orphans = planDestroys(prev, next, existingSets, before, after);
  // KNOWN's create line only matters on a full sync (it always exists after ensureBase).
  const ipsetBefore = prev && before.length === 1 ? '' : `${before.join('\n')}\n`;
  return {
    ipsetBefore,
    iptables,
    ipsetAfter: after.length ? `${after.join('\n')}\n` : '',
    changedChains: changed.length + stale.length,
    changedSets,
    orphans,
  };
}
