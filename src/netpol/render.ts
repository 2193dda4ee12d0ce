import { Dispatcher, type DispatchEntry } from './dispatch.js';
import { cidrContains, parseCidr, type Cidr } from './ip.js';
import type { Direction, Peer, PodInfo, PolicyInfo, PortSpec, Rule, Snapshot } from './model.js';
import { podKey } from './model.js';
import { DROP_LOG_PREFIX, EGRESS_CHAIN, INGRESS_CHAIN, KNOWN_SET, MAIN_CHAIN, podChainName, setName } from './names.js';
import { podKeyOf, portsKey, RenderIndex } from './classes.js';
import { podPeerKey, resolvePort, type PortRange } from './select.js';

/**
 * Render, pure: snapshot -> desired kernel state. Sets hold peers (pod IPs per peer selector, nets
 * with `nomatch` entries for ipBlock excepts, pod IP+port for named egress ports); chains exist only
 * for pods some policy isolates, and pods with identical rules share one content-named chain.
 * Same input, byte-identical output.
 */

export type SetType = 'hash:ip' | 'hash:net' | 'hash:ip,port';

export interface IpSet {
  name: string;
  type: SetType;
  /** sorted; hash:net entries may end in ` nomatch` */
  entries: string[];
  /** what the set stands for, for explain and for humans reading `ipset list` */
  comment: string;
}

export interface PodProgram {
  pod: string;
  ips: string[];
  ingressChain?: string;
  egressChain?: string;
}

export interface Rendered {
  sets: Map<string, IpSet>;
  /** chain -> rule lines (`-A CHAIN ...`), in order */
  chains: Map<string, string[]>;
  /** addresses of this node's pods whose policy state is programmed (the KNOWN gate) */
  known: string[];
  pods: Map<string, PodProgram>;
}

export interface RenderOptions {
  /** This node's pod range: addresses in it are dark until their pod is in the KNOWN set. */
  podCIDR?: string;
  /** Log denied connection attempts (LOG target, kernel-rate-limited) tagged with this instance tag. */
  dropLog?: { tag: string; ratePerSec: number } | null;
}

export function dropLogPrefix(dir: Direction, tag: string): string {
  return `${DROP_LOG_PREFIX}-${dir === 'ingress' ? 'I' : 'E'}-${tag} `;
}

/** A set a chain refers to: its name is fixed by the key, its entries come from the current index. */
interface SetRequest {
  name: string;
  type: SetType;
  comment: string;
  /** the pods the entries derive from (null: the entries depend on the rule alone) */
  pods: (idx: RenderIndex) => readonly PodInfo[] | null;
  entries: (pods: readonly PodInfo[] | null) => string[];
}

/** One rendered pod chain, reusable while the policies isolating its pods are the same objects. */
interface ChainPiece {
  pols: PolicyInfo[];
  name: string;
  lines: string[];
  sets: SetRequest[];
}

class SetRefs {
  readonly list: SetRequest[] = [];
  add(kind: 'S' | 'N' | 'P', key: string, type: SetType, comment: string, req: Pick<SetRequest, 'pods' | 'entries'>): string {
    const name = setName(kind, key);
    this.list.push({ name, type, comment, ...req });
    return name;
  }
}

function netEntries(cidr: string, except: readonly string[]): string[] {
  const c = parseCidr(cidr);
  if (!c) return [];
  // hash:net cannot hold /0: two halves cover the same space.
  const base = c.bits === 0 ? ['0.0.0.0/1', '128.0.0.0/1'] : [`${cidr.split('/')[0]}/${c.bits}`];
  const nomatch = except.filter((e) => {
    const x = parseCidr(e);
    return !!x && x.bits > 0 && cidrContains(c, x.base);
  });
  return [...base, ...nomatch.map((e) => `${e.includes('/') ? e : `${e}/32`} nomatch`)];
}

/** multiport takes up to 15 ports, a range counting as two */
const MULTIPORT_SLOTS = 15;

const portText = (r: PortRange): string => (r.to !== undefined && r.to !== r.from ? `${r.from}:${r.to}` : `${r.from}`);

/**
 * The port matches of one peer of a rule: one per protocol (all its ports: `-p tcp`; one port or
 * range: `--dport`; several: `-m multiport --dports`, 15 slots per rule), protocols in first-seen order.
 */
function portMatches(ranges: readonly PortRange[]): string[] {
  const byProto = new Map<string, PortRange[]>();
  for (const r of ranges) {
    const p = r.protocol.toLowerCase();
    const list = byProto.get(p);
    if (list) list.push(r);
    else byProto.set(p, [r]);
  }
  const out: string[] = [];
  for (const [p, list] of byProto) {
    if (list.some((r) => r.from === undefined)) {
      out.push(`-p ${p}`);
      continue;
    }
    const ports = [...new Set(list.map(portText))];
    if (ports.length === 1) {
      out.push(`-p ${p} -m ${p} --dport ${ports[0]}`);
      continue;
    }
    let chunk: string[] = [];
    let slots = 0;
    for (const port of ports) {
      const need = port.includes(':') ? 2 : 1;
      if (slots + need > MULTIPORT_SLOTS) {
        out.push(`-p ${p} -m multiport --dports ${chunk.join(',')}`);
        chunk = [];
        slots = 0;
      }
      chunk.push(port);
      slots += need;
    }
    out.push(chunk.length === 1 ? `-p ${p} -m ${p} --dport ${chunk[0]}` : `-p ${p} -m multiport --dports ${chunk.join(',')}`);
  }
  return out;
}

function peerSet(refs: SetRefs, pol: PolicyInfo, peer: Peer): string {
  if (peer.kind === 'ipBlock') {
    const key = `${peer.cidr} except ${[...peer.except].sort().join(',')}`;
    return refs.add('N', key, 'hash:net', `ipBlock ${key}`, { pods: () => null, entries: () => netEntries(peer.cidr, peer.except) });
  }
  const key = podPeerKey(pol.namespace, peer);
  return refs.add('S', key, 'hash:ip', `pods ${key}`, { pods: (idx) => idx.peerPods(pol.namespace, peer), entries: (pods) => (pods ?? []).flatMap((p) => p.ips) });
}

/** Egress to a named port: the set of (peer pod IP, protocol:resolved port) for the peer's pods. */
function namedPortSet(refs: SetRefs, pol: PolicyInfo, peer: Peer | null, spec: PortSpec): string | null {
  if (peer?.kind === 'ipBlock') return null; // a name resolves on pods only
  const peerKey = peer ? podPeerKey(pol.namespace, peer) : 'all-pods';
  const key = `${peerKey}|port=${spec.port}/${spec.protocol}`;
  return refs.add('P', key, 'hash:ip,port', `named port ${key}`, {
    pods: (idx) => (peer ? idx.peerPods(pol.namespace, peer) : idx.allPods),
    entries: (pods) =>
      (pods ?? []).flatMap((p) => {
        const r = resolvePort(spec, p);
        return r && r.from !== undefined ? p.ips.map((ip) => `${ip},${spec.protocol.toLowerCase()}:${r.from}`) : [];
      }),
  });
}

function ruleLines(refs: SetRefs, pod: PodInfo, pol: PolicyInfo, dir: Direction, rule: Rule, idx: number): string[] {
  const comment = `-m comment --comment "${`${podKey(pol)} ${dir}[${idx}]`.slice(0, 240)}"`;
  const side = dir === 'ingress' ? 'src' : 'dst';
  const peers: (Peer | null)[] = rule.peers.length === 0 ? [null] : rule.peers;
  const specs: (PortSpec | null)[] = rule.ports.length === 0 ? [null] : rule.ports;
  const out: string[] = [];
  for (const peer of peers) {
    const peerMatch = peer ? ` -m set --match-set ${peerSet(refs, pol, peer)} ${side}` : '';
    const ranges: PortRange[] = [];
    for (const spec of specs) {
      if (!spec) {
        out.push(`${comment}${peerMatch} -j RETURN`);
        continue;
      }
      if (dir === 'egress' && typeof spec.port === 'string') {
        const set = namedPortSet(refs, pol, peer, spec);
        if (set) out.push(`${comment} -p ${spec.protocol.toLowerCase()}${peerMatch} -m set --match-set ${set} dst,dst -j RETURN`);
        continue;
      }
      const r = resolvePort(spec, dir === 'ingress' ? pod : undefined);
      if (r) ranges.push(r);
    }
    for (const ports of portMatches(ranges)) out.push(`${comment} ${ports}${peerMatch} -j RETURN`);
  }
  return out;
}

/** Whether an ingress chain of `pols` depends on the pod's own named ports (resolved on it). */
function usesNamedIngressPorts(pols: readonly PolicyInfo[]): boolean {
  return pols.some((pol) => pol.ingress.some((rule) => rule.ports.some((spec) => typeof spec.port === 'string')));
}

const polsKeys = new WeakMap<readonly PolicyInfo[], { key: string; ports: boolean }>();

/**
 * What a pod chain is named after: its direction, the policies isolating the pod (by namespace/name)
 * and, for ingress chains using named ports, the pod's ports. A changed policy keeps the names of
 * its chains, so a one-policy change rewrites those chains in place and nothing that points to them.
 */
function pieceKey(pols: readonly PolicyInfo[], pod: PodInfo, dir: Direction): string {
  let k = polsKeys.get(pols);
  if (k === undefined) {
    k = { key: pols.map(podKey).join(','), ports: usesNamedIngressPorts(pols) };
    polsKeys.set(pols, k);
  }
  return dir === 'ingress' && k.ports ? `${dir}\n${k.key}\n${portsKey(pod)}` : `${dir}\n${k.key}`;
}

/** A pod's chain for one direction, built from the policies that isolate it that way. */
function buildPiece(key: string, pols: PolicyInfo[], pod: PodInfo, dir: Direction, opts: RenderOptions): ChainPiece {
  const refs = new SetRefs();
  const body: string[] = [];
  for (const pol of pols) {
    const rules = dir === 'ingress' ? pol.ingress : pol.egress;
    rules.forEach((rule, i) => body.push(...ruleLines(refs, pod, pol, dir, rule, i)));
  }
  const isolators = pols.map(podKey).join(',');
  if (opts.dropLog) {
    body.push(`-m limit --limit ${opts.dropLog.ratePerSec}/sec --limit-burst ${opts.dropLog.ratePerSec} -j LOG --log-prefix "${dropLogPrefix(dir, opts.dropLog.tag)}"`);
  }
  body.push(`-m comment --comment "${`isolated by ${isolators}`.slice(0, 240)}" -j DROP`);
  const name = podChainName(dir, key);
  return { pols, name, lines: body.map((l) => `-A ${name} ${l}`), sets: refs.list };
}

const sameRefs = <T>(a: readonly T[], b: readonly T[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function renderMain(opts: RenderOptions): string[] {
  const lines = [`-A ${MAIN_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`];
  if (opts.podCIDR) {
    const gate = '-m comment --comment "pod not yet programmed by netpol"';
    lines.push(`-A ${MAIN_CHAIN} -s ${opts.podCIDR} -m set ! --match-set ${KNOWN_SET} src ${gate} -j DROP`);
    lines.push(`-A ${MAIN_CHAIN} -d ${opts.podCIDR} -m set ! --match-set ${KNOWN_SET} dst ${gate} -j DROP`);
  }
  lines.push(`-A ${MAIN_CHAIN} -j ${EGRESS_CHAIN}`, `-A ${MAIN_CHAIN} -j ${INGRESS_CHAIN}`);
  return lines;
}

/**
 * A renderer that keeps, across renders, each pod chain keyed by what it depends on (direction,
 * namespace, labels, and for ingress the pod's named ports) together with the policy objects it
 * was built from: a chain is rebuilt only when one of those policies is a different object. Peer
 * sets are recomputed every render from the label-class index (cheap) and diffed by restore.ts.
 * Output is identical to a fresh render of the same snapshot.
 */
export class NetpolRenderer {
  private pieces = new Map<string, ChainPiece>();
  private setCache = new Map<string, { pods: readonly PodInfo[] | null; set: IpSet }>();
  private readonly dispatchers = { ingress: new Dispatcher('ingress'), egress: new Dispatcher('egress') };
  private readonly main: string[];
  private readonly cidr: Cidr | null;
  private known = new Map<string, boolean>();
  private lastIndex: RenderIndex | null = null;
  private lastKnown: { unsorted: string[]; sorted: string[] } = { unsorted: [], sorted: [] };

  constructor(readonly opts: RenderOptions = {}) {
    this.main = renderMain(opts);
    this.cidr = opts.podCIDR ? parseCidr(opts.podCIDR) : null;
  }

  render(snap: Snapshot): Rendered {
    const idx = new RenderIndex(snap, this.lastIndex);
    this.lastIndex = idx;
    const used = new Map<string, ChainPiece>();
    const chains = new Map<string, string[]>();
    const pods = new Map<string, PodProgram>();
    const dispatch: Record<Direction, DispatchEntry[]> = { ingress: [], egress: [] };
    const known: string[] = [];
    const inCidr = new Map<string, boolean>();
    for (const pod of idx.localPods) {
      const prog: PodProgram = { pod: podKeyOf(pod), ips: pod.ips };
      for (const dir of ['ingress', 'egress'] as const) {
        const piece = this.piece(idx, used, pod, dir);
        if (!piece) continue;
        chains.set(piece.name, piece.lines);
        if (dir === 'ingress') prog.ingressChain = piece.name;
        else prog.egressChain = piece.name;
        for (const ip of pod.ips) dispatch[dir].push({ ip, chain: piece.name, pod: prog.pod });
      }
      pods.set(prog.pod, prog);
      for (const ip of pod.ips) if (this.inPodCidr(ip, inCidr)) known.push(ip);
    }
    this.pieces = used;
    this.known = inCidr;
    const sets = this.sets(idx, used);
    this.dispatchers.ingress.render(dispatch.ingress, chains);
    this.dispatchers.egress.render(dispatch.egress, chains);
    chains.set(MAIN_CHAIN, this.main);
    const sortedChains = new Map([...chains.entries()].sort((a, b) => byText(a[0], b[0])));
    const sortedSets = new Map([...sets.entries()].sort((a, b) => byText(a[0], b[0])));
    return { sets: sortedSets, chains: sortedChains, known: this.sortedKnown(known), pods };
  }

  /** The KNOWN addresses sorted, re-sorted only when they changed. */
  private sortedKnown(known: string[]): string[] {
    const last = this.lastKnown;
    if (!sameRefs(last.unsorted, known)) this.lastKnown = { unsorted: known, sorted: [...new Set(known)].sort() };
    return this.lastKnown.sorted;
  }

  private inPodCidr(ip: string, seen: Map<string, boolean>): boolean {
    let v = this.known.get(ip) ?? seen.get(ip);
    if (v === undefined) v = !this.cidr || cidrContains(this.cidr, ip);
    seen.set(ip, v);
    return v;
  }

  /** Every set the chains refer to; a set keeps its entries array while its pods are the same objects. */
  private sets(idx: RenderIndex, pieces: Map<string, ChainPiece>): Map<string, IpSet> {
    const sets = new Map<string, IpSet>();
    const cache = new Map<string, { pods: readonly PodInfo[] | null; set: IpSet }>();
    for (const piece of pieces.values()) {
      for (const req of piece.sets) {
        if (sets.has(req.name)) continue;
        const pods = req.pods(idx);
        const prev = this.setCache.get(req.name);
        const hit = prev && (pods === null ? prev.pods === null : prev.pods !== null && sameRefs(prev.pods, pods));
        const entry = hit ? prev : { pods, set: { name: req.name, type: req.type, comment: req.comment, entries: [...new Set(req.entries(pods))].sort() } };
        cache.set(req.name, entry);
        sets.set(req.name, entry.set);
      }
    }
    this.setCache = cache;
    return sets;
  }

  private piece(idx: RenderIndex, used: Map<string, ChainPiece>, pod: PodInfo, dir: Direction): ChainPiece | null {
    const pols = idx.isolating(pod, dir);
    if (pols.length === 0) return null;
    const key = pieceKey(pols, pod, dir);
    let piece = used.get(key);
    if (piece) return piece;
    piece = this.pieces.get(key);
    if (!piece || !sameRefs(piece.pols, pols)) piece = buildPiece(key, pols, pod, dir, this.opts);
    used.set(key, piece);
    return piece;
  }
}

/** A one-off render of a snapshot (tests, explain, the lab). */
export function renderNetpol(snap: Snapshot, opts: RenderOptions = {}): Rendered {
  return new NetpolRenderer(opts).render(snap);
}

/** The whole state as text (golden tests, `explain --dump`): sets first, then one restore. */
export function renderText(r: Rendered): string {
  const out: string[] = [];
  for (const s of r.sets.values()) {
    out.push(`# ${s.comment}`, `create ${s.name} ${s.type} family inet`);
    for (const e of s.entries) out.push(`add ${s.name} ${e}`);
  }
  out.push(`# known: ${r.known.join(' ')}`, '*filter');
  for (const name of r.chains.keys()) out.push(`:${name} - [0:0]`);
  for (const lines of r.chains.values()) out.push(...lines);
  out.push('COMMIT');
  return `${out.join('\n')}\n`;
}
