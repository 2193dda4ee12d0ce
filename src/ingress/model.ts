import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Ingress, IngressBackend, IngressClass } from 'kubernetes-types/networking/v1.js';
import type { Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { objectKey } from '../api/object.js';

/**
 * Slim internal structs: API objects are converted at the edge into these, with only the fields the
 * route table needs. Everything here is plain data (JSON-safe), sorted where order matters.
 */

export const DEFAULT_CONTROLLER = 'skiff.io/ingress';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

export interface BackendRef {
  service: string;
  port: { name?: string; number?: number };
}

export interface PathInfo {
  path: string;
  pathType: PathType;
  /** undefined when the backend is not a Service (resource backends are not supported) */
  backend?: BackendRef;
}

export interface RuleInfo {
  /** lowercase, '' for a host-less rule */
  host: string;
  paths: PathInfo[];
}

export interface IngressInfo {
  key: string;
  namespace: string;
  name: string;
  uid: string;
  /** ISO timestamp; older Ingresses win conflicts */
  created: string;
  annotations: Record<string, string>;
  className?: string;
  legacyClass?: string;
  defaultBackend?: BackendRef;
  rules: RuleInfo[];
  tls: { hosts: string[]; secretName?: string }[];
  /** status.loadBalancer.ingress as it is now, flattened to addresses */
  statusAddresses: string[];
  resourceVersion?: string;
}

export interface ClassInfo {
  name: string;
  controller: string;
  isDefault: boolean;
}

export interface ServicePortInfo {
  name: string;
  port: number;
  /** number, or a port name resolved through the EndpointSlice ports */
  targetPort: number | string;
}

export interface ServiceInfo {
  key: string;
  ports: ServicePortInfo[];
}

export interface EndpointInfo {
  addresses: string[];
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface SliceInfo {
  /** ns/service */
  serviceKey: string;
  ports: { name: string; port: number }[];
  endpoints: EndpointInfo[];
}

export interface SecretInfo {
  key: string;
  /** PEM, present only when the Secret is a usable kubernetes.io/tls pair */
  cert?: string;
  privateKey?: string;
  /** why it is not usable */
  error?: string;
}

export interface IngressSnapshot {
  ingresses: IngressInfo[];
  classes: ClassInfo[];
  services: ServiceInfo[];
  slices: SliceInfo[];
  secrets: SecretInfo[];
}

function backendOf(b: IngressBackend | undefined): BackendRef | undefined {
  if (!b?.service) return undefined;
  const p = b.service.port ?? {};
  return { service: b.service.name, port: p.name ? { name: p.name } : { number: p.number } };
}

export function toIngressInfo(ing: Ingress): IngressInfo {
  const m = ing.metadata ?? {};
  const spec = ing.spec ?? {};
  const rules: RuleInfo[] = (spec.rules ?? []).map((r) => ({
    host: (r.host ?? '').toLowerCase(),
    paths: (r.http?.paths ?? []).map((p) => ({
      path: p.path || '/',
      pathType: (p.pathType as PathType) || 'ImplementationSpecific',
      backend: backendOf(p.backend),
    })),
  }));
  return {
    key: objectKey(ing),
    namespace: m.namespace ?? 'default',
    name: m.name ?? '',
    uid: m.uid ?? '',
    created: m.creationTimestamp ?? '',
    annotations: { ...(m.annotations ?? {}) },
    className: spec.ingressClassName ?? undefined,
    legacyClass: m.annotations?.[LEGACY_CLASS_ANNOTATION],
    defaultBackend: backendOf(spec.defaultBackend),
    rules,
    tls: (spec.tls ?? []).map((t) => ({ hosts: (t.hosts ?? []).map((h) => h.toLowerCase()), secretName: t.secretName ?? undefined })),
    statusAddresses: (ing.status?.loadBalancer?.ingress ?? []).map((x) => x.ip ?? x.hostname ?? '').filter(Boolean),
    resourceVersion: m.resourceVersion,
  };
}

export function toClassInfo(c: IngressClass): ClassInfo {
  return {
    name: c.metadata?.name ?? '',
    controller: c.spec?.controller ?? '',
    isDefault: c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true',
  };
}

export function toServiceInfo(s: Service): ServiceInfo {
  return {
    key: objectKey(s),
    ports: (s.spec?.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port, targetPort: p.targetPort ?? p.port })),
  };
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export function toSliceInfo(s: EndpointSlice): SliceInfo | undefined {
  const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (!svc) return undefined;
  return {
    serviceKey: `${s.metadata?.namespace ?? 'default'}/${svc}`,
    ports: (s.ports ?? []).filter((p) => p.port !== undefined).map((p) => ({ name: p.name ?? '', port: p.port as number })),
    endpoints: (s.endpoints ?? []).map((e) => {
      const c = e.conditions ?? {};
      const terminating = c.terminating === true;
      const ready = c.ready ?? !terminating;
      return { addresses: [...e.addresses], ready, serving: c.serving ?? ready, terminating };
    }),
  };
}

function decodeB64(v: string | undefined): string | undefined {
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

/** Converts a Secret, checking that tls.crt/tls.key parse and belong together. */
export function toSecretInfo(s: Secret): SecretInfo {
  const key = objectKey(s);
  const data = s.data ?? {};
  const cert = decodeB64(data['tls.crt']) ?? s.stringData?.['tls.crt'];
  const privateKey = decodeB64(data['tls.key']) ?? s.stringData?.['tls.key'];
  if (!cert || !privateKey) return { key, error: 'secret has no tls.crt/tls.key' };
  try {
    const x = new X509Certificate(cert);
    const k = createPrivateKey(privateKey);
    if (!x.checkPrivateKey(k)) return { key, error: 'tls.key does not match tls.crt' };
  } catch (err) {
    return { key, error: `invalid certificate or key: ${err instanceof Error ? err.message : String(err)}` };
  }
  return { key, cert, privateKey };
}
