import type { Service } from 'kubernetes-types/core/v1.js';
import type { Endpoint, EndpointPort, EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { cmp, endpointHostname, isPodReady, isPodTerminating, podHasAddress, portsKey, resolvePorts, type PodObj, type ResolvedPort } from './podutil.js';

export type SvcObj = KubeObject & Service;
export type SliceObj = KubeObject & EndpointSlice;

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY_CONTROLLER = 'endpointslice-controller.k8s.io';
export const MANAGED_BY_MIRRORING = 'endpointslicemirroring-controller.k8s.io';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const MAX_ENDPOINTS_PER_SLICE = 100;

type AddressType = 'IPv4' | 'IPv6';

/** One endpoint we want, with the slice group (address type + resolved ports) it belongs to. */
export interface DesiredEndpoint {
  group: string;
  addressType: AddressType;
  ports: ResolvedPort[];
  endpoint: Endpoint;
}

export interface SlicePlan {
  create: SliceObj[];
  update: SliceObj[];
  delete: SliceObj[];
}

/** Endpoint key inside a group: the target pod (or the address for mirrored endpoints). */
function endpointKey(e: Endpoint): string {
  return e.targetRef?.uid ?? e.targetRef?.name ?? e.addresses[0];
}

function groupKey(addressType: string, ports: readonly ResolvedPort[]): string {
  return `${addressType}|${portsKey(ports)}`;
}

export function addressTypeOf(ip: string): AddressType {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

/**
 * Desired endpoints of a selector Service: every pod the selector picks that has an IP.
 * ready = Ready and not terminating; serving = Ready; terminating = being deleted.
 * publishNotReadyAddresses makes every endpoint ready and serving.
 */
export function desiredEndpointsForService(svc: SvcObj, pods: readonly PodObj[]): DesiredEndpoint[] {
  const sel = svc.spec?.selector;
  if (!sel || Object.keys(sel).length === 0) return [];
  const publishNotReady = !!svc.spec?.publishNotReadyAddresses;
  const out: DesiredEndpoint[] = [];
  for (const pod of pods) {
    if (pod.metadata?.namespace !== svc.metadata?.namespace) continue;
    if (!labelSelectorMatches({ matchLabels: sel }, pod.metadata?.labels)) continue;
    if (!podHasAddress(pod)) continue;
    const ip = pod.status!.podIP!;
    const ports = resolvePorts(svc.spec?.ports ?? [], pod);
    if ((svc.spec?.ports ?? []).length > 0 && ports.length === 0) continue;
    const terminating = isPodTerminating(pod);
    const podReady = isPodReady(pod);
    const e: Endpoint = {
      addresses: [ip],
      conditions: {
        ready: publishNotReady || (podReady && !terminating),
        serving: publishNotReady || podReady,
        terminating,
      },
      ...(endpointHostname(pod, svc.metadata!.name!) ? { hostname: endpointHostname(pod, svc.metadata!.name!) } : {}),
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata!.namespace, name: pod.metadata!.name, uid: pod.metadata!.uid },
    };
    const addressType = addressTypeOf(ip);
    out.push({ group: groupKey(addressType, ports), addressType, ports, endpoint: e });
  }
  return out;
}

/** Labels every slice of a Service carries: the Service's own, plus service-name, managed-by and headless. */
export function sliceLabels(svc: SvcObj, managedBy: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata?.labels ?? {})) if (k !== LABEL_SERVICE_NAME && k !== LABEL_MANAGED_BY) labels[k] = v;
  labels[LABEL_SERVICE_NAME] = svc.metadata!.name!;
  labels[LABEL_MANAGED_BY] = managedBy;
  if (svc.spec?.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  return labels;
}

function slicePorts(ports: readonly ResolvedPort[]): EndpointPort[] {
  return ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) }));
}

function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  return eps.sort((a, b) => cmp(a.targetRef?.name ?? '', b.targetRef?.name ?? '') || cmp(a.addresses[0], b.addresses[0]));
}

function newSlice(svc: SvcObj, managedBy: string, addressType: string, ports: readonly ResolvedPort[], endpoints: Endpoint[]): SliceObj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      generateName: `${svc.metadata!.name}-`,
      namespace: svc.metadata!.namespace,
      labels: sliceLabels(svc, managedBy),
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata!.name!, uid: svc.metadata!.uid!, controller: true, blockOwnerDeletion: true }],
    },
    addressType,
    ports: slicePorts(ports),
    endpoints: sortEndpoints(endpoints),
  } as SliceObj;
}

function sliceGroup(s: SliceObj): string {
  const ports = (s.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port ?? 0, protocol: p.protocol ?? 'TCP', appProtocol: p.appProtocol }));
  ports.sort((a, b) => cmp(a.name, b.name) || a.port - b.port);
  return groupKey(s.addressType, ports);
}

function sameContent(a: SliceObj, b: SliceObj): boolean {
  return (
    JSON.stringify(a.endpoints ?? []) === JSON.stringify(b.endpoints ?? []) &&
    JSON.stringify(a.ports ?? []) === JSON.stringify(b.ports ?? []) &&
    JSON.stringify(a.metadata?.labels ?? {}) === JSON.stringify(b.metadata?.labels ?? {}) &&
    a.addressType === b.addressType
  );
}

/**
 * Plans the writes that make a Service's slices (those with our managed-by label) hold exactly
 * the desired endpoints: endpoints stay in the slice they are in, new ones fill slices with room
 * (max 100 each) and then new slices; empty slices go, but a Service with no endpoints keeps one
 * empty placeholder slice. Pure: the caller applies the plan.
 */
export function planSlices(svc: SvcObj, desired: readonly DesiredEndpoint[], existing: readonly SliceObj[], managedBy: string, maxPerSlice = MAX_ENDPOINTS_PER_SLICE): SlicePlan {
  const plan: SlicePlan = { create: [], update: [], delete: [] };
  const byGroup = new Map<string, { addressType: AddressType; ports: ResolvedPort[]; eps: Map<string, Endpoint> }>();
  for (const d of desired) {
    let g = byGroup.get(d.group);
    if (!g) byGroup.set(d.group, (g = { addressType: d.addressType, ports: d.ports, eps: new Map() }));
    g.eps.set(endpointKey(d.endpoint), d.endpoint);
  }
  const sorted = [...existing].sort((a, b) => cmp(a.metadata?.name ?? '', b.metadata?.name ?? ''));
  const kept: SliceObj[] = [];
  const spare: SliceObj[] = [];
  for (const s of sorted) {
    const g = byGroup.get(sliceGroup(s));
    if (!g) {
      spare.push(s);
      continue;
    }
    const eps: Endpoint[] = [];
    for (const e of s.endpoints ?? []) {
      const k = endpointKey(e);
      const want = g.eps.get(k);
      if (want && eps.length < maxPerSlice) {
        eps.push(want);
        g.eps.delete(k);
      }
    }
    kept.push({ ...s, endpoints: eps } as SliceObj);
  }
  for (const [group, g] of [...byGroup].sort((a, b) => cmp(a[0], b[0]))) {
    const rest = sortEndpoints([...g.eps.values()]);
    for (const s of kept) {
      if (sliceGroup(s) !== group) continue;
      const eps = s.endpoints as Endpoint[];
      while (rest.length > 0 && eps.length < maxPerSlice) eps.push(rest.shift()!);
    }
    while (rest.length > 0) plan.create.push(newSlice(svc, managedBy, g.addressType, g.ports, rest.splice(0, maxPerSlice)));
  }
  const nonEmpty = kept.filter((s) => (s.endpoints ?? []).length > 0);
  const empty = kept.filter((s) => (s.endpoints ?? []).length === 0);
  spare.push(...empty);
  const wantPlaceholder = desired.length === 0;
  const existingPlaceholder = wantPlaceholder ? spare.find((s) => (s.ports ?? []).length === 0 && (s.endpoints ?? []).length === 0) : undefined;
  for (const s of nonEmpty) {
    const orig = existing.find((e) => e.metadata?.name === s.metadata?.name)!;
    const next = { ...s, endpoints: sortEndpoints([...(s.endpoints as Endpoint[])]), metadata: { ...s.metadata, labels: sliceLabels(svc, managedBy) } } as SliceObj;
    if (!sameContent(orig, next)) plan.update.push(next);
  }
  if (wantPlaceholder) {
    if (existingPlaceholder) {
      const next = { ...existingPlaceholder, metadata: { ...existingPlaceholder.metadata, labels: sliceLabels(svc, managedBy) } } as SliceObj;
      if (!sameContent(existingPlaceholder, next)) plan.update.push(next);
    } else plan.create.push(newSlice(svc, managedBy, 'IPv4', [], []));
  }
  for (const s of spare) if (s !== existingPlaceholder) plan.delete.push(s);
  return plan;
}
