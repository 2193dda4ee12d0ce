import type { EndpointAddress, Endpoints } from 'kubernetes-types/core/v1.js';
import type { Endpoint } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../../api/object.js';
import { cmp, portsKey, type ResolvedPort } from './podutil.js';
import { addressTypeOf, type DesiredEndpoint, type SvcObj } from './reconcile.js';

export type EndpointsObj = KubeObject & Endpoints;

/** Endpoints objects carrying this label are never mirrored. */
export const LABEL_SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';
/** The most addresses mirrored from one Endpoints object, as in Kubernetes. */
export const MAX_MIRRORED = 1000;

/** Should the manual Endpoints of this Service be mirrored into EndpointSlices? Only for selector-less Services. */
export function shouldMirror(svc: SvcObj | undefined, ep: EndpointsObj | undefined): boolean {
  if (!svc || !ep) return false;
  if (svc.spec?.selector && Object.keys(svc.spec.selector).length > 0) return false;
  if (svc.spec?.type === 'ExternalName') return false;
  return ep.metadata?.labels?.[LABEL_SKIP_MIRROR] !== 'true';
}

function mirrorEndpoint(a: EndpointAddress, ready: boolean): Endpoint {
  return {
    addresses: [a.ip],
    conditions: { ready, serving: ready, terminating: false },
    ...(a.hostname ? { hostname: a.hostname } : {}),
    ...(a.nodeName ? { nodeName: a.nodeName } : {}),
    ...(a.targetRef ? { targetRef: { kind: a.targetRef.kind, namespace: a.targetRef.namespace, name: a.targetRef.name, uid: a.targetRef.uid } } : {}),
  };
}

/** Desired endpoints mirrored from a manual Endpoints object: one group per (subset ports, address family). */
export function desiredEndpointsFromEndpoints(ep: EndpointsObj): DesiredEndpoint[] {
  const out: DesiredEndpoint[] = [];
  for (const subset of ep.subsets ?? []) {
    const ports: ResolvedPort[] = (subset.ports ?? [])
      .map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }))
      .sort((a, b) => cmp(a.name, b.name) || a.port - b.port);
    const add = (a: EndpointAddress, ready: boolean) => {
      if (out.length >= MAX_MIRRORED) return;
      const addressType = addressTypeOf(a.ip);
      out.push({ group: `${addressType}|${portsKey(ports)}`, addressType, ports, endpoint: mirrorEndpoint(a, ready) });
    };
    for (const a of subset.addresses ?? []) add(a, true);
    for (const a of subset.notReadyAddresses ?? []) add(a, false);
  }
  return out;
}
