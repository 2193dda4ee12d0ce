/**
 * The sample cluster of /work/shared/reference/DNS.md §2 as API objects (Services, EndpointSlices,
 * Namespaces, Pods), shared by the unit tests (via buildSnapshot) and the dig integration tests
 * (seeded into a FakeApiClient).
 */
import type { Namespace, Pod, Service, ServicePort } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';

type Ep = { ip: string; ready?: boolean; hostname?: string };
type Port = { name?: string; protocol?: string; port: number };

export function ns(name: string): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

export function svc(namespace: string, name: string, spec: Service['spec']): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { namespace, name }, spec };
}

export function clusterIP(namespace: string, name: string, ips: string[], ports: Port[]): Service {
  return svc(namespace, name, { type: 'ClusterIP', clusterIP: ips[0], clusterIPs: ips, ports: ports as ServicePort[] });
}

export function headless(namespace: string, name: string, ports: Port[], publishNotReadyAddresses = false): Service {
  return svc(namespace, name, { clusterIP: 'None', clusterIPs: ['None'], ports: ports as ServicePort[], publishNotReadyAddresses });
}

export function slice(namespace: string, service: string, eps: Ep[], ports: Port[], suffix = 'a'): EndpointSlice {
  const v6 = eps.length > 0 && eps[0].ip.includes(':');
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace, name: `${service}-${suffix}`, labels: { 'kubernetes.io/service-name': service } },
    addressType: v6 ? 'IPv6' : 'IPv4',
    endpoints: eps.map((e) => ({ addresses: [e.ip], hostname: e.hostname, conditions: { ready: e.ready ?? true } })),
    ports: ports.map((p) => ({ name: p.name, protocol: p.protocol ?? 'TCP', port: p.port })),
  };
}

export function pod(namespace: string, name: string, ips: string[]): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { namespace, name }, status: { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } };
}

const big = Array.from({ length: 40 }, (_, i) => ({ ip: `10.244.9.${i + 1}` }));

export function fixture(opts: { publishNotReady?: boolean } = {}) {
  const pnr = opts.publishNotReady === true;
  const namespaces = ['default', 'prod', 'kube-system'].map(ns);
  const services: Service[] = [
    clusterIP('default', 'kubernetes', ['10.96.0.1'], [{ name: 'https', protocol: 'TCP', port: 443 }]),
    clusterIP('kube-system', 'kube-dns', ['10.96.0.10'], [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }]),
    clusterIP('default', 'web', ['10.96.0.50'], [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'dns', protocol: 'UDP', port: 53 }]),
    headless('prod', 'db', [{ name: 'postgres', protocol: 'TCP', port: 5432 }], pnr),
    headless('prod', 'db-reader', [{ name: 'postgres', protocol: 'TCP', port: 5432 }]),
    svc('default', 'ext', { type: 'ExternalName', externalName: 'api.example.com' }),
    svc('default', 'ext-internal', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    svc('default', 'ext-ip', { type: 'ExternalName', externalName: '192.0.2.99' }),
    clusterIP('default', 'dual', ['10.96.0.60', 'fd00:10:96::60'], [{ name: 'http', protocol: 'TCP', port: 80 }]),
    clusterIP('prod', 'api6', ['fd00:10:96::70'], [{ name: 'grpc', protocol: 'TCP', port: 9090 }]),
    clusterIP('default', 'empty', ['10.96.0.80'], [{ name: 'http', protocol: 'TCP', port: 80 }]),
    headless('prod', 'cache', [{ name: 'redis', protocol: 'TCP', port: 6379 }]),
    clusterIP('default', 'legacy', ['10.96.0.90'], [{ protocol: 'TCP', port: 8080 }]),
    headless('default', 'big', [{ name: 'http', protocol: 'TCP', port: 80 }]),
    headless('prod', 'hdls6', [{ name: 'http', protocol: 'TCP', port: 80 }]),
    headless('prod', 'portless', []),
    headless('prod', 'dups', [{ name: 'http', protocol: 'TCP', port: 80 }]),
  ];
  const dbEps = [
    { ip: '10.244.1.20', hostname: 'db-0' },
    { ip: '10.244.2.21', hostname: 'db-1' },
    { ip: '10.244.3.22', hostname: 'db-2', ready: pnr },
  ];
  const slices: EndpointSlice[] = [
    slice('default', 'kubernetes', [{ ip: '127.0.0.1' }], [{ name: 'https', port: 6443 }]),
    slice('kube-system', 'kube-dns', [{ ip: '10.244.0.2' }, { ip: '10.244.0.3' }], [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', port: 53 }]),
    slice('default', 'web', [{ ip: '10.244.1.10' }, { ip: '10.244.2.11' }], [{ name: 'http', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }]),
    slice('prod', 'db', dbEps, [{ name: 'postgres', port: 5432 }]),
    slice('prod', 'db-reader', dbEps.map((e, i) => ({ ip: e.ip, ready: i < 2 })), [{ name: 'postgres', port: 5432 }]),
    slice('default', 'dual', [{ ip: '10.244.1.30' }], [{ name: 'http', port: 8080 }]),
    slice('default', 'dual', [{ ip: 'fd00:10:244:1::30' }], [{ name: 'http', port: 8080 }], 'b'),
    slice('prod', 'api6', [{ ip: 'fd00:10:244:2::40' }], [{ name: 'grpc', port: 9090 }]),
    slice('prod', 'cache', [{ ip: '10.244.3.30', ready: false }], [{ name: 'redis', port: 6379 }]),
    slice('default', 'legacy', [{ ip: '10.244.1.50' }], [{ port: 8080 }]),
    slice('default', 'big', big, [{ name: 'http', port: 80 }]),
    slice('prod', 'hdls6', [{ ip: '5678:abcd::1' }, { ip: '5678:abcd::2' }], [{ name: 'http', port: 80 }]),
    slice('prod', 'hdls6', [{ ip: '10.244.4.1' }], [{ name: 'http', port: 80 }], 'b'),
    slice('prod', 'portless', [{ ip: '172.0.0.20' }], []),
    slice('prod', 'dups', [{ ip: '10.244.5.1', hostname: 'dup-name' }, { ip: '10.244.5.2', hostname: 'dup-name' }], [{ name: 'http', port: 80 }]),
  ];
  const pods: Pod[] = [pod('default', 'client', ['10.244.1.5', 'fd00:10:244:1::5'])];
  return { namespaces, services, slices, pods };
}
