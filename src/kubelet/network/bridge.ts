import { createHash } from 'node:crypto';
import type { Host } from '../../host/host.js';
import { SkiffError } from '../../util/errors.js';
import type { NetnsRef } from '../runtime/types.js';
import { gatewayOf, parseCidr } from './cidr.js';

/** Routes we add to other nodes' pod ranges carry this protocol number, so cleanup touches only ours. */
export const ROUTE_PROTO = 83;

export interface PodLink {
  hostIf: string;
}

/** Pure: a stable host-side veth name (<= 15 chars) for a pod uid. */
export function podLinkNames(podUid: string): PodLink {
  const h = createHash('sha256').update(podUid).digest('hex').slice(0, 10);
  return { hostIf: `skv${h}` };
}

function netnsArg(ref: NetnsRef): string {
  return 'pid' in ref ? String(ref.pid) : ref.name;
}

/** Pure: `ip -batch` text that makes the node bridge with the range's first address. */
export function renderBridgeSetup(bridge: string, podCidr: string): string {
  const c = parseCidr(podCidr);
  return [
    `link add ${bridge} type bridge`,
    `addr replace ${gatewayOf(c)}/${c.prefix} dev ${bridge}`,
    `link set ${bridge} up`,
  ].join('\n') + '\n';
}

/**
 * Pure: host side of a pod's veth: the pair is made with its peer already in the pod netns as
 * `eth0` (no move of a device between namespaces, which waits for the kernel's RCU), then the
 * host end joins the bridge with hairpin on. `makeNetns`: the named pod netns is made first, in the
 * same `ip` process (`ip netns add` returns to the caller's netns afterwards).
 */
export function renderHostVeth(bridge: string, link: PodLink, ref: NetnsRef, makeNetns = false): string {
  return [
    ...(makeNetns && 'name' in ref ? [`netns add ${ref.name}`] : []),
    `link add ${link.hostIf} type veth peer name eth0 netns ${netnsArg(ref)}`,
    `link set ${link.hostIf} master ${bridge}`,
    `link set ${link.hostIf} type bridge_slave hairpin on`,
    `link set ${link.hostIf} up`,
  ].join('\n') + '\n';
}

/** Pure: pod side: loopback, eth0 with the pod IP and a default route via the bridge. */
export function renderPodSide(ip: string, podCidr: string): string {
  const c = parseCidr(podCidr);
  return [
    `link set lo up`,
    `addr add ${ip}/${c.prefix} dev eth0`,
    `link set eth0 up`,
    `route add default via ${gatewayOf(c)} dev eth0`,
  ].join('\n') + '\n';
}

/** Pure: host-gw routes to other nodes' pod ranges. */
export function renderNodeRoutes(routes: { cidr: string; via: string }[]): string[] {
  return [...routes].sort((a, b) => a.cidr.localeCompare(b.cidr)).map((r) => `${r.cidr} via ${r.via}`);
}

/** Runs a command inside a pod network namespace (through the host seam). */
export function inPodNetns(ref: NetnsRef, cmd: string, args: string[]): [string, string[]] {
  return 'pid' in ref ? ['nsenter', ['-t', String(ref.pid), '-n', cmd, ...args]] : ['ip', ['netns', 'exec', ref.name, cmd, ...args]];
}

/** `ip ARGS` inside a pod netns: `ip -n NAME` enters a named one itself (no `ip netns exec` mount namespace). */
export function podIp(ref: NetnsRef, args: string[]): [string, string[]] {
  return 'pid' in ref ? inPodNetns(ref, 'ip', args) : ['ip', ['-n', ref.name, ...args]];
}

/**
 * The apply shell of the bridge plugin: the node side runs through the node's Host; the pod side
 * (which enters the pod netns by pid or name, wherever it starts from) through `podHost`, the root
 * host when the node is itself a netns (tests, labs), so it is not wrapped twice.
 */
export class BridgeNetwork {
  constructor(private readonly host: Host, readonly bridge: string, readonly podCidr: string, private readonly podHost: Host = host) {}

  async setupNode(): Promise<void> {
    await this.host.exec('modprobe', ['br_netfilter'], { allowFail: true });
    const exists = await this.host.exec('ip', ['link', 'show', this.bridge], { allowFail: true });
    const script = renderBridgeSetup(this.bridge, this.podCidr).split('\n').filter((l) => !(exists.exitCode === 0 && l.startsWith('link add')));
    await this.host.exec('ip', ['-batch', '-'], { input: script.join('\n') });
    await this.host.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { allowFail: true });
    await this.host.exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1'], { allowFail: true });
  }

  /** The pod's IPv4 on eth0, when its netns already has one (adoption after a restart). */
  async currentPodIP(ref: NetnsRef): Promise<string | undefined> {
    const [cmd, args] = podIp(ref, ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    const r = await this.podHost.exec(cmd, args, { allowFail: true });
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout);
    return r.exitCode === 0 && m ? m[1] : undefined;
  }

  /**
   * Two `ip -batch` runs: the host side (veth, bridge port), then the pod side inside its netns.
   * The host side needs no address, so `ip` may still be on its way (IPAM writing it to disk): the
   * host batch runs meanwhile, and the address is configured in the pod only once it is settled.
   */
  async attachPod(podUid: string, ref: NetnsRef, ip: string | Promise<string>, opts: { makeNetns?: boolean } = {}): Promise<void> {
    const link = podLinkNames(podUid);
    const hostSide = renderHostVeth(this.bridge, link, ref, opts.makeNetns);
    const first = await this.host.exec('ip', ['-batch', '-'], { input: hostSide, allowFail: true });
    if (first.exitCode !== 0) {
      // a veth left by an earlier sandbox of this pod (or a half-done attach) is in the way
      if (opts.makeNetns && 'name' in ref) await this.host.exec('ip', ['netns', 'add', ref.name], { allowFail: true });
      await this.host.exec('ip', ['link', 'del', link.hostIf], { allowFail: true });
      await this.host.exec('ip', ['-batch', '-'], { input: renderHostVeth(this.bridge, link, ref) });
    }
    let addr: string;
    try {
      addr = await ip;
    } catch (err) {
      await this.host.exec('ip', ['link', 'del', link.hostIf], { allowFail: true });
      throw err;
    }
    const [cmd, args] = podIp(ref, ['-batch', '-']);
    const r = await this.podHost.exec(cmd, args, { input: renderPodSide(addr, this.podCidr), allowFail: true });
    if (r.exitCode !== 0) {
      await this.host.exec('ip', ['link', 'del', link.hostIf], { allowFail: true });
      throw new SkiffError('ERR_POD_NETWORK', `configuring pod netns: ${r.stderr.trim()}`);
    }
  }

  async detachPod(podUid: string): Promise<void> {
    await this.host.exec('ip', ['link', 'del', podLinkNames(podUid).hostIf], { allowFail: true });
  }

  /** Converges our host-gw routes (protocol ROUTE_PROTO) to `routes`. */
  async syncRoutes(routes: { cidr: string; via: string }[]): Promise<void> {
    const want = new Set(renderNodeRoutes(routes));
    const cur = await this.host.exec('ip', ['-4', 'route', 'show', 'proto', String(ROUTE_PROTO)], { allowFail: true });
    const have = new Map<string, string>();
    for (const line of cur.stdout.split('\n')) {
      const m = /^(\S+) via (\S+)/.exec(line.trim());
      if (m) have.set(`${m[1]} via ${m[2]}`, m[1]);
    }
    const lines: string[] = [];
    for (const [r, cidr] of have) if (!want.has(r)) lines.push(`route del ${cidr} proto ${ROUTE_PROTO}`);
    for (const r of want) if (!have.has(r)) lines.push(`route replace ${r} proto ${ROUTE_PROTO}`);
    if (lines.length > 0) await this.host.exec('ip', ['-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
  }
}
