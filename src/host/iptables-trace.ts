import type { Table } from './iptables.js';
import type { Match, Rule } from './iptables-rule.js';
import { SkiffError } from '../util/errors.js';

/** A packet to follow through the tables. */
export interface TracePacket {
  src: string;
  dst: string;
  proto: 'tcp' | 'udp' | 'sctp' | 'icmp';
  dport?: number;
  sport?: number;
  /** Generated on this host (nat/filter OUTPUT) instead of arriving from a link (PREROUTING). */
  local?: boolean;
  inIface?: string;
  outIface?: string;
  /** Conntrack state of the packet before NAT (default NEW). */
  ctstate?: 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID';
  mark?: number;
}

export interface TraceOptions {
  /** Addresses of this host: `addrtype LOCAL` and delivery to INPUT. 127.0.0.0/8 always counts. */
  localAddrs?: string[];
  /** Decide random matches with this source of [0,1) numbers (one path) instead of exploring all. */
  random?: () => number;
  /** xt_recent tables (name → source IPs) used and updated in `random` mode. */
  recent?: Map<string, Set<string>>;
  ipsets?: Map<string, string[]>;
}

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT';

export interface TraceOutcome {
  verdict: Verdict;
  rejectWith?: string;
  /** Destination after NAT. */
  dst: string;
  dport?: number;
  dnat: boolean;
  masquerade: boolean;
  mark: number;
  /** Chains entered, in order (e.g. nat/PREROUTING, nat/SKIFF-SERVICES, ...). */
  path: string[];
}

export interface TraceResult {
  outcomes: TraceOutcome[];
  /** Sorted unique `ip:port` the packet may be DNATed to and accepted. */
  endpoints: string[];
  /** Whether accepted outcomes are masqueraded: true, false, or 'mixed'. */
  masquerade: boolean | 'mixed';
  verdicts: Verdict[];
}

interface St {
  src: string;
  dst: string;
  dport?: number;
  mark: number;
  dnat: boolean;
  masq: boolean;
  verdict?: Verdict;
  rejectWith?: string;
  path: string[];
}

type Tables = Record<Table, Map<string, Rule[]>>;
interface Ctx {
  tables: Tables;
  pkt: TracePacket;
  opts: TraceOptions;
}

function ipNum(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base, b] = cidr.split('/');
  const bits = b === undefined ? 32 : Number(b);
  if (bits === 0) return true;
  const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  return ((ipNum(base) & mask) >>> 0) === ((ipNum(ip) & mask) >>> 0);
}

function isLocalAddr(ip: string, ctx: Ctx): boolean {
  return inCidr(ip, '127.0.0.0/8') || (ctx.opts.localAddrs ?? []).includes(ip);
}

function portIn(port: number | undefined, spec: string): boolean {
  if (port === undefined) return false;
  return spec.split(',').some((p) => {
    const [lo, hi] = p.split(':').map(Number);
    return hi === undefined ? port === lo : port >= lo && port <= hi;
  });
}

function ifaceIs(name: string | undefined, pattern: string): boolean {
  if (!name) return false;
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

function parseMark(spec: string): [number, number] {
  const [v, m] = spec.split('/');
  return [Number(v), m === undefined ? 0xffffffff : Number(m)];
}

type Tri = 'yes' | 'no' | 'maybe';
const yn = (b: boolean): Tri => (b ? 'yes' : 'no');
const not = (t: Tri): Tri => (t === 'yes' ? 'no' : t === 'no' ? 'yes' : 'maybe');

function ctstates(st: St, ctx: Ctx): string[] {
  const base = ctx.pkt.ctstate ?? 'NEW';
  return st.dnat ? [base, 'DNAT'] : [base];
}

function setMember(member: string, flags: string[], st: St, ctx: Ctx): boolean {
  const parts = member.split(',');
  return parts.every((part, i) => {
    const flag = flags[i] ?? flags[flags.length - 1];
    if (/^(\w+:)?\d+$/.test(part)) {
      const [proto, port] = part.includes(':') ? part.split(':') : [ctx.pkt.proto, part];
      return proto === ctx.pkt.proto && Number(port) === (flag === 'src' ? ctx.pkt.sport : st.dport);
    }
    return inCidr(flag === 'src' ? st.src : st.dst, part);
  });
}

function evalMatch(m: Match, st: St, ctx: Ctx): Tri {
  const o = m.opts;
  const neg = (opt: string, t: Tri): Tri => (m.negated.has(opt) ? not(t) : t);
  switch (m.module) {
    case 'src':
      return (m.negate ? not : (t: Tri) => t)(yn(inCidr(st.src, String(o.value))));
    case 'dst':
      return (m.negate ? not : (t: Tri) => t)(yn(inCidr(st.dst, String(o.value))));
    case 'proto':
      return (m.negate ? not : (t: Tri) => t)(yn(ctx.pkt.proto === o.value || o.value === 'all'));
    case 'in':
      return (m.negate ? not : (t: Tri) => t)(yn(ifaceIs(ctx.pkt.inIface, String(o.value))));
    case 'out':
      return (m.negate ? not : (t: Tri) => t)(yn(ifaceIs(ctx.pkt.outIface, String(o.value))));
    case 'comment':
    case 'limit':
      return 'yes';
    case 'tcp':
    case 'udp':
    case 'sctp': {
      const d = o['--dport'] ?? o['--destination-port'];
      const s = o['--sport'] ?? o['--source-port'];
      if (d !== undefined && neg('--dport', yn(portIn(st.dport, String(d)))) === 'no') return 'no';
      if (s !== undefined && neg('--sport', yn(portIn(ctx.pkt.sport, String(s)))) === 'no') return 'no';
      return 'yes';
    }
    case 'multiport': {
      const d = o['--dports'] ?? o['--ports'];
      return neg('--dports', yn(d !== undefined && portIn(st.dport, String(d))));
    }
    case 'addrtype': {
      const want = (opt: string, ip: string): Tri => {
        const type = o[opt];
        if (type === undefined) return 'yes';
        const is = type === 'LOCAL' ? isLocalAddr(ip, ctx) : type === 'UNICAST' ? !isLocalAddr(ip, ctx) : false;
        return neg(opt, yn(is));
      };
      return want('--src-type', st.src) === 'yes' && want('--dst-type', st.dst) === 'yes' ? 'yes' : 'no';
    }
    case 'mark': {
      const [v, mask] = parseMark(String(o['--mark']));
      return neg('--mark', yn(((st.mark & mask) >>> 0) === v));
    }
    case 'conntrack': {
      if (o['--ctstate'] === undefined) return 'yes';
      const have = ctstates(st, ctx);
      return neg('--ctstate', yn(String(o['--ctstate']).split(',').some((s) => have.includes(s))));
    }
    case 'statistic': {
      if (o['--mode'] !== 'random') return 'maybe';
      const p = Number(o['--probability']);
      if (ctx.opts.random) return yn(ctx.opts.random() < p);
      return p >= 1 ? 'yes' : p <= 0 ? 'no' : 'maybe';
    }
    case 'recent':
      return evalRecent(m, st, ctx);
    case 'set': {
      const [name, flagStr] = String(o['--match-set']).split(' ');
      const members = ctx.opts.ipsets?.get(name);
      if (!members) throw new SkiffError('ERR_IPTABLES_TRACE', `ipset ${name} unknown to the trace`);
      const flags = (flagStr ?? 'src').split(',');
      return neg('--match-set', yn(members.some((mem) => setMember(mem, flags, st, ctx))));
    }
    default:
      return 'no';
  }
}

function evalRecent(m: Match, st: St, ctx: Ctx): Tri {
  const name = String(m.opts['--name'] ?? 'DEFAULT');
  const who = m.opts['--rdest'] ? st.dst : st.src;
  if (!ctx.opts.random) return m.opts['--set'] ? 'yes' : 'maybe';
  const tables = (ctx.opts.recent ??= new Map());
  const table = tables.get(name) ?? new Set<string>();
  tables.set(name, table);
  if (m.opts['--set']) {
    table.add(who);
    return 'yes';
  }
  if (m.opts['--remove']) return yn(table.delete(who));
  return yn(table.has(who));
}

function applyMark(t: Record<string, string | true>, mark: number): number {
  if (t['--or-mark'] !== undefined) return (mark | Number(t['--or-mark'])) >>> 0;
  if (t['--xor-mark'] !== undefined) return (mark ^ Number(t['--xor-mark'])) >>> 0;
  if (t['--and-mark'] !== undefined) return (mark & Number(t['--and-mark'])) >>> 0;
  const [v, m] = parseMark(String(t['--set-xmark'] ?? t['--set-mark']));
  return ((mark & ~m) ^ v) >>> 0;
}

function copy(st: St): St {
  return { ...st, path: [...st.path] };
}

function runChain(ctx: Ctx, table: Table, chain: string, st: St, depth: number): St[] {
  const rules = ctx.tables[table].get(chain);
  if (!rules) throw new SkiffError('ERR_IPTABLES_TRACE', `no chain ${table}/${chain}`);
  if (depth > 64) throw new SkiffError('ERR_IPTABLES_TRACE', `jump loop at ${table}/${chain}`);
  st.path.push(`${table}/${chain}`);
  return runFrom(ctx, table, rules, 0, st, depth);
}

function runFrom(ctx: Ctx, table: Table, rules: Rule[], start: number, st: St, depth: number): St[] {
  for (let i = start; i < rules.length; i++) {
    let verdict: Tri = 'yes';
    for (const m of rules[i].matches) {
      const r = evalMatch(m, st, ctx);
      if (r === 'no') {
        verdict = 'no';
        break;
      }
      if (r === 'maybe') verdict = 'maybe';
    }
    if (verdict === 'no') continue;
    if (verdict === 'maybe') {
      return [...applyTarget(ctx, table, rules, i, copy(st), depth), ...runFrom(ctx, table, rules, i + 1, copy(st), depth)];
    }
    return applyTarget(ctx, table, rules, i, st, depth);
  }
  return [st];
}

function applyTarget(ctx: Ctx, table: Table, rules: Rule[], i: number, st: St, depth: number): St[] {
  const t = rules[i].target;
  if (!t) return runFrom(ctx, table, rules, i + 1, st, depth);
  switch (t.name) {
    case 'ACCEPT':
    case 'DROP':
      st.verdict = t.name;
      return [st];
    case 'REJECT':
      st.verdict = 'REJECT';
      st.rejectWith = String(t.opts['--reject-with'] ?? 'icmp-port-unreachable');
      return [st];
    case 'RETURN':
      return [st];
    case 'DNAT': {
      const to = String(t.opts['--to-destination']);
      const [ip, port] = to.split(':');
      st.dst = ip;
      if (port) st.dport = Number(port);
      st.dnat = true;
      st.verdict = 'ACCEPT';
      return [st];
    }
    case 'MASQUERADE':
    case 'SNAT':
      st.masq = true;
      st.verdict = 'ACCEPT';
      return [st];
    case 'MARK':
      st.mark = applyMark(t.opts, st.mark);
      return runFrom(ctx, table, rules, i + 1, st, depth);
    case 'LOG':
    case 'NFLOG':
    case 'CONNMARK':
    case 'NOTRACK':
      return runFrom(ctx, table, rules, i + 1, st, depth);
    default: {
      const out: St[] = [];
      for (const s of runChain(ctx, table, t.name, st, depth + 1)) {
        if (s.verdict || t.goto) out.push(s);
        else out.push(...runFrom(ctx, table, rules, i + 1, s, depth));
      }
      return out;
    }
  }
}

/** Runs one hook (built-in chain); ACCEPT and falling off both let the packet go on. */
function hook(ctx: Ctx, table: Table, chain: string, states: St[]): St[] {
  const out: St[] = [];
  for (const s of states) {
    if (s.verdict === 'DROP' || s.verdict === 'REJECT') {
      out.push(s);
      continue;
    }
    s.verdict = undefined;
    if (!ctx.tables[table].has(chain)) {
      out.push(s);
      continue;
    }
    out.push(...runChain(ctx, table, chain, s, 0));
  }
  return out;
}

/**
 * Follows a packet as the kernel would through nat (NEW only) and filter: PREROUTING (or OUTPUT
 * for local packets), the routing decision (local address → INPUT, else FORWARD), POSTROUTING.
 * Random matches fork the trace, so the result lists every endpoint the packet may reach.
 */
export function tracePacket(tables: Tables, pkt: TracePacket, opts: TraceOptions = {}): TraceResult {
  const ctx: Ctx = { tables, pkt, opts };
  const isNew = (pkt.ctstate ?? 'NEW') === 'NEW';
  let states: St[] = [{ src: pkt.src, dst: pkt.dst, dport: pkt.dport, mark: pkt.mark ?? 0, dnat: false, masq: false, path: [] }];
  if (isNew) states = hook(ctx, 'nat', pkt.local ? 'OUTPUT' : 'PREROUTING', states);
  const routed: St[] = [];
  for (const s of states) {
    if (s.verdict === 'DROP' || s.verdict === 'REJECT') {
      routed.push(s);
      continue;
    }
    const chain = pkt.local ? 'OUTPUT' : isLocalAddr(s.dst, ctx) ? 'INPUT' : 'FORWARD';
    routed.push(...hook(ctx, 'filter', chain, [s]));
  }
  states = isNew ? hook(ctx, 'nat', 'POSTROUTING', routed) : routed;
  const outcomes: TraceOutcome[] = states.map((s) => ({
    verdict: s.verdict === 'DROP' || s.verdict === 'REJECT' ? s.verdict : 'ACCEPT',
    rejectWith: s.rejectWith,
    dst: s.dst,
    dport: s.dport,
    dnat: s.dnat,
    masquerade: s.masq,
    mark: s.mark,
    path: s.path,
  }));
  const accepted = outcomes.filter((o) => o.verdict === 'ACCEPT');
  const endpoints = [...new Set(accepted.filter((o) => o.dnat).map((o) => `${o.dst}:${o.dport}`))].sort();
  const masqs = new Set(accepted.map((o) => o.masquerade));
  return {
    outcomes,
    endpoints,
    masquerade: masqs.size > 1 ? 'mixed' : masqs.has(true),
    verdicts: [...new Set(outcomes.map((o) => o.verdict))].sort(),
  };
}
