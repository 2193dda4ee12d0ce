import type { ConfigMap, Container, Pod, Secret, Service } from 'kubernetes-types/core/v1.js';
import { SkiffError } from '../../util/errors.js';
import { parseQuantity } from './quantity.js';

/** What env rendering needs besides the pod: referenced objects, fetched beforehand. */
export interface EnvSources {
  configMaps: Map<string, ConfigMap>;
  secrets: Map<string, Secret>;
  /** Services visible to the pod (its namespace + default/kubernetes) for service links */
  services: Service[];
  podIP: string;
  hostIP: string;
}

/** Names of the ConfigMaps and Secrets a container's env refers to. */
export function envReferences(c: Container): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const e of c.envFrom ?? []) {
    if (e.configMapRef?.name) configMaps.add(e.configMapRef.name);
    if (e.secretRef?.name) secrets.add(e.secretRef.name);
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
  }
  return { configMaps, secrets };
}

function b64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** Pure: `metadata.labels['x']`-style downward API field values. */
export function podFieldValue(pod: Pod, path: string, src: Pick<EnvSources, 'podIP' | 'hostIP'>): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]] ?? '';
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'metadata.labels': return Object.entries(pod.metadata?.labels ?? {}).map(([k, v]) => `${k}="${v}"`).sort().join('\n');
    case 'metadata.annotations': return Object.entries(pod.metadata?.annotations ?? {}).map(([k, v]) => `${k}="${v}"`).sort().join('\n');
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP': case 'status.podIPs': return src.podIP;
    case 'status.hostIP': case 'status.hostIPs': return src.hostIP;
    default: throw new SkiffError('ERR_FIELD_REF', `unsupported fieldRef ${path}`);
  }
}

/** Pure: resourceFieldRef (limits.cpu, requests.memory, ...) divided by `divisor`, rounded up. */
export function resourceFieldValue(c: Container, resource: string, divisor?: string): string {
  const [kind, name] = resource.split('.');
  const table = (kind === 'limits' ? c.resources?.limits : c.resources?.requests) ?? {};
  let v = parseQuantity(table[name]);
  if (!v && kind === 'limits') v = name === 'cpu' ? 1e6 : name === 'memory' ? 2 ** 53 : 0; // node allocatable stand-in
  const d = parseQuantity(divisor ?? '1') || 1;
  return String(Math.ceil(v / d));
}

/** Pure: Docker-link-style Service env vars (FOO_SERVICE_HOST, FOO_PORT_80_TCP ...). */
export function serviceEnv(services: Service[]): [string, string][] {
  const out: [string, string][] = [];
  const sorted = [...services].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const s of sorted) {
    const ip = s.spec?.clusterIP;
    if (!ip || ip === 'None' || !s.metadata?.name) continue;
    const n = s.metadata.name.toUpperCase().replace(/-/g, '_');
    const ports = s.spec?.ports ?? [];
    if (ports.length === 0) continue;
    out.push([`${n}_SERVICE_HOST`, ip], [`${n}_SERVICE_PORT`, String(ports[0].port)]);
    for (const p of ports) if (p.name) out.push([`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`, String(p.port)]);
    const proto0 = (ports[0].protocol ?? 'TCP').toLowerCase();
    out.push([`${n}_PORT`, `${proto0}://${ip}:${ports[0].port}`]);
    for (const p of ports) {
      const proto = p.protocol ?? 'TCP';
      const pre = `${n}_PORT_${p.port}_${proto}`;
      out.push([pre, `${proto.toLowerCase()}://${ip}:${p.port}`], [`${pre}_PROTO`, proto.toLowerCase()], [`${pre}_PORT`, String(p.port)], [`${pre}_ADDR`, ip]);
    }
  }
  return out;
}

function expand(value: string, env: Map<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return name !== undefined && env.has(name) ? env.get(name)! : all;
  });
}

/**
 * Pure: a container's environment in Kubernetes order: service links, envFrom, env (with $(VAR)
 * expansion). Missing non-optional references throw ERR_CREATE_CONFIG (CreateContainerConfigError).
 */
export function renderEnv(pod: Pod, c: Container, src: EnvSources): [string, string][] {
  const env = new Map<string, string>();
  if (pod.spec?.enableServiceLinks !== false) for (const [k, v] of serviceEnv(src.services)) env.set(k, v);
  for (const from of c.envFrom ?? []) {
    const pre = from.prefix ?? '';
    if (from.configMapRef?.name) {
      const cm = src.configMaps.get(from.configMapRef.name);
      if (!cm && !from.configMapRef.optional) throw new SkiffError('ERR_CREATE_CONFIG', `configmap "${from.configMapRef.name}" not found`);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env.set(pre + k, v);
    }
    if (from.secretRef?.name) {
      const s = src.secrets.get(from.secretRef.name);
      if (!s && !from.secretRef.optional) throw new SkiffError('ERR_CREATE_CONFIG', `secret "${from.secretRef.name}" not found`);
      for (const [k, v] of Object.entries(s?.data ?? {})) env.set(pre + k, b64(v));
      for (const [k, v] of Object.entries(s?.stringData ?? {})) env.set(pre + k, v);
    }
  }
  for (const e of c.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) {
      env.set(e.name, expand(e.value ?? '', env));
    } else if (vf.fieldRef) {
      env.set(e.name, podFieldValue(pod, vf.fieldRef.fieldPath, src));
    } else if (vf.resourceFieldRef) {
      const target = vf.resourceFieldRef.containerName ? [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find((x) => x.name === vf.resourceFieldRef!.containerName) ?? c : c;
      env.set(e.name, resourceFieldValue(target, vf.resourceFieldRef.resource, vf.resourceFieldRef.divisor as string | undefined));
    } else if (vf.configMapKeyRef) {
      const r = vf.configMapKeyRef;
      const v = src.configMaps.get(r.name ?? '')?.data?.[r.key];
      if (v === undefined && !r.optional) throw new SkiffError('ERR_CREATE_CONFIG', `couldn't find key ${r.key} in ConfigMap ${pod.metadata?.namespace}/${r.name}`);
      if (v !== undefined) env.set(e.name, v);
    } else if (vf.secretKeyRef) {
      const r = vf.secretKeyRef;
      const raw = src.secrets.get(r.name ?? '')?.data?.[r.key];
      if (raw === undefined && !r.optional) throw new SkiffError('ERR_CREATE_CONFIG', `couldn't find key ${r.key} in Secret ${pod.metadata?.namespace}/${r.name}`);
      if (raw !== undefined) env.set(e.name, b64(raw));
    }
  }
  return [...env.entries()];
}
