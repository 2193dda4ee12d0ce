import { quoteArg, type IptablesBackend } from '../host/iptables.js';
import {
  EXTERNAL_SERVICES,
  FIREWALL,
  FORWARD,
  MARK_MASQ,
  MASQ_MARK,
  NODEPORTS,
  POSTROUTING,
  SERVICES,
  affinityName,
  extChain,
  svcChain,
  svlChain,
} from './chains.js';
import { cidrContains, usableEndpoints, type EndpointInfo, type ProxySnapshot, type ServicePortInfo } from './model.js';

/** Node-level settings of a render. */
export interface RenderContext {
  nodeName: string;
  /** Pod range: traffic from outside it to a cluster IP is masqueraded. */
  clusterCIDR?: string;
  /** Service range: an unallocated address in it is dropped. */
  serviceCIDR?: string;
  /** When set, NodePorts answer only on these addresses (and 127.0.0.1); otherwise on every local address. */
  nodePortAddresses?: string[];
  /**
   * Large-cluster mode (see isLargeCluster): per-endpoint rules (hairpin, affinity, DNAT) carry no
   * comment. Their chain is still named by the commented SERVICES rule that jumps to it.
   */
  largeCluster?: boolean;
}

/** Above this many endpoints in all, the render drops per-endpoint comments (kube-proxy's threshold). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

/**
 * kube-proxy's large-cluster mode: with more than 1,000 endpoints, rules of endpoints go without
 * comments. At 10,000 Services x 10 they are 100,000 of the 110,000 rules; a comment is a match of
 * its own (a 256-byte blob and a kernel lookup per rule on legacy, rule user data on nft), and
 * without them a legacy restore is ~25% cheaper and the document 30% smaller.
 */
export function isLargeCluster(totalEndpoints: number): boolean {
  return totalEndpoints > LARGE_CLUSTER_ENDPOINTS;
}

/**
 * One chain's rules as restore text: its `-A` lines joined by newlines, and how many there are.
 * Kept as one flat string per chain (not a string per line): comparing two renders of a chain is one
 * string compare, a restore document is a concatenation, and the heap holds ~10k strings at 10k
 * Services instead of ~120k rope strings (less GC work on every sync).
 */
export interface ChainRules {
  text: string;
  count: number;
}

/** Chains of one table, each with its rules. */
export type ChainMap = Map<string, ChainRules>;

export interface Ruleset {
  nat: ChainMap;
  filter: ChainMap;
  /**
   * Every service port's rules in restore order (descending `anchor`): the nat SERVICES and
   * NODEPORTS chains hold their lines in this order, and a restore places each port's lines right
   * after its anchor chain (see renderRestoreChanges).
   */
  ports: ServiceRules[];
  /** The SERVICES lines before every port's lines (the shared masquerade mark). */
  servicesHead: string[];
  /** The SERVICES lines after every port's lines (the jump to NODEPORTS). */
  servicesTail: string[];
}

/** What one service port contributes: its own nat chains and its lines in the shared chains. */
export interface ServiceRules {
  /** Own nat chains (SVL, SVC, EXT), in descending name order. */
  chains: [string, ChainRules][];
  /**
   * The chain after which a restore writes this port's SERVICES/NODEPORTS lines: the last of its own
   * chains in restore order (EXT, else SVC, else SVL; SVC's name when it has none). Also its sort key.
   */
  anchor: string;
  natServices: string[];
  natNodePorts: string[];
  filterServices: string[];
  filterExternal: string[];
  /** Rule lines (own chains + fragments), for the rules-count metric. */
  ruleCount: number;
}

const q = quoteArg;

/** Is this endpoint on our node? Unknown placement counts as local for hairpin, not for policy. */
function isLocal(ep: EndpointInfo, node: string): boolean {
  return ep.nodeName === node;
}

function protoArgs(sp: ServicePortInfo, port: number): string {
  const p = sp.protocol.toLowerCase();
  return `-p ${p} -m ${p} --dport ${port}`;
}

const probabilities: string[] = [];

/** `1/left` formatted as kube-proxy does (%0.10f), memoized. */
function probability(left: number): string {
  return (probabilities[left] ??= (1 / left).toFixed(10));
}

/**
 * Comment text from Kubernetes names, IPs and ports, which never hold `"` or `\\`: quoted directly
 * (quoteArg is the general path for anything else).
 */
function cq(text: string): string {
  return `"${text}"`;
}

/**
 * Builds one chain's restore text from pieces: each line is a list of pieces and the whole chain is
 * joined once. Lines of a 10k-Service render are ~120k strings of ~15 parts each; built as template
 * strings they made ~70 MB of short-lived rope strings per render (most of the render's GC time).
 */
class ChainText {
  /** Pieces of the text so far; a line is `begin()` then its pieces pushed here. */
  readonly parts: string[] = [];
  private count = 0;

  /** Starts a line (its pieces follow in `parts.push(...)`, which allocates no argument array). */
  begin(): string[] {
    if (this.count++ > 0) this.parts.push('\n');
    return this.parts;
  }

  line(text: string): void {
    this.begin().push(text);
  }

  done(): ChainRules {
    return { text: this.parts.join(''), count: this.count };
  }
}

/** The DNAT block of a policy chain: hairpin marks, affinity checks, then random selection 1/n, 1/(n-1), ... */
function renderEndpointRules(out: ChainText, chain: string, sp: ServicePortInfo, eps: EndpointInfo[], ctx: RenderContext): void {
  const p = sp.protocol.toLowerCase();
  // Each line is `head`, its comment text (none in large-cluster mode), `tail`, then its matches.
  const large = !!ctx.largeCluster;
  const head = large ? `-A ${chain}` : `-A ${chain} -m comment --comment "${sp.namespace}/${sp.name}:${sp.portName}`;
  const tail = large ? '' : '"';
  const dnat = ` -p ${p} -j DNAT --to-destination `;
  for (const ep of eps) {
    if (ep.nodeName !== undefined && !isLocal(ep, ctx.nodeName)) continue;
    out.begin().push(head, large ? '' : ' hairpin ', large ? '' : ep.ip, tail, ' -s ', ep.ip, '/32 -j ', MARK_MASQ);
  }
  const affinity = sp.affinitySeconds > 0 ? sp.affinitySeconds : 0;
  if (!affinity) {
    // The common case, in as few pieces as possible (100,000 lines at 10k Services).
    for (let i = 0; i < eps.length; i++) {
      const ip = eps[i].ip;
      const port = portSuffix(eps[i].port);
      const mid = dnatMiddle(p, eps.length - i);
      if (large) out.begin().push(head, mid, ip, port);
      else out.begin().push(head, ' -> ', ip, port, '"', mid, ip, port);
    }
    return;
  }
  const dests = eps.map((ep) => `${ep.ip}:${ep.port}`);
  const arrow = large ? '' : ' -> ';
  const update = ` --update --seconds ${affinity} --reap --mask 255.255.255.255 --rsource`;
  for (const dest of dests) out.begin().push(head, arrow, large ? '' : dest, tail, ' -m recent --name ', affinityName(sp.key, dest), update, dnat, dest);
  for (let i = 0; i < dests.length; i++) {
    const dest = dests[i];
    const left = dests.length - i;
    const stat = left > 1 ? ' -m statistic --mode random --probability ' : '';
    const set = ` -m recent --name ${affinityName(sp.key, dest)} --set --mask 255.255.255.255 --rsource`;
    out.begin().push(head, arrow, large ? '' : dest, tail, stat, left > 1 ? probability(left) : '', set, dnat, dest);
  }
}

const portSuffixes: string[] = [];

/** `:PORT`, memoized (ports are small integers). */
function portSuffix(port: number): string {
  return (portSuffixes[port] ??= `:${port}`);
}

const dnatMiddles = new Map<string, string>();

/** What a DNAT line without affinity holds between its comment and its destination, memoized per protocol and `left`. */
function dnatMiddle(proto: string, left: number): string {
  const key = `${proto}/${left}`;
  let m = dnatMiddles.get(key);
  if (m === undefined) {
    m = `${left > 1 ? ` -m statistic --mode random --probability ${probability(left)}` : ''} -p ${proto} -j DNAT --to-destination `;
    if (dnatMiddles.size > 10_000) dnatMiddles.clear();
    dnatMiddles.set(key, m);
  }
  return m;
}

/** What the external-entry renderer needs to know about one service port. */
interface PortView {
  cluster: number;
  external: number;
  svc: string;
  ext: string;
  proto: string;
  reject: string;
  cmt: (what: string) => string;
}

/** Entry rules for external destinations (externalIPs, LB ingress IPs, node ports) and their REJECT/DROP. */
function renderExternalEntries(sp: ServicePortInfo, res: ServiceRules, v: PortView): void {
  const extTarget = (chainName: string, match: string, what: string): string[] => {
    if (sp.externalPolicyLocal) return [`-A ${chainName} ${v.cmt(what)} ${match} -j ${v.ext}`];
    return [`-A ${chainName} ${v.cmt(what)} ${match} -j ${MARK_MASQ}`, `-A ${chainName} ${v.cmt(what)} ${match} -j ${v.svc}`];
  };
  const blocked = (match: string): string | undefined => {
    if (v.cluster === 0) return `-A ${EXTERNAL_SERVICES} ${v.cmt('has no endpoints')} ${match} -j ${v.reject}`;
    if (v.external === 0) return `-A ${EXTERNAL_SERVICES} ${v.cmt('has no local endpoints')} ${match} -j DROP`;
    return undefined;
  };
  for (const ip of sp.externalIPs) {
    const match = `-d ${ip}/32 ${v.proto}`;
    if (v.cluster > 0) res.natServices.push(...extTarget(SERVICES, match, 'external IP'));
    const b = blocked(match);
    if (b) res.filterExternal.push(b);
  }
  for (const ip of sp.loadBalancerIPs) {
    const match = `-d ${ip}/32 ${v.proto}`;
    if (v.cluster > 0) {
      if (sp.loadBalancerSourceRanges.length === 0) res.natServices.push(...extTarget(SERVICES, match, 'loadbalancer IP'));
      for (const range of sp.loadBalancerSourceRanges) res.natServices.push(...extTarget(SERVICES, `${match} -s ${range}`, 'loadbalancer IP'));
    }
    const b = blocked(match);
    if (b) res.filterExternal.push(b);
    else if (sp.loadBalancerSourceRanges.length > 0) res.filterExternal.push(`-A ${EXTERNAL_SERVICES} ${v.cmt('not in loadBalancerSourceRanges')} ${match} -j DROP`);
  }
  if (sp.nodePort !== undefined) {
    const match = protoArgs(sp, sp.nodePort);
    if (v.cluster > 0) res.natNodePorts.push(...extTarget(NODEPORTS, match, 'node port'));
    const b = blocked(`-m addrtype --dst-type LOCAL ${match}`);
    if (b) res.filterExternal.push(b);
  }
}

/**
 * Whether one rule at the top of SERVICES marks cluster IP traffic from outside the pod network for
 * masquerade (`! -s clusterCIDR -d serviceCIDR`), instead of one rule per service port (10,000 fewer
 * rules at 10,000 Services: less to restore, and less for nft to validate on every commit). Traffic
 * it marks that no Service takes (an unallocated IP or port) is dropped in filter SERVICES, which the
 * built-in chains reach before SKIFF-FORWARD accepts marked packets. A cluster IP outside the
 * service CIDR keeps its own rule.
 */
function sharedMasquerade(ctx: RenderContext): boolean {
  return !!ctx.clusterCIDR && !!ctx.serviceCIDR;
}

/** A chain's lines as ChainRules (joined once into one flat string). */
export function chainRules(lines: string[]): ChainRules {
  return { text: lines.join('\n'), count: lines.length };
}

/** Pure: the rules one service port needs, given its endpoints. */
export function renderServicePort(sp: ServicePortInfo, allEndpoints: EndpointInfo[], ctx: RenderContext): ServiceRules {
  const res: ServiceRules = { chains: [], anchor: '', natServices: [], natNodePorts: [], filterServices: [], filterExternal: [], ruleCount: 0 };
  const svcName = `${sp.namespace}/${sp.name}:${sp.portName}`;
  const cluster = usableEndpoints(allEndpoints);
  const local = usableEndpoints(allEndpoints.filter((e) => isLocal(e, ctx.nodeName)));
  const internal = sp.internalPolicyLocal ? local : cluster;
  const external = sp.externalPolicyLocal ? local : cluster;
  const svc = svcChain(sp.key);
  const svl = svlChain(sp.key);
  const ext = extChain(sp.key);
  const internalChain = sp.internalPolicyLocal ? svl : svc;
  const hasExternal = sp.nodePort !== undefined || sp.externalIPs.length > 0 || sp.loadBalancerIPs.length > 0;
  const proto = protoArgs(sp, sp.port);
  const reject = sp.protocol === 'TCP' ? 'REJECT --reject-with tcp-reset' : 'REJECT --reject-with icmp-port-unreachable';
  const cmt = (what: string) => `-m comment --comment ${cq(`${svcName} ${what}`)}`;

  // Which policy chains exist: SVC when anything routes to all endpoints, SVL for local policies.
  const useSvc = cluster.length > 0 && (!sp.internalPolicyLocal || hasExternal);
  const useSvl = (sp.internalPolicyLocal && local.length > 0) || (hasExternal && sp.externalPolicyLocal && local.length > 0);
  const useExt = hasExternal && sp.externalPolicyLocal && cluster.length > 0;

  const svcLines = new ChainText();
  const svlLines = new ChainText();
  if (sp.clusterIP && internal.length > 0 && ctx.clusterCIDR && !(sharedMasquerade(ctx) && cidrContains(ctx.serviceCIDR!, sp.clusterIP))) {
    const masq = `-A ${internalChain} ${cmt('cluster IP')} ! -s ${ctx.clusterCIDR} -d ${sp.clusterIP}/32 ${proto} -j ${MARK_MASQ}`;
    (sp.internalPolicyLocal ? svlLines : svcLines).line(masq);
  }
  if (useSvc) renderEndpointRules(svcLines, svc, sp, cluster, ctx);
  if (useSvl) renderEndpointRules(svlLines, svl, sp, local, ctx);
  // Descending names (SVL > SVC > EXT): the order a restore writes them in.
  if (useSvl) res.chains.push([svl, svlLines.done()]);
  if (useSvc) res.chains.push([svc, svcLines.done()]);
  if (useExt) {
    const lines: string[] = [];
    if (ctx.clusterCIDR) lines.push(`-A ${ext} ${cmt('pod traffic to external destinations')} -s ${ctx.clusterCIDR} -j ${svc}`);
    lines.push(`-A ${ext} ${cmt('masquerade LOCAL traffic')} -m addrtype --src-type LOCAL -j ${MARK_MASQ}`);
    lines.push(`-A ${ext} ${cmt('route LOCAL traffic to cluster endpoints')} -m addrtype --src-type LOCAL -j ${svc}`);
    if (local.length > 0) lines.push(`-A ${ext} ${cmt('external traffic to local endpoints')} -j ${svl}`);
    res.chains.push([ext, chainRules(lines)]);
  }
  res.anchor = res.chains.length > 0 ? res.chains[res.chains.length - 1][0] : svc;

  // Cluster IP: DNAT when someone takes internal traffic, otherwise REJECT at once.
  if (sp.clusterIP) {
    if (internal.length > 0) res.natServices.push(`-A ${SERVICES} ${cmt('cluster IP')} -d ${sp.clusterIP}/32 ${proto} -j ${internalChain}`);
    else res.filterServices.push(`-A ${SERVICES} ${cmt(cluster.length > 0 ? 'has no local endpoints' : 'has no endpoints')} -d ${sp.clusterIP}/32 ${proto} -j ${reject}`);
  }

  renderExternalEntries(sp, res, { cluster: cluster.length, external: external.length, svc, ext, proto, reject, cmt });
  res.ruleCount =
    res.chains.reduce((n, [, c]) => n + c.count, 0) + res.natServices.length + res.natNodePorts.length + res.filterServices.length + res.filterExternal.length;
  return res;
}

/** The chains every ruleset has, built from the per-service fragments (in restore order). */
export interface SharedChains {
  nat: [string, ChainRules][];
  filter: [string, ChainRules][];
  /** The SERVICES lines before and after every port's lines. */
  servicesHead: string[];
  servicesTail: string[];
}

/** Restore order of service ports: descending anchor (see ServiceRules.anchor). */
export function inRestoreOrder(all: Iterable<ServiceRules>): ServiceRules[] {
  const byAnchor = new Map<string, ServiceRules>();
  for (const r of all) byAnchor.set(r.anchor, r);
  return sortedDescending([...byAnchor.keys()]).map((a) => byAnchor.get(a)!);
}

/** Sorts names in descending order, in place (the built-in sort: no JS comparator per compare). */
function sortedDescending(names: string[]): string[] {
  return names.sort().reverse();
}

/** Pure: the fixed nat and filter chains around the per-service fragments, given in restore order. */
export function renderSharedChains(ordered: ServiceRules[], ctx: RenderContext): SharedChains {
  const servicesHead: string[] = [];
  if (sharedMasquerade(ctx)) {
    servicesHead.push(`-A ${SERVICES} -m comment --comment ${q('skiff cluster IP traffic from outside the pod network')} ! -s ${ctx.clusterCIDR} -d ${ctx.serviceCIDR} -j ${MARK_MASQ}`);
  }
  const servicesTail: string[] = [];
  if (ctx.nodePortAddresses && ctx.nodePortAddresses.length > 0) {
    for (const ip of [...new Set([...ctx.nodePortAddresses, '127.0.0.1'])].sort()) {
      servicesTail.push(`-A ${SERVICES} -m comment --comment ${q(`skiff service nodeports on ${ip}`)} -d ${ip}/32 -j ${NODEPORTS}`);
    }
  } else {
    servicesTail.push(`-A ${SERVICES} -m comment --comment ${q('skiff service nodeports; must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j ${NODEPORTS}`);
  }
  const filterServices = ordered.flatMap((r) => r.filterServices);
  if (ctx.serviceCIDR) {
    filterServices.push(`-A ${SERVICES} -m comment --comment ${q('unallocated service IP')} -d ${ctx.serviceCIDR} -j DROP`);
  }
  return {
    nat: [
      [SERVICES, chainRules([...servicesHead, ...ordered.flatMap((r) => r.natServices), ...servicesTail])],
      [NODEPORTS, chainRules(ordered.flatMap((r) => r.natNodePorts))],
      [
        POSTROUTING,
        chainRules([
          `-A ${POSTROUTING} -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
          `-A ${POSTROUTING} -j MARK --xor-mark ${MASQ_MARK}`,
          `-A ${POSTROUTING} -m comment --comment ${q('skiff service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
        ]),
      ],
      [MARK_MASQ, chainRules([`-A ${MARK_MASQ} -j MARK --or-mark ${MASQ_MARK}`])],
    ],
    filter: [
      [SERVICES, chainRules(filterServices)],
      [EXTERNAL_SERVICES, chainRules(ordered.flatMap((r) => r.filterExternal))],
      [
        FORWARD,
        chainRules([
          `-A ${FORWARD} -m conntrack --ctstate INVALID -j DROP`,
          `-A ${FORWARD} -m comment --comment ${q('skiff forwarding rules')} -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`,
          `-A ${FORWARD} -m comment --comment ${q('skiff forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
        ]),
      ],
      [
        FIREWALL,
        chainRules([`-A ${FIREWALL} -m comment --comment ${q('block incoming localnet connections')} -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`]),
      ],
    ],
    servicesHead,
    servicesTail,
  };
}

/** The chains every ruleset has (all others belong to one service port). */
const SHARED_CHAINS = new Set([SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ, EXTERNAL_SERVICES, FORWARD, FIREWALL]);

/** Pure: the whole ruleset from per-service rules (any order: they are put in restore order). */
export function assembleRuleset(perService: Iterable<ServiceRules>, ctx: RenderContext): Ruleset {
  const ports = inRestoreOrder(perService);
  const shared = renderSharedChains(ports, ctx);
  const nat: ChainMap = new Map(shared.nat);
  for (const r of ports) for (const [name, rules] of r.chains) nat.set(name, rules);
  return { nat, filter: new Map(shared.filter), ports, servicesHead: shared.servicesHead, servicesTail: shared.servicesTail };
}

/** Whether two fragments of one service port differ in what they put into the shared chains. */
export function sharedFragmentsDiffer(a: ServiceRules | undefined, b: ServiceRules | undefined): boolean {
  if (!a || !b) return a !== b;
  return (
    a.anchor !== b.anchor ||
    !sameLines(a.natServices, b.natServices) ||
    !sameLines(a.natNodePorts, b.natNodePorts) ||
    !sameLines(a.filterServices, b.filterServices) ||
    !sameLines(a.filterExternal, b.filterExternal)
  );
}

/** Pure: the whole ruleset of a snapshot. */
export function renderRuleset(snap: ProxySnapshot, ctx: RenderContext): Ruleset {
  const out: ServiceRules[] = [];
  for (const [k, sp] of snap.services) out.push(renderServicePort(sp, snap.endpoints.get(k) ?? [], ctx));
  return assembleRuleset(out, ctx);
}

export interface RestoreDocument {
  text: string;
  /** Chains declared (written or deleted) by this document. */
  chains: number;
  rules: number;
}

/** Chain names a restore writes or deletes, per table. */
export interface ChainChanges {
  nat: string[];
  filter: string[];
}

/**
 * Pure: the iptables-restore --noflush input that turns `prev` into `next`. With `prev` null
 * (full sync) every chain is written and `stale` chains (ours, found in the kernel) deleted;
 * otherwise only chains whose rules changed are rewritten and vanished ones deleted.
 * Returns empty text when nothing changed.
 */
export function renderRestore(next: Ruleset, prev: Ruleset | null, stale: ChainChanges = { nat: [], filter: [] }, backend: IptablesBackend = 'nft'): RestoreDocument {
  const write: ChainChanges = { nat: [], filter: [] };
  const remove: ChainChanges = { nat: [], filter: [] };
  for (const table of ['filter', 'nat'] as const) {
    const had = prev?.[table];
    for (const [name, rules] of next[table]) {
      if (had?.get(name)?.text !== rules.text) write[table].push(name);
    }
    const gone = new Set<string>();
    if (had) for (const name of had.keys()) if (!next[table].has(name)) gone.add(name);
    for (const name of stale[table]) if (!next[table].has(name)) gone.add(name);
    remove[table] = [...gone];
  }
  return renderRestoreChanges(next, write, remove, backend);
}

/**
 * Pure: the restore document that (re)writes the `write` chains of `next` and deletes the `remove`
 * chains (flushed at the top, `-X` at the end of the table). The rules each chain ends up with are
 * those of `next` whatever the layout; the layout is chosen per backend, for speed (measured at
 * 10,000 Services x 10 endpoints):
 *
 * - nft: iptables-nft-restore (1.8.x) keeps every chain name a document mentions in a sorted linked
 *   list that it scans from the smallest name for each line, so a line naming a chain declared long
 *   before scans most of that list (all chains declared first: a full sync took ~20 s of CPU, ~4 s
 *   with this layout). So the fixed chains are declared first; each service port chain is declared
 *   right before its rules, in descending name order (every new name is the smallest so far, found
 *   at once); and each port's SERVICES/NODEPORTS lines come right after its anchor chain, so their
 *   jump targets are found at once too.
 * - legacy: libiptc has no such list; declaring every chain first, in descending name order, then
 *   the rules chain by chain is ~25% cheaper than the nft layout.
 */
export function renderRestoreChanges(next: Ruleset, write: ChainChanges, remove: ChainChanges, backend: IptablesBackend = 'nft'): RestoreDocument {
  let text = '';
  let chains = 0;
  let rules = 0;
  for (const table of ['filter', 'nat'] as const) {
    const w = write[table];
    const r = remove[table];
    if (w.length === 0 && r.length === 0) continue;
    const parts: string[] = [`*${table}`];
    const body = (name: string) => {
      const c = next[table].get(name)!;
      rules += c.count;
      if (c.count > 0) parts.push(c.text);
    };
    const own = sortedDescending(w.filter((name) => !SHARED_CHAINS.has(name)));
    const fixed = w.filter((name) => SHARED_CHAINS.has(name));
    if (backend === 'legacy' || table === 'filter') {
      for (const name of sortedDescending([...w, ...r])) parts.push(`:${name} - [0:0]`);
      const dispatch = fixed.filter((name) => table === 'nat' && (name === SERVICES || name === NODEPORTS));
      for (const name of fixed) if (!dispatch.includes(name)) body(name);
      for (const name of own) body(name);
      for (const name of dispatch) body(name);
    } else {
      const dispatched = renderNftNatLayout(next, own, fixed, r, parts, body);
      rules += dispatched;
    }
    for (const name of r) parts.push(`-X ${name}`);
    parts.push('COMMIT');
    text += parts.join('\n') + '\n';
    chains += w.length + r.length;
  }
  return { text, chains, rules };
}

/**
 * The nft layout of the nat table (see renderRestoreChanges): lines go into `parts`, chain bodies
 * through `body`; returns how many SERVICES/NODEPORTS rules it wrote.
 */
function renderNftNatLayout(next: Ruleset, own: string[], fixed: string[], removed: string[], parts: string[], body: (name: string) => void): number {
  const services = fixed.includes(SERVICES);
  const nodePorts = fixed.includes(NODEPORTS);
  for (const name of sortedDescending([...fixed, ...removed])) parts.push(`:${name} - [0:0]`);
  for (const name of fixed) if (name !== SERVICES && name !== NODEPORTS) body(name);
  if (services && next.servicesHead.length > 0) parts.push(next.servicesHead.join('\n'));
  // Own chains and, when SERVICES/NODEPORTS are written, each port's lines after its anchor.
  const ports = services || nodePorts ? next.ports : [];
  let i = 0;
  let j = 0;
  while (i < own.length || j < ports.length) {
    const port = ports[j];
    if (i < own.length && (!port || own[i] >= port.anchor)) {
      parts.push(`:${own[i]} - [0:0]`);
      body(own[i]);
      i++;
      continue;
    }
    if (services && port.natServices.length > 0) parts.push(port.natServices.join('\n'));
    if (nodePorts && port.natNodePorts.length > 0) parts.push(port.natNodePorts.join('\n'));
    j++;
  }
  // The SERVICES lines after every port's (the jump to NODEPORTS).
  if (services && next.servicesTail.length > 0) parts.push(next.servicesTail.join('\n'));
  return (services ? next.nat.get(SERVICES)!.count : 0) + (nodePorts ? next.nat.get(NODEPORTS)!.count : 0);
}

export function sameLines(a: string[], b: string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rules in a table (the rules-count metric). */
export function countRules(chains: ChainMap): number {
  let n = 0;
  for (const c of chains.values()) n += c.count;
  return n;
}

/** The whole ruleset as restore text (golden files, debugging). */
export function rulesetToText(rs: Ruleset): string {
  return renderRestore(rs, null).text;
}
