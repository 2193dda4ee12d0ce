import type { Host } from '../host/host.js';
import { usableEndpoints, type EndpointInfo, type ServicePortInfo } from './model.js';

/** What a UDP service port looked like in one applied sync. */
export interface UdpPortState {
  sp: ServicePortInfo;
  endpoints: EndpointInfo[];
}

/**
 * Pure: the `conntrack -D` calls that keep UDP from black-holing after a sync, as kube-proxy does:
 * flows DNATed to an endpoint that went away (endpoint removed, Service emptied or deleted) are
 * deleted, and when a port goes from no endpoints to some, flows to its addresses are deleted so
 * clients stop hitting entries created while it had none.
 */
export function planConntrackCleanup(prev: UdpPortState | undefined, next: UdpPortState | undefined): string[][] {
  const sp = next?.sp ?? prev?.sp;
  if (!sp || sp.protocol !== 'UDP') return [];
  const before = new Set(usableEndpoints(prev?.endpoints ?? []).map((e) => e.ip));
  const after = new Set(usableEndpoints(next?.endpoints ?? []).map((e) => e.ip));
  const calls: string[][] = [];
  const oldSp = prev?.sp;
  if (oldSp) {
    const ips = serviceIPs(oldSp);
    for (const ep of [...before].sort()) {
      if (after.has(ep)) continue;
      for (const ip of ips) calls.push(['-D', '-p', 'udp', '--orig-dst', ip, '--dst-nat', ep]);
      if (oldSp.nodePort) calls.push(['-D', '-p', 'udp', '--orig-port-dst', String(oldSp.nodePort), '--dst-nat', ep]);
    }
  }
  if (next && before.size === 0 && after.size > 0) {
    for (const ip of serviceIPs(next.sp)) calls.push(['-D', '-p', 'udp', '--orig-dst', ip, '--orig-port-dst', String(next.sp.port)]);
    if (next.sp.nodePort) calls.push(['-D', '-p', 'udp', '--orig-port-dst', String(next.sp.nodePort)]);
  }
  return calls;
}

function serviceIPs(sp: ServicePortInfo): string[] {
  return [...(sp.clusterIP ? [sp.clusterIP] : []), ...sp.externalIPs, ...sp.loadBalancerIPs];
}

/** Runs the planned deletions; `conntrack` exits 1 when nothing matched, which is fine. */
export async function applyConntrackCleanup(host: Host, calls: string[][]): Promise<number> {
  let failed = 0;
  for (const args of calls) {
    const res = await host.exec('conntrack', args, { allowFail: true });
    if (res.exitCode !== 0 && !/0 flow entries/.test(res.stderr)) failed++;
  }
  return failed;
}
