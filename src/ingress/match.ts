import { isIP } from 'node:net';
import { parseCidr, cidrContains, type Cidr } from './cidr.js';
import type { Backend, HostRoutes, PathRoute, RouteTable } from './routes.js';
import type { RouteStats } from './metrics.js';

/**
 * Request matching over a compiled route table: host group first (exact > wildcard > host-less),
 * then the first path of that group that matches (groups are pre-sorted by precedence).
 */

export interface CompiledRoute extends PathRoute {
  re?: RegExp;
  /** Prefix path without its trailing slash ('' for `/`) */
  prefix: string;
  allow?: Cidr[];
  deny?: Cidr[];
  canaryPattern?: RegExp;
  /** per-process request counters of this route (set by the handler on first use) */
  stats?: RouteStats;
}

export interface CompiledGroup {
  paths: CompiledRoute[];
  fallback?: CompiledRoute;
}

export interface CompiledTable {
  raw: RouteTable;
  hosts: Map<string, CompiledGroup>;
  wildcards: Map<string, CompiledGroup>;
  hostless?: CompiledGroup;
  catchAll?: CompiledRoute;
  backends: Map<string, Backend>;
  tlsHosts: Set<string>;
  /** Host header as sent -> its host group (bounded memo: the lookup normalizes and probes maps) */
  hostCache: Map<string, { group?: CompiledGroup }>;
}

export interface RouteMatch {
  route: CompiledRoute;
  /** regex captures of the matched path ($0..$n), for rewrite-target */
  captures?: string[];
}

function compileRoute(r: PathRoute): CompiledRoute {
  const c: CompiledRoute = { ...r, prefix: r.path.replace(/\/+$/, '') };
  if (r.regex) c.re = new RegExp(r.regex, 'i');
  const parse = (list?: string[]) => list?.map(parseCidr).filter((x): x is Cidr => x !== undefined);
  c.allow = parse(r.config.allowSourceRange);
  c.deny = parse(r.config.denySourceRange);
  if (r.canary?.config.byHeaderPattern) {
    try {
      c.canaryPattern = new RegExp(r.canary.config.byHeaderPattern);
    } catch {
      c.canaryPattern = undefined;
    }
  }
  return c;
}

function compileGroup(g: HostRoutes): CompiledGroup {
  return { paths: g.paths.map(compileRoute), fallback: g.fallback && compileRoute(g.fallback) };
}

export function compileTable(t: RouteTable): CompiledTable {
  const mapOf = (rec: Record<string, HostRoutes>) => new Map(Object.entries(rec).map(([h, g]) => [h, compileGroup(g)]));
  return {
    raw: t,
    hosts: mapOf(t.hosts),
    wildcards: mapOf(t.wildcards),
    hostless: t.hostless && compileGroup(t.hostless),
    catchAll: t.catchAll && compileRoute(t.catchAll),
    backends: new Map(Object.entries(t.backends)),
    tlsHosts: new Set(t.tlsHosts),
    hostCache: new Map(),
  };
}

/** `Foo.Example.com:8080` -> `foo.example.com`; `[::1]:80` -> `::1`. */
export function normalizeHost(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  let h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Element-wise prefix match: `/foo` matches `/foo`, `/foo/`, `/foo/bar`, never `/foobar`. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47);
}

export function pathOf(url: string): string {
  let q = url.indexOf('?');
  const h = url.indexOf('#');
  if (h >= 0 && (q < 0 || h < q)) q = h;
  return q < 0 ? url : url.slice(0, q);
}

function matchInGroup(g: CompiledGroup, path: string): RouteMatch | undefined {
  for (const r of g.paths) {
    if (r.pathType === 'Exact') {
      if (r.path === path) return { route: r };
    } else if (r.re) {
      const m = r.re.exec(path);
      if (m) return { route: r, captures: [...m].map((x) => x ?? '') };
    } else if (prefixMatches(r.prefix, path)) return { route: r };
  }
  return g.fallback && { route: g.fallback };
}

/** The host group that serves a request host: exact, else one-label wildcard, else host-less. */
export function hostGroup(t: CompiledTable, host: string): CompiledGroup | undefined {
  if (host && isIP(host) === 0) {
    const exact = t.hosts.get(host);
    if (exact) return exact;
    const dot = host.indexOf('.');
    if (dot > 0) {
      const wild = t.wildcards.get(host.slice(dot + 1));
      if (wild) return wild;
    }
  }
  return t.hostless;
}

const HOST_CACHE_MAX = 4096;

/** hostGroup of a raw Host header, memoized per table. */
function cachedHostGroup(t: CompiledTable, hostHeader: string | undefined): CompiledGroup | undefined {
  const key = hostHeader ?? '';
  let hit = t.hostCache.get(key);
  if (!hit) {
    if (t.hostCache.size >= HOST_CACHE_MAX) t.hostCache.clear();
    hit = { group: hostGroup(t, normalizeHost(hostHeader)) };
    t.hostCache.set(key, hit);
  }
  return hit.group;
}

/** Finds the route for a request, or undefined (-> 404). */
export function matchRequest(t: CompiledTable, hostHeader: string | undefined, url: string): RouteMatch | undefined {
  const path = pathOf(url);
  const g = cachedHostGroup(t, hostHeader);
  if (g) {
    const m = matchInGroup(g, path);
    if (m || g !== t.hostless) return m;
  }
  return t.catchAll && { route: t.catchAll };
}

/** True when the host has a tls section (exact or via a `*.` entry). */
export function hostHasTls(t: CompiledTable, host: string): boolean {
  if (t.tlsHosts.has(host)) return true;
  const dot = host.indexOf('.');
  return dot > 0 && t.tlsHosts.has(`*.${host.slice(dot + 1)}`);
}

/** Source-range check of a route: deny list first, then the allow list. */
export function clientAllowed(r: CompiledRoute, ip: string): boolean {
  if (r.deny?.some((c) => cidrContains(c, ip))) return false;
  if (r.allow && !r.allow.some((c) => cidrContains(c, ip))) return false;
  return true;
}

/** `/$2` with captures ['/something/new', '/', 'new'] -> `/new`; the query string is kept. */
export function rewriteUrl(target: string, captures: string[] | undefined, url: string): string {
  const q = url.search(/[?#]/);
  const query = q < 0 ? '' : url.slice(q);
  const out = target.replace(/\$(\d)/g, (_m, n: string) => captures?.[Number(n)] ?? '');
  return (out.startsWith('/') ? out : `/${out}`) + query;
}
