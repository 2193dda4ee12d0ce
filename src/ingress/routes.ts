import { parseAnnotations, type CanaryConfig, type IngressConfig } from './annotations.js';
import type { BackendRef, ClassInfo, IngressInfo, IngressSnapshot, ServiceInfo, SliceInfo } from './model.js';

/**
 * The route table: everything the proxy needs to answer a request, rendered purely from an
 * IngressSnapshot. Plain JSON so it can be sent to worker processes; `compileTable` (match.ts)
 * turns it into lookup structures. Same snapshot in, byte-identical table out.
 */

export interface Endpoint {
  address: string;
  port: number;
}

export interface Backend {
  id: string;
  protocol: 'HTTP' | 'HTTPS';
  /** ready endpoints, sorted */
  endpoints: Endpoint[];
  /** serving but terminating endpoints: used only when there is no ready one (graceful drain) */
  draining: Endpoint[];
}

export interface Target {
  /** ns/service */
  service: string;
  /** the Service port as written in the Ingress (name or number) */
  port: string;
  /** key into RouteTable.backends; undefined when the Service or its port does not exist (-> 503) */
  backendId?: string;
}

export interface PathRoute {
  /** ns/name of the Ingress */
  ingress: string;
  /** rule host as written ('' for host-less) */
  host: string;
  path: string;
  pathType: 'Exact' | 'Prefix';
  /** case-insensitive, anchored regex source (use-regex / rewrite-target hosts) */
  regex?: string;
  target: Target;
  config: IngressConfig;
  canary?: { ingress: string; target: Target; config: CanaryConfig };
}

export interface HostRoutes {
  /** in match order: the first that matches wins */
  paths: PathRoute[];
  /** defaultBackend of the oldest Ingress of this host that has one */
  fallback?: PathRoute;
}

export interface RouteTable {
  hosts: Record<string, HostRoutes>;
  /** `*.foo.com` is stored under `foo.com` */
  wildcards: Record<string, HostRoutes>;
  hostless?: HostRoutes;
  /** defaultBackend of the oldest rule-less Ingress */
  catchAll?: PathRoute;
  backends: Record<string, Backend>;
  /** host (may be `*.foo.com`) -> secret key */
  sni: Record<string, string>;
  certs: Record<string, { cert: string; key: string }>;
  /** hosts that have a tls section (ssl-redirect applies) */
  tlsHosts: string[];
}

export interface RenderProblem {
  ingress: string;
  reason: string;
  message: string;
}

export interface RenderResult {
  table: RouteTable;
  /** keys of the Ingresses this controller serves */
  claimed: string[];
  problems: RenderProblem[];
}

/** Which Ingresses belong to this controller (IngressClass, legacy annotation, default class). */
export function claimedIngresses(ingresses: IngressInfo[], classes: ClassInfo[], controller: string): IngressInfo[] {
  const mine = new Set(classes.filter((c) => c.controller === controller).map((c) => c.name));
  const hasDefault = classes.some((c) => c.controller === controller && c.isDefault);
  return ingresses.filter((ing) => {
    if (ing.className) return mine.has(ing.className);
    if (ing.legacyClass) return mine.has(ing.legacyClass);
    return hasDefault;
  });
}

/** Oldest first, then by key: the order that decides conflicts between Ingresses. */
function byAge(a: IngressInfo, b: IngressInfo): number {
  return a.created < b.created ? -1 : a.created > b.created ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function normalizedLength(p: PathRoute): number {
  return p.pathType === 'Prefix' && p.path.length > 1 ? p.path.replace(/\/+$/, '').length || 1 : p.path.length;
}

interface Ctx {
  services: Map<string, ServiceInfo>;
  slices: Map<string, SliceInfo[]>;
  backends: Record<string, Backend>;
}

function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}`;
}

function sortEndpoints(list: Endpoint[]): Endpoint[] {
  const seen = new Map(list.map((e) => [endpointKey(e), e]));
  return [...seen.values()].sort((a, b) => (endpointKey(a) < endpointKey(b) ? -1 : endpointKey(a) > endpointKey(b) ? 1 : 0));
}

function resolveTarget(ctx: Ctx, namespace: string, ref: BackendRef, protocol: 'HTTP' | 'HTTPS'): Target {
  const service = `${namespace}/${ref.service}`;
  const portLabel = ref.port.name ?? String(ref.port.number ?? '');
  const svc = ctx.services.get(service);
  const sp = svc?.ports.find((p) => (ref.port.name ? p.name === ref.port.name : p.port === ref.port.number));
  if (!svc || !sp) return { service, port: portLabel };
  const id = `${service}:${sp.port}/${protocol}`;
  if (!ctx.backends[id]) {
    const ready: Endpoint[] = [];
    const draining: Endpoint[] = [];
    for (const slice of ctx.slices.get(service) ?? []) {
      const named = slice.ports.find((p) => p.name === sp.name);
      const port = named?.port ?? (typeof sp.targetPort === 'number' ? sp.targetPort : undefined);
      if (port === undefined) continue;
      for (const ep of slice.endpoints) {
        const list = ep.ready ? ready : ep.serving && ep.terminating ? draining : undefined;
        for (const address of ep.addresses) list?.push({ address, port });
      }
    }
    ctx.backends[id] = { id, protocol, endpoints: sortEndpoints(ready), draining: sortEndpoints(draining) };
  }
  return { service, port: portLabel, backendId: id };
}

function groupFor(table: RouteTable, host: string): HostRoutes {
  if (host === '') return (table.hostless ??= { paths: [] });
  if (host.startsWith('*.')) return (table.wildcards[host.slice(2)] ??= { paths: [] });
  return (table.hosts[host] ??= { paths: [] });
}

function sortGroup(group: HostRoutes, regexMode: boolean, order: Map<PathRoute, number>): void {
  group.paths.sort((a, b) => {
    if (regexMode && (a.pathType === 'Exact') !== (b.pathType === 'Exact')) return a.pathType === 'Exact' ? -1 : 1;
    const la = regexMode ? a.path.length : normalizedLength(a);
    const lb = regexMode ? b.path.length : normalizedLength(b);
    if (la !== lb) return lb - la;
    if (a.pathType !== b.pathType) return a.pathType === 'Exact' ? -1 : 1;
    if (a.path.length !== b.path.length) return b.path.length - a.path.length;
    return (order.get(a) ?? 0) - (order.get(b) ?? 0);
  });
}

function checkRegex(source: string): boolean {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
}

/** Renders the route table for the given controller name. Pure and deterministic. */
export function renderRoutes(snap: IngressSnapshot, controller: string): RenderResult {
  const problems: RenderProblem[] = [];
  const claimed = claimedIngresses(snap.ingresses, snap.classes, controller).sort(byAge);
  const slices = new Map<string, SliceInfo[]>();
  for (const s of snap.slices) slices.set(s.serviceKey, [...(slices.get(s.serviceKey) ?? []), s]);
  const ctx: Ctx = { services: new Map(snap.services.map((s) => [s.key, s])), slices, backends: {} };
  const table: RouteTable = { hosts: {}, wildcards: {}, backends: ctx.backends, sni: {}, certs: {}, tlsHosts: [] };
  const order = new Map<PathRoute, number>();
  const regexHosts = new Set<string>();
  const canaries: { ing: IngressInfo; route: PathRoute; canary: CanaryConfig }[] = [];
  const seenHosts = new Set<string>();

  for (const ing of claimed) {
    const { config, problems: ps } = parseAnnotations(ing.annotations);
    for (const p of ps) problems.push({ ingress: ing.key, ...p });
    const { canary, ...routeConfig } = config;
    const mk = (host: string, path: string, pathType: 'Exact' | 'Prefix', ref: BackendRef): PathRoute => ({
      ingress: ing.key, host, path, pathType, target: resolveTarget(ctx, ing.namespace, ref, config.backendProtocol), config: routeConfig,
    });
    if (ing.defaultBackend && !canary) {
      const fb = mk('', '/', 'Prefix', ing.defaultBackend);
      if (ing.rules.length === 0) table.catchAll ??= fb;
      for (const host of new Set(ing.rules.map((r) => r.host))) groupFor(table, host).fallback ??= fb;
    }
    for (const rule of ing.rules) {
      seenHosts.add(rule.host);
      if (!canary && (config.useRegex || config.rewriteTarget)) regexHosts.add(rule.host);
      for (const p of rule.paths) {
        if (!p.backend) {
          problems.push({ ingress: ing.key, reason: 'UnsupportedBackend', message: `path ${p.path}: only Service backends are supported` });
          continue;
        }
        const route = mk(rule.host, p.path, p.pathType === 'Exact' ? 'Exact' : 'Prefix', p.backend);
        if (canary) canaries.push({ ing, route, canary });
        else {
          order.set(route, order.size);
          groupFor(table, rule.host).paths.push(route);
        }
      }
    }
    addTls(table, ing, snap, problems);
  }

  for (const host of seenHosts) {
    const group = groupFor(table, host);
    const regexMode = regexHosts.has(host);
    if (regexMode) {
      group.paths = group.paths.filter((r) => {
        if (r.pathType === 'Exact') return true;
        const source = `^${r.path}`;
        if (!checkRegex(source)) {
          problems.push({ ingress: r.ingress, reason: 'InvalidPath', message: `path ${r.path} is not a valid regular expression` });
          return false;
        }
        r.regex = source;
        return true;
      });
    }
    sortGroup(group, regexMode, order);
  }
  attachCanaries(table, canaries, problems);
  table.tlsHosts.sort();
  return { table, claimed: claimed.map((i) => i.key), problems };
}

function attachCanaries(table: RouteTable, canaries: { ing: IngressInfo; route: PathRoute; canary: CanaryConfig }[], problems: RenderProblem[]): void {
  for (const { ing, route, canary } of canaries) {
    const group = groupFor(table, route.host);
    const main = group.paths.find((r) => r.path === route.path && r.ingress !== ing.key);
    if (!main) {
      problems.push({ ingress: ing.key, reason: 'CanaryWithoutMain', message: `canary path ${route.host || '*'}${route.path} has no main Ingress; not routed` });
      continue;
    }
    main.canary ??= { ingress: ing.key, target: route.target, config: canary };
  }
}

function addTls(table: RouteTable, ing: IngressInfo, snap: IngressSnapshot, problems: RenderProblem[]): void {
  const ruleHosts = ing.rules.map((r) => r.host).filter(Boolean);
  for (const t of ing.tls) {
    const hosts = t.hosts.length > 0 ? t.hosts : ruleHosts;
    let secretKey: string | undefined;
    if (t.secretName) {
      const key = `${ing.namespace}/${t.secretName}`;
      const secret = snap.secrets.find((s) => s.key === key);
      if (!secret) problems.push({ ingress: ing.key, reason: 'TLSSecretMissing', message: `secret ${key} not found; serving the default certificate` });
      else if (secret.error || !secret.cert || !secret.privateKey) problems.push({ ingress: ing.key, reason: 'TLSSecretInvalid', message: `secret ${key}: ${secret.error}; serving the default certificate` });
      else {
        secretKey = key;
        table.certs[key] = { cert: secret.cert, key: secret.privateKey };
      }
    }
    for (const h of hosts) {
      if (!table.tlsHosts.includes(h)) table.tlsHosts.push(h);
      if (secretKey && !(h in table.sni)) table.sni[h] = secretKey;
    }
  }
}
