import type { Iptables, IptablesBackend, JumpRule, Table } from './iptables.js';
import { restoreError } from './iptables.js';
import { parseRule, tokenize, validateRule, type Rule } from './iptables-rule.js';
import { tracePacket, type TraceOptions, type TracePacket, type TraceResult } from './iptables-trace.js';
import { errorMessage, SkiffError } from '../util/errors.js';

export const BUILTIN: Record<Table, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};

/** Tables as chain name → rules, in declaration order. */
export type TableState = Map<string, Rule[]>;
export type FakeState = Record<Table, TableState>;

function emptyState(): FakeState {
  const s = {} as FakeState;
  for (const t of Object.keys(BUILTIN) as Table[]) s[t] = new Map(BUILTIN[t].map((c) => [c, []]));
  return s;
}

function cloneState(s: FakeState): FakeState {
  const out = {} as FakeState;
  for (const t of Object.keys(s) as Table[]) out[t] = new Map([...s[t]].map(([k, v]) => [k, [...v]]));
  return out;
}

const MAX_CHAIN = 28;

/**
 * An in-memory iptables that behaves like the kernel for what skiff writes: it parses
 * iptables-restore input (with or without --noflush) atomically, rejects what the kernel would
 * (unknown chains and targets, DROP in nat, deleting a referenced chain, overlong names, missing
 * COMMIT) with the same `line N failed` error, answers save/-C/-D, and traces packets through
 * nat and filter (see tracePacket). Reusable by any component that programs iptables.
 */
export class FakeIptables implements Iptables {
  state: FakeState = emptyState();
  /** Every restore input that was accepted, in order (for asserting partial syncs). */
  readonly restores: string[] = [];
  /** Make the next restore fail at this line (1-based), to test error handling. */
  failNextRestoreAtLine?: number;
  /** ipset contents for `-m set` matches: name → members (`ip`, `cidr`, or `ip,proto:port`). */
  readonly ipsets = new Map<string, string[]>();

  constructor(readonly backend: IptablesBackend = 'nft') {}

  async restore(text: string, opts: { noflush?: boolean } = {}): Promise<void> {
    const next = cloneState(this.state);
    const lines = text.split('\n');
    let table: Table | undefined;
    let lineNo = 0;
    const err = (msg: string): never => {
      throw restoreError(text, `iptables-restore: line ${lineNo} failed: ${msg}`, 1);
    };
    if (this.failNextRestoreAtLine !== undefined) {
      lineNo = this.failNextRestoreAtLine;
      this.failNextRestoreAtLine = undefined;
      err('injected failure');
    }
    for (const raw of lines) {
      lineNo++;
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        if (table) err('previous table not committed');
        const name = line.slice(1) as Table;
        if (!BUILTIN[name]) err(`unknown table ${name}`);
        table = name;
        if (!opts.noflush) next[table] = new Map(BUILTIN[table].map((c) => [c, []]));
        continue;
      }
      if (!table) err('no table specified');
      const t = next[table!];
      if (line === 'COMMIT') {
        table = undefined;
        continue;
      }
      if (line.startsWith(':')) {
        const [name] = line.slice(1).split(' ');
        if (name.length > MAX_CHAIN) err(`chain name "${name}" too long`);
        // Declaring a user chain creates or flushes it; a built-in one keeps its rules.
        if (!BUILTIN[table!].includes(name)) t.set(name, []);
        continue;
      }
      try {
        this.applyCommand(table!, t, tokenize(line));
      } catch (e) {
        err(errorMessage(e));
      }
    }
    if (table) {
      lineNo++;
      err('COMMIT expected at line');
    }
    this.state = next;
    this.restores.push(text);
  }

  private applyCommand(table: Table, t: TableState, words: string[]): void {
    const [op, chain, ...rest] = words;
    if (!chain) throw new SkiffError('ERR_IPTABLES_PARSE', `${op} needs a chain`);
    const rules = t.get(chain);
    switch (op) {
      case '-A':
      case '--append':
        if (!rules) throw new SkiffError('ERR_IPTABLES_PARSE', `chain ${chain} does not exist`);
        rules.push(this.checked(table, t, parseRule(chain, rest)));
        return;
      case '-I':
      case '--insert': {
        if (!rules) throw new SkiffError('ERR_IPTABLES_PARSE', `chain ${chain} does not exist`);
        const pos = /^\d+$/.test(rest[0] ?? '') ? Number(rest.shift()) : 1;
        rules.splice(pos - 1, 0, this.checked(table, t, parseRule(chain, rest)));
        return;
      }
      case '-D':
      case '--delete': {
        if (!rules) throw new SkiffError('ERR_IPTABLES_PARSE', `chain ${chain} does not exist`);
        const spec = parseRule(chain, rest).spec;
        const i = rules.findIndex((r) => r.spec === spec);
        if (i < 0) throw new SkiffError('ERR_IPTABLES_PARSE', 'Bad rule (does a matching rule exist in that chain?)');
        rules.splice(i, 1);
        return;
      }
      case '-N':
      case '--new-chain':
        if (rules) throw new SkiffError('ERR_IPTABLES_PARSE', `Chain ${chain} already exists`);
        if (chain.length > MAX_CHAIN) throw new SkiffError('ERR_IPTABLES_PARSE', `chain name "${chain}" too long`);
        t.set(chain, []);
        return;
      case '-F':
      case '--flush':
        if (!rules) throw new SkiffError('ERR_IPTABLES_PARSE', `chain ${chain} does not exist`);
        t.set(chain, []);
        return;
      case '-X':
      case '--delete-chain':
        this.deleteChainIn(table, t, chain);
        return;
      default:
        throw new SkiffError('ERR_IPTABLES_PARSE', `unknown command ${op}`);
    }
  }

  private checked(table: Table, t: TableState, r: Rule): Rule {
    if (r.target?.name === r.chain) throw new SkiffError('ERR_IPTABLES_PARSE', 'a chain cannot jump to itself');
    validateRule(table, r, (n) => t.has(n));
    return r;
  }

  private deleteChainIn(table: Table, t: TableState, chain: string): void {
    if (BUILTIN[table].includes(chain)) throw new SkiffError('ERR_IPTABLES_PARSE', `cannot delete built-in chain ${chain}`);
    const rules = t.get(chain);
    if (!rules) throw new SkiffError('ERR_IPTABLES_PARSE', `chain ${chain} does not exist`);
    if (rules.length > 0) throw new SkiffError('ERR_IPTABLES_PARSE', `Directory not empty: chain ${chain} is not empty`);
    for (const [name, rs] of t) {
      if (rs.some((r) => r.target?.name === chain)) throw new SkiffError('ERR_IPTABLES_PARSE', `Too many links: chain ${chain} is referenced from ${name}`);
    }
    t.delete(chain);
  }

  async save(table: Table): Promise<string> {
    const t = this.state[table];
    const out = [`*${table}`];
    for (const name of t.keys()) out.push(`:${name} ${BUILTIN[table].includes(name) ? 'ACCEPT' : '-'} [0:0]`);
    for (const [name, rules] of t) for (const r of rules) out.push(`-A ${name} ${r.spec}`);
    out.push('COMMIT');
    return out.join('\n') + '\n';
  }

  async ensureChain(table: Table, chain: string): Promise<void> {
    if (!this.state[table].has(chain)) this.applyCommand(table, this.state[table], ['-N', chain]);
  }

  async ensureRule(rule: JumpRule): Promise<boolean> {
    const t = this.state[rule.table];
    const parsed = parseRule(rule.chain, rule.args);
    const rules = t.get(rule.chain) ?? [];
    if (rules.some((r) => r.spec === parsed.spec)) return false;
    validateRule(rule.table, parsed, (n) => t.has(n));
    if (rule.position === 'append') rules.push(parsed);
    else rules.unshift(parsed);
    t.set(rule.chain, rules);
    return true;
  }

  async deleteRule(table: Table, chain: string, args: string[]): Promise<boolean> {
    try {
      this.applyCommand(table, this.state[table], ['-D', chain, ...args]);
      return true;
    } catch {
      return false;
    }
  }

  async deleteChain(table: Table, chain: string): Promise<void> {
    const t = this.state[table];
    if (!t.has(chain)) return;
    t.set(chain, []);
    this.deleteChainIn(table, t, chain);
  }

  /** Chain names of a table (for assertions). */
  chains(table: Table): string[] {
    return [...this.state[table].keys()];
  }

  /** Rules of one chain as `-A CHAIN spec` lines. */
  rules(table: Table, chain: string): string[] {
    return (this.state[table].get(chain) ?? []).map((r) => `-A ${chain} ${r.spec}`);
  }

  /** Follows a packet through nat and filter: every possible outcome (or one, with opts.random). */
  trace(pkt: TracePacket, opts: TraceOptions = {}): TraceResult {
    return tracePacket(this.state, pkt, { ...opts, ipsets: opts.ipsets ?? this.ipsets });
  }
}
