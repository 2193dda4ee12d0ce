import type { EndpointAddress, EndpointPort, EndpointSubset, Endpoints } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { cmp, endpointHostname, isPodReady, isPodTerminating, podHasAddress, portsKey, resolvePorts, type PodObj } from '../endpointslice/podutil.js';
import { LABEL_HEADLESS, type SvcObj } from '../endpointslice/reconcile.js';

export type EndpointsObj = KubeObject & Endpoints;

/** Endpoints the controller writes carry this label so the mirroring controller leaves them alone. */
export const LABEL_SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';

/**
 * The legacy core/v1 Endpoints of a selector Service: pods grouped by their resolved port set,
 * Ready pods in `addresses`, the others in `notReadyAddresses`; terminating pods are left out
 * unless publishNotReadyAddresses. Subsets and addresses are sorted, so equal inputs render equal.
 */
export function renderEndpoints(svc: SvcObj, pods: readonly PodObj[]): EndpointsObj {
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const svcPorts = svc.spec?.ports ?? [];
  const groups = new Map<string, { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
  for (const pod of pods) {
    if (pod.metadata?.namespace !== svc.metadata?.namespace) continue;
    if (!labelSelectorMatches({ matchLabels: svc.spec?.selector ?? {} }, pod.metadata?.labels)) continue;
    if (!podHasAddress(pod)) continue;
    if (isPodTerminating(pod) && !publishNotReady) continue;
    const ports = resolvePorts(svcPorts, pod);
    if (svcPorts.length > 0 && ports.length === 0) continue;
    const key = portsKey(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ports: ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) })), ready: [], notReady: [] }));
    const hostname = endpointHostname(pod, svc.metadata!.name!);
    const addr: EndpointAddress = {
      ip: pod.status!.podIP!,
      ...(hostname ? { hostname } : {}),
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata!.namespace, name: pod.metadata!.name, uid: pod.metadata!.uid },
    };
    if (publishNotReady || isPodReady(pod)) g.ready.push(addr);
    else g.notReady.push(addr);
  }
  const byIp = (a: EndpointAddress, b: EndpointAddress) => cmp(a.ip, b.ip) || cmp(a.targetRef?.name ?? '', b.targetRef?.name ?? '');
  const subsets: EndpointSubset[] = [...groups.entries()]
    .sort((a, b) => cmp(a[0], b[0]))
    .map(([, g]) => ({
      ...(g.ready.length ? { addresses: g.ready.sort(byIp) } : {}),
      ...(g.notReady.length ? { notReadyAddresses: g.notReady.sort(byIp) } : {}),
      ...(g.ports.length ? { ports: g.ports } : {}),
    }));
  const labels: Record<string, string> = { ...(svc.metadata?.labels ?? {}), [LABEL_SKIP_MIRROR]: 'true' };
  if (svc.spec?.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc.metadata!.name, namespace: svc.metadata!.namespace, labels }, subsets };
}

/** What to write so the stored Endpoints equals the rendered one: create, update (keeping metadata), or nothing. */
export function planEndpoints(desired: EndpointsObj, current: EndpointsObj | undefined): { create?: EndpointsObj; update?: EndpointsObj } {
  if (!current) return { create: desired };
  const same = JSON.stringify(current.subsets ?? []) === JSON.stringify(desired.subsets ?? []) && JSON.stringify(current.metadata?.labels ?? {}) === JSON.stringify(desired.metadata?.labels ?? {});
  if (same) return {};
  return { update: { ...current, metadata: { ...current.metadata, labels: desired.metadata!.labels }, subsets: desired.subsets } as EndpointsObj };
}
