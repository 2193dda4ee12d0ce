import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ServicePort } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../api/object.js';

/** Helpers about pods shared by the Endpoints and EndpointSlice controllers. */
export type PodObj = KubeObject & Pod;

export function isPodReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export function isPodTerminating(pod: Pod): boolean {
  return !!pod.metadata?.deletionTimestamp;
}

/** A pod can back a Service once it has an IP and has not finished. */
export function podHasAddress(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return !!pod.status?.podIP && phase !== 'Succeeded' && phase !== 'Failed';
}

/**
 * The port a Service port targets on one pod: a number as is, a name looked up among the pod's
 * container ports (same protocol). undefined when the pod has no such named port.
 */
export function resolveTargetPort(sp: ServicePort, pod: Pod): number | undefined {
  const tp = sp.targetPort ?? sp.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = sp.protocol ?? 'TCP';
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const p of c.ports ?? []) if (p.name === tp && (p.protocol ?? 'TCP') === proto) return p.containerPort;
  }
  return undefined;
}

export interface ResolvedPort {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

/** All Service ports resolved for one pod (ports whose name does not resolve are left out), sorted by name. */
export function resolvePorts(ports: readonly ServicePort[], pod: Pod): ResolvedPort[] {
  const out: ResolvedPort[] = [];
  for (const sp of ports) {
    const port = resolveTargetPort(sp, pod);
    if (port === undefined) continue;
    const rp: ResolvedPort = { name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP' };
    if (sp.appProtocol) rp.appProtocol = sp.appProtocol;
    out.push(rp);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.port - b.port));
}

export function portsKey(ports: readonly ResolvedPort[]): string {
  return ports.map((p) => `${p.name}/${p.protocol}/${p.port}/${p.appProtocol ?? ''}`).join(',');
}

/** The DNS hostname of a pod's endpoint: spec.hostname when spec.subdomain names the Service. */
export function endpointHostname(pod: Pod, serviceName: string): string | undefined {
  return pod.spec?.hostname && pod.spec.subdomain === serviceName ? pod.spec.hostname : undefined;
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
