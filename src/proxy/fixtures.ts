import type { KubeObject } from '../api/object.js';
import { SERVICE_NAME_LABEL } from './model.js';

/** Builders of Service and EndpointSlice objects for tests and benchmarks. */

export interface SvcSpec {
  ns?: string;
  name: string;
  clusterIP: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  ports: { name?: string; port: number; protocol?: 'TCP' | 'UDP'; nodePort?: number; targetPort?: number }[];
  externalIPs?: string[];
  lbIPs?: string[];
  sourceRanges?: string[];
  affinitySeconds?: number;
  etpLocal?: boolean;
  itpLocal?: boolean;
  healthCheckNodePort?: number;
}

export function makeService(s: SvcSpec): KubeObject {
  const spec: Record<string, unknown> = {
    type: s.type ?? 'ClusterIP',
    clusterIP: s.clusterIP,
    clusterIPs: [s.clusterIP],
    ports: s.ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP', targetPort: p.targetPort ?? p.port, ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
  };
  if (s.externalIPs) spec.externalIPs = s.externalIPs;
  if (s.sourceRanges) spec.loadBalancerSourceRanges = s.sourceRanges;
  if (s.affinitySeconds) {
    spec.sessionAffinity = 'ClientIP';
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: s.affinitySeconds } };
  }
  if (s.etpLocal) spec.externalTrafficPolicy = 'Local';
  if (s.itpLocal) spec.internalTrafficPolicy = 'Local';
  if (s.healthCheckNodePort) spec.healthCheckNodePort = s.healthCheckNodePort;
  const obj: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: s.ns ?? 'default' }, spec };
  if (s.lbIPs) obj.status = { loadBalancer: { ingress: s.lbIPs.map((ip) => ({ ip })) } };
  return obj;
}

export interface EpSpec {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function makeSlice(o: { ns?: string; service: string; name?: string; ports: { name?: string; port: number; protocol?: 'TCP' | 'UDP' }[]; endpoints: EpSpec[] }): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: o.name ?? `${o.service}-abc`, namespace: o.ns ?? 'default', labels: { [SERVICE_NAME_LABEL]: o.service } },
    addressType: 'IPv4',
    ports: o.ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: o.endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
      ...(e.node ? { nodeName: e.node } : {}),
    })),
  };
}
