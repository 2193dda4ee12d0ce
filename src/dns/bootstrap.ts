/**
 * The kube-dns Service pods resolve through (ClusterIP 10.96.0.10 by default, port 53 UDP+TCP) and
 * a selector-less EndpointSlice pointing at wherever startDns listens. `renderKubeDns` is pure;
 * `ensureKubeDns` creates or updates both objects (idempotent, safe to call on every start).
 */
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { isIPv6 } from 'node:net';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { isNotFound } from '../client/rest.js';
import type { ApiClient, ResourceRef } from '../client/types.js';

export interface KubeDnsOptions {
  /** ClusterIP of the Service (default 10.96.0.10) */
  clusterIP?: string;
  /** address the DNS server is reachable on from pods (node IP) */
  address: string;
  /** port the DNS server listens on */
  port: number;
  namespace?: string;
}

export const MANAGED_BY = 'skiff-dns';

export function renderKubeDns(o: KubeDnsOptions): { service: Service; slice: EndpointSlice } {
  const namespace = o.namespace ?? 'kube-system';
  const clusterIP = o.clusterIP ?? '10.96.0.10';
  const labels = { 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS', 'app.kubernetes.io/managed-by': MANAGED_BY };
  const service: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace, labels },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: o.port },
        { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: o.port },
      ],
    },
  };
  const slice: EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kube-dns-skiff', namespace, labels: { 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': MANAGED_BY } },
    addressType: isIPv6(o.address) ? 'IPv6' : 'IPv4',
    endpoints: [{ addresses: [o.address], conditions: { ready: true } }],
    ports: [
      { name: 'dns', protocol: 'UDP', port: o.port },
      { name: 'dns-tcp', protocol: 'TCP', port: o.port },
    ],
  };
  return { service, slice };
}

async function upsert(client: ApiClient, ref: ResourceRef, want: KubeObject, same: (cur: KubeObject) => boolean): Promise<void> {
  const { name, namespace } = want.metadata ?? {};
  let cur: KubeObject;
  try {
    cur = await client.get(ref, name!, namespace);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await client.create(ref, want, namespace);
    return;
  }
  if (same(cur)) return;
  await client.update(ref, { ...cur, ...want, metadata: { ...cur.metadata, ...want.metadata, resourceVersion: cur.metadata?.resourceVersion } });
}

export async function ensureKubeDns(client: ApiClient, o: KubeDnsOptions): Promise<void> {
  const { service, slice } = renderKubeDns(o);
  const svc = service as KubeObject;
  await upsert(client, R.services, svc, (cur) => {
    const spec = (cur as Service).spec;
    return spec?.clusterIP === service.spec!.clusterIP && JSON.stringify(spec?.ports?.map((p) => [p.name, p.protocol, p.port, p.targetPort])) === JSON.stringify(service.spec!.ports!.map((p) => [p.name, p.protocol, p.port, p.targetPort]));
  });
  await upsert(client, R.endpointslices, slice as unknown as KubeObject, (cur) => {
    const s = cur as unknown as EndpointSlice;
    return JSON.stringify([s.endpoints, s.ports]) === JSON.stringify([slice.endpoints, slice.ports]);
  });
}
