import { SkiffError } from '../util/errors.js';
import { cidrContains, parseCidr, type Cidr } from './ip.js';
import { KNOWN_SET, MAIN_CHAIN } from './names.js';
import type { IpSet, Rendered } from './render.js';

/**
 * A fake filter table that parses the rules render produces, rejects what the kernel would reject
 * (unknown options, jumps to undeclared chains, unknown sets) and traces a packet through FORWARD
 * (which jumps to SKIFF-NETPOL first, policy ACCEPT). Unit tests assert verdicts, not call orders;
 * explain uses it to name the chain and rule that decide a connection.
 */

export interface Packet {
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  dport: number;
  state?: 'NEW' | 'ESTABLISHED';
}

interface ParsedRule {
  chain: string;
  index: number;
  line: string;
  src?: Cidr;
  dst?: Cidr;
  proto?: string;
  /** --dport, or multiport's --dports: any of these ranges */
  dport?: [number, number][];
  sets: { name: string; neg: boolean; dirs: string[] }[];
  ctstate?: string[];
  comment?: string;
  target: string;
  goto: boolean;
  logPrefix?: string;
}

export interface TraceStep {
  chain: string;
  /** 0-based position among the chain's rules */
  index: number;
  line: string;
  target: string;
  comment?: string;
}

export interface TraceResult {
  verdict: 'ACCEPT' | 'DROP';
  /** every rule that matched, in order */
  steps: TraceStep[];
  logged: string[];
}

function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2]);
  return out;
}

function reject(line: string, why: string): never {
  throw new SkiffError('ERR_NETPOL_TRACE', `rule rejected (${why}): ${line}`);
}

export function parseRule(line: string, index: number, sets: ReadonlyMap<string, IpSet>): ParsedRule {
  const t = tokenize(line);
  if (t[0] !== '-A' || !t[1]) reject(line, 'expected -A CHAIN');
  const r: ParsedRule = { chain: t[1], index, line, sets: [], target: '', goto: false };
  let neg = false;
  const modules = new Set<string>();
  for (let i = 2; i < t.length; i++) {
    const tok = t[i];
    const next = () => t[++i] ?? reject(line, `${tok} needs a value`);
    switch (tok) {
      case '!': if (t[i + 1] !== '--match-set') reject(line, 'negation is only modelled for --match-set'); neg = true; continue;
      case '-s': case '-d': {
        const c = parseCidr(next());
        if (!c) reject(line, 'bad address');
        if (tok === '-s') r.src = c;
        else r.dst = c;
        break;
      }
      case '-p': r.proto = next(); break;
      case '-m': {
        const mod = next();
        if (!['tcp', 'udp', 'sctp', 'multiport', 'set', 'conntrack', 'comment', 'limit'].includes(mod)) reject(line, `unknown match ${mod}`);
        if (['tcp', 'udp', 'sctp'].includes(mod) && r.proto !== mod) reject(line, `-m ${mod} needs -p ${mod}`);
        if (mod === 'multiport' && !['tcp', 'udp', 'sctp'].includes(r.proto ?? '')) reject(line, 'multiport needs -p tcp, udp or sctp');
        modules.add(mod);
        break;
      }
      case '--dport': case '--dports': {
        if (!modules.has(tok === '--dport' ? (r.proto ?? '') : 'multiport')) reject(line, `${tok} needs ${tok === '--dport' ? '-m PROTO' : '-m multiport'}`);
        const ranges = next().split(',').map((p) => p.split(':').map(Number));
        if (tok === '--dport' && ranges.length > 1) reject(line, 'bad port');
        if (ranges.reduce((n, x) => n + x.length, 0) > 15) reject(line, 'too many ports');
        for (const [a, b] of ranges) if (!(a >= 0 && a <= 65535) || (b !== undefined && !(b >= a && b <= 65535))) reject(line, 'bad port');
        r.dport = ranges.map(([a, b]) => [a, b ?? a]);
        break;
      }
      case '--match-set': {
        const name = next();
        if (!sets.has(name)) reject(line, `set ${name} does not exist`);
        r.sets.push({ name, neg, dirs: next().split(',') });
        neg = false;
        break;
      }
      case '--ctstate': r.ctstate = next().split(','); break;
      case '--comment': r.comment = next(); break;
      case '--limit': case '--limit-burst': next(); break;
      case '--log-prefix': r.logPrefix = next(); if (r.logPrefix.length > 29) reject(line, 'log prefix too long'); break;
      case '-j': case '-g': r.target = next(); r.goto = tok === '-g'; break;
      default: reject(line, `unknown option ${tok}`);
    }
  }
  if (!r.target) reject(line, 'no target');
  return r;
}

function inSet(s: IpSet, p: Packet, dirs: string[]): boolean {
  const ip = dirs[0] === 'src' ? p.src : p.dst;
  if (s.type === 'hash:ip') return s.entries.includes(ip);
  if (s.type === 'hash:ip,port') return s.entries.includes(`${ip},${p.protocol}:${p.dport}`);
  let best: { bits: number; nomatch: boolean } | null = null;
  for (const e of s.entries) {
    const [net, flag] = e.split(' ');
    const c = parseCidr(net);
    if (c && cidrContains(c, ip) && (!best || c.bits > best.bits)) best = { bits: c.bits, nomatch: flag === 'nomatch' };
  }
  return !!best && !best.nomatch;
}

export class FilterTracer {
  private readonly chains = new Map<string, ParsedRule[]>();
  private readonly sets: Map<string, IpSet>;

  constructor(r: Rendered) {
    this.sets = new Map(r.sets);
    this.sets.set(KNOWN_SET, { name: KNOWN_SET, type: 'hash:ip', entries: r.known, comment: 'programmed pods' });
    for (const [name, lines] of r.chains) {
      this.chains.set(name, lines.map((l, i) => {
        const rule = parseRule(l, i, this.sets);
        if (rule.chain !== name) reject(l, `rule is in chain ${name}`);
        return rule;
      }));
    }
    const builtin = new Set(['ACCEPT', 'DROP', 'RETURN', 'LOG']);
    for (const rules of this.chains.values()) {
      for (const rule of rules) if (!builtin.has(rule.target) && !this.chains.has(rule.target)) reject(rule.line, `chain ${rule.target} does not exist`);
    }
  }

  private matches(rule: ParsedRule, p: Packet): boolean {
    if (rule.src && !cidrContains(rule.src, p.src)) return false;
    if (rule.dst && !cidrContains(rule.dst, p.dst)) return false;
    if (rule.proto && rule.proto !== p.protocol) return false;
    if (rule.dport && !rule.dport.some(([a, b]) => p.dport >= a && p.dport <= b)) return false;
    if (rule.ctstate) {
      const state = p.state ?? 'NEW';
      if (!rule.ctstate.includes(state)) return false;
    }
    for (const s of rule.sets) if (inSet(this.sets.get(s.name)!, p, s.dirs) === s.neg) return false;
    return true;
  }

  /** Traces a packet through FORWARD, whose first rule jumps to SKIFF-NETPOL. */
  trace(p: Packet): TraceResult {
    const steps: TraceStep[] = [];
    const logged: string[] = [];
    const stack: { chain: string; pos: number }[] = [];
    let frame: { chain: string; pos: number } | null = { chain: MAIN_CHAIN, pos: 0 };
    while (frame) {
      const rules: ParsedRule[] = this.chains.get(frame.chain) ?? [];
      const rule: ParsedRule | undefined = rules.slice(frame.pos).find((x) => this.matches(x, p));
      if (!rule) {
        frame = stack.pop() ?? null;
        continue;
      }
      frame.pos = rule.index + 1;
      steps.push({ chain: rule.chain, index: rule.index, line: rule.line, target: rule.target, comment: rule.comment });
      if (rule.target === 'ACCEPT' || rule.target === 'DROP') return { verdict: rule.target, steps, logged };
      if (rule.target === 'LOG') logged.push(rule.logPrefix ?? '');
      else if (rule.target === 'RETURN') frame = stack.pop() ?? null;
      else {
        if (!rule.goto) stack.push(frame);
        frame = { chain: rule.target, pos: 0 };
      }
    }
    return { verdict: 'ACCEPT', steps, logged };
  }
}
