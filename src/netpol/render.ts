import { blockOf, cidrContains, parseCidr } from './ip.js';
import type { Direction, Peer, PodInfo, PolicyInfo, PortSpec, Rule, Snapshot } from './model.js';
import { podKey } from './model.js';
import { blockChainName, DROP_LOG_PREFIX, EGRESS_CHAIN, INGRESS_CHAIN, KNOWN_SET, MAIN_CHAIN, podChainName, setName } from './names.js';
import { podPeerKey, resolvePort, Selection, type PortRange } from './select.js';

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

/** Above this many dispatch entries, dispatch goes through one chain per /28 block. */
const FLAT_DISPATCH_MAX = 16;
const BLOCK_BITS = 28;

export function dropLogPrefix(dir: Direction, tag: string): string {
  return `${DROP_LOG_PREFIX}-${dir === 'ingress' ? 'I' : 'E'}-${tag} `;
}

class SetBook {
  readonly sets = new Map<string, IpSet>();
  add(kind: 'S' | 'N' | 'P', key: string, type: SetType, comment: string, entries: () => string[]): string {
    const name = setName(kind, key);
    if (!this.sets.has(name)) this.sets.set(name, { name, type, comment, entries: [...new Set(entries())].sort() });
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

function portArgs(r: PortRange): string {
  const p = r.protocol.toLowerCase();
  if (r.from === undefined) return `-p ${p}`;
  return `-p ${p} -m ${p} --dport ${r.to !== undefined && r.to !== r.from ? `${r.from}:${r.to}` : r.from}`;
}

function peerSet(sel: Selection, book: SetBook, pol: PolicyInfo, peer: Peer): string {
  if (peer.kind === 'ipBlock') {
    const key = `${peer.cidr} except ${[...peer.except].sort().join(',')}`;
    return book.add('N', key, 'hash:net', `ipBlock ${key}`, () => netEntries(peer.cidr, peer.except));
  }
  const key = podPeerKey(pol.namespace, peer);
  return book.add('S', key, 'hash:ip', `pods ${key}`, () => sel.peerPods(pol.namespace, peer).flatMap((p) => p.ips));
}

/** Egress to a named port: the set of (peer pod IP, protocol:resolved port) for the peer's pods. */
function namedPortSet(sel: Selection, book: SetBook, pol: PolicyInfo, peer: Peer | null, spec: PortSpec): string | null {
  if (peer?.kind === 'ipBlock') return null; // a name resolves on pods only
  const peerKey = peer ? podPeerKey(pol.namespace, peer) : 'all-pods';
  const key = `${peerKey}|port=${spec.port}/${spec.protocol}`;
  const pods = peer ? sel.peerPods(pol.namespace, peer) : [...sel.podsByNs.values()].flat();
  return book.add('P', key, 'hash:ip,port', `named port ${key}`, () =>
    pods.flatMap((p) => {
      const r = resolvePort(spec, p);
      return r && r.from !== undefined ? p.ips.map((ip) => `${ip},${spec.protocol.toLowerCase()}:${r.from}`) : [];
    }),
  );
}

function ruleLines(sel: Selection, book: SetBook, pod: PodInfo, pol: PolicyInfo, dir: Direction, rule: Rule, idx: number): string[] {
  const comment = `-m comment --comment "${`${podKey(pol)} ${dir}[${idx}]`.slice(0, 240)}"`;
  const side = dir === 'ingress' ? 'src' : 'dst';
  const peers: (Peer | null)[] = rule.peers.length === 0 ? [null] : rule.peers;
  const specs: (PortSpec | null)[] = rule.ports.length === 0 ? [null] : rule.ports;
  const out: string[] = [];
  for (const peer of peers) {
    const peerMatch = peer ? ` -m set --match-set ${peerSet(sel, book, pol, peer)} ${side}` : '';
    for (const spec of specs) {
      if (!spec) {
        out.push(`${comment}${peerMatch} -j RETURN`);
        continue;
      }
      if (dir === 'egress' && typeof spec.port === 'string') {
        const set = namedPortSet(sel, book, pol, peer, spec);
        if (set) out.push(`${comment} -p ${spec.protocol.toLowerCase()}${peerMatch} -m set --match-set ${set} dst,dst -j RETURN`);
        continue;
      }
      const r = resolvePort(spec, dir === 'ingress' ? pod : undefined);
      if (r) out.push(`${comment} ${portArgs(r)}${peerMatch} -j RETURN`);
    }
  }
  return out;
}

/** The body of a pod's chain for one direction, or null when no policy isolates it that way. */
function podChainBody(sel: Selection, book: SetBook, pod: PodInfo, dir: Direction, opts: RenderOptions): string[] | null {
  const pols = sel.isolating(pod, dir);
  if (pols.length === 0) return null;
  const body: string[] = [];
  for (const pol of pols) {
    const rules = dir === 'ingress' ? pol.ingress : pol.egress;
    rules.forEach((rule, i) => body.push(...ruleLines(sel, book, pod, pol, dir, rule, i)));
  }
  const isolators = pols.map(podKey).join(',');
  if (opts.dropLog) {
    body.push(`-m limit --limit ${opts.dropLog.ratePerSec}/sec --limit-burst ${opts.dropLog.ratePerSec} -j LOG --log-prefix "${dropLogPrefix(dir, opts.dropLog.tag)}"`);
  }
  body.push(`-m comment --comment "${`isolated by ${isolators}`.slice(0, 240)}" -j DROP`);
  return body;
}

function renderDispatch(dir: Direction, entries: { ip: string; chain: string; pod: string }[], chains: Map<string, string[]>): void {
  const root = dir === 'ingress' ? INGRESS_CHAIN : EGRESS_CHAIN;
  const flag = dir === 'ingress' ? '-d' : '-s';
  const line = (chain: string, e: { ip: string; chain: string; pod: string }) => `-A ${chain} ${flag} ${e.ip}/32 -m comment --comment "${e.pod}" -g ${e.chain}`;
  const sorted = [...entries].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  if (sorted.length <= FLAT_DISPATCH_MAX) {
    chains.set(root, sorted.map((e) => line(root, e)));
    return;
  }
  const blocks = new Map<string, typeof sorted>();
  for (const e of sorted) {
    const b = blockOf(e.ip, BLOCK_BITS);
    blocks.set(b, [...(blocks.get(b) ?? []), e]);
  }
  const rootLines: string[] = [];
  for (const [block, list] of [...blocks.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (list.length === 1) {
      rootLines.push(line(root, list[0]));
      continue;
    }
    const bc = blockChainName(dir, block);
    rootLines.push(`-A ${root} ${flag} ${block} -g ${bc}`);
    chains.set(bc, list.map((e) => line(bc, e)));
  }
  chains.set(root, rootLines);
}

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

export function renderNetpol(snap: Snapshot, opts: RenderOptions = {}): Rendered {
  const sel = new Selection(snap);
  const book = new SetBook();
  const chains = new Map<string, string[]>();
  const pods = new Map<string, PodProgram>();
  const dispatch: Record<Direction, { ip: string; chain: string; pod: string }[]> = { ingress: [], egress: [] };
  const cidr = opts.podCIDR ? parseCidr(opts.podCIDR) : null;
  const known: string[] = [];
  for (const pod of sel.localPods()) {
    const prog: PodProgram = { pod: podKey(pod), ips: pod.ips };
    for (const dir of ['ingress', 'egress'] as const) {
      const body = podChainBody(sel, book, pod, dir, opts);
      if (!body) continue;
      const name = podChainName(dir, body.join('\n'));
      if (!chains.has(name)) chains.set(name, body.map((l) => `-A ${name} ${l}`));
      if (dir === 'ingress') prog.ingressChain = name;
      else prog.egressChain = name;
      for (const ip of pod.ips) dispatch[dir].push({ ip, chain: name, pod: prog.pod });
    }
    pods.set(prog.pod, prog);
    for (const ip of pod.ips) if (!cidr || cidrContains(cidr, ip)) known.push(ip);
  }
  renderDispatch('ingress', dispatch.ingress, chains);
  renderDispatch('egress', dispatch.egress, chains);
  chains.set(MAIN_CHAIN, renderMain(opts));
  const sortedChains = new Map([...chains.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  const sortedSets = new Map([...book.sets.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  return { sets: sortedSets, chains: sortedChains, known: [...new Set(known)].sort(), pods };
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
