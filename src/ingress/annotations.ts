import { parseCidr, type Cidr } from './cidr.js';

/**
 * ingress-nginx compatible annotations, accepted under both prefixes. Parsing is pure: it returns the
 * per-Ingress config plus problems, which the controller turns into Warning Events.
 */
export const ANNOTATION_PREFIXES = ['nginx.ingress.kubernetes.io/', 'ingress.skiff.io/'] as const;

export type BackendProtocol = 'HTTP' | 'HTTPS';

export interface AffinityConfig {
  cookieName: string;
  /** undefined: the rule path */
  path?: string;
  maxAgeSeconds?: number;
  sameSite?: 'None' | 'Lax' | 'Strict';
  secure: boolean;
  domain?: string;
}

export interface CorsConfig {
  /** '*' or a list of origins (proto://host[:port], `https://*.foo.bar` allowed) */
  allowOrigin: string[];
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  allowCredentials: boolean;
  maxAge: number;
}

export interface CanaryConfig {
  byHeader?: string;
  byHeaderValue?: string;
  byHeaderPattern?: string;
  byCookie?: string;
  weight: number;
  weightTotal: number;
}

/** Per-Ingress behaviour, applied to every path of that Ingress. JSON-safe. */
export interface IngressConfig {
  rewriteTarget?: string;
  useRegex: boolean;
  sslRedirect: boolean;
  forceSslRedirect: boolean;
  preserveTrailingSlash: boolean;
  backendProtocol: BackendProtocol;
  affinity?: AffinityConfig;
  /** CIDRs allowed (undefined = all); an invalid list denies everything (fail closed) */
  allowSourceRange?: string[];
  denySourceRange?: string[];
  /** bytes, 0 = unlimited */
  bodySizeLimit: number;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  cors?: CorsConfig;
  canary?: CanaryConfig;
}

export interface AnnotationProblem {
  reason: 'UnknownAnnotation' | 'InvalidAnnotation' | 'IgnoredAnnotation';
  message: string;
}

export const DEFAULT_CONFIG: IngressConfig = {
  useRegex: false,
  sslRedirect: true,
  forceSslRedirect: false,
  preserveTrailingSlash: false,
  backendProtocol: 'HTTP',
  bodySizeLimit: 1024 * 1024,
  connectTimeoutMs: 5_000,
  readTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
};

const CORS_DEFAULTS = {
  allowMethods: 'GET, PUT, POST, DELETE, PATCH, OPTIONS',
  allowHeaders: 'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization',
};

const KNOWN = new Set([
  'rewrite-target', 'use-regex', 'ssl-redirect', 'force-ssl-redirect', 'preserve-trailing-slash', 'backend-protocol',
  'affinity', 'session-cookie-name', 'session-cookie-path', 'session-cookie-max-age', 'session-cookie-samesite',
  'session-cookie-secure', 'session-cookie-domain',
  'canary', 'canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern', 'canary-by-cookie', 'canary-weight', 'canary-weight-total',
  'whitelist-source-range', 'allowlist-source-range', 'denylist-source-range', 'proxy-body-size',
  'proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout',
  'enable-cors', 'cors-allow-origin', 'cors-allow-methods', 'cors-allow-headers', 'cors-expose-headers', 'cors-allow-credentials', 'cors-max-age',
]);

const SNIPPETS = new Set(['configuration-snippet', 'server-snippet', 'auth-snippet', 'stream-snippet']);

/** Parses `1m`, `8m`, `100k`, `1g`, `1024` into bytes. */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

class Reader {
  readonly problems: AnnotationProblem[] = [];
  private readonly values = new Map<string, { full: string; value: string }>();

  constructor(annotations: Record<string, string>) {
    for (const [full, value] of Object.entries(annotations).sort(([a], [b]) => a.localeCompare(b))) {
      const prefix = ANNOTATION_PREFIXES.find((p) => full.startsWith(p));
      if (!prefix) continue;
      const name = full.slice(prefix.length);
      if (SNIPPETS.has(name)) this.problems.push({ reason: 'IgnoredAnnotation', message: `${full}: snippet annotations are not supported and were ignored` });
      else if (!KNOWN.has(name)) this.problems.push({ reason: 'UnknownAnnotation', message: `${full}: unknown annotation, ignored` });
      else if (!this.values.has(name) || prefix === ANNOTATION_PREFIXES[1]) this.values.set(name, { full, value });
    }
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  invalid(name: string, why: string): undefined {
    const full = this.values.get(name)?.full ?? name;
    this.problems.push({ reason: 'InvalidAnnotation', message: `${full}: ${why}` });
    return undefined;
  }

  str(name: string): string | undefined {
    return this.values.get(name)?.value.trim();
  }

  bool(name: string): boolean | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (v === 'true' || v === 'false') return v === 'true';
    return this.invalid(name, `"${v}" is not "true" or "false"`);
  }

  int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) return this.invalid(name, `"${v}" is not an integer in [${min}, ${max}]`);
    return Number(v);
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const hit = values.find((x) => x.toLowerCase() === v.toLowerCase());
    return hit ?? this.invalid(name, `"${v}" is not one of ${values.join(', ')}`);
  }

  cidrs(name: string): string[] | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
    const parsed: (Cidr | undefined)[] = parts.map(parseCidr);
    const bad = parts.filter((_p, i) => !parsed[i]);
    if (bad.length > 0) {
      this.invalid(name, `invalid CIDR(s) ${bad.join(', ')}: the rule denies all clients`);
      return [];
    }
    return parts;
  }
}

function parseAffinity(r: Reader): AffinityConfig | undefined {
  const type = r.oneOf('affinity', ['cookie'] as const);
  if (!type) return undefined;
  return {
    cookieName: r.str('session-cookie-name') || 'INGRESSCOOKIE',
    path: r.str('session-cookie-path') || undefined,
    maxAgeSeconds: r.int('session-cookie-max-age', 0),
    sameSite: r.oneOf('session-cookie-samesite', ['None', 'Lax', 'Strict'] as const),
    secure: r.bool('session-cookie-secure') ?? false,
    domain: r.str('session-cookie-domain') || undefined,
  };
}

function parseCors(r: Reader): CorsConfig | undefined {
  if (!r.bool('enable-cors')) return undefined;
  const origins = (r.str('cors-allow-origin') ?? '*').split(',').map((s) => s.trim()).filter(Boolean);
  for (const o of origins) if (o !== '*' && !/^https?:\/\/(\*\.)?[a-z0-9.-]+(:\d+)?$/i.test(o)) r.invalid('cors-allow-origin', `"${o}" is not proto://host[:port]`);
  return {
    allowOrigin: origins.length ? origins : ['*'],
    allowMethods: r.str('cors-allow-methods') || CORS_DEFAULTS.allowMethods,
    allowHeaders: r.str('cors-allow-headers') || CORS_DEFAULTS.allowHeaders,
    exposeHeaders: r.str('cors-expose-headers') ?? '',
    allowCredentials: r.bool('cors-allow-credentials') ?? true,
    maxAge: r.int('cors-max-age', 0) ?? 1_728_000,
  };
}

function parseCanary(r: Reader): CanaryConfig | undefined {
  if (!r.bool('canary')) return undefined;
  const weightTotal = r.int('canary-weight-total', 1) ?? 100;
  const pattern = r.str('canary-by-header-pattern');
  if (pattern !== undefined) {
    try {
      new RegExp(pattern);
    } catch {
      r.invalid('canary-by-header-pattern', `"${pattern}" is not a valid regular expression`);
    }
  }
  return {
    byHeader: r.str('canary-by-header') || undefined,
    byHeaderValue: r.str('canary-by-header-value') || undefined,
    byHeaderPattern: pattern || undefined,
    byCookie: r.str('canary-by-cookie') || undefined,
    weight: r.int('canary-weight', 0, weightTotal) ?? 0,
    weightTotal,
  };
}

function seconds(r: Reader, name: string, fallbackMs: number): number {
  const s = r.int(name, 1, 86_400);
  return s === undefined ? fallbackMs : s * 1000;
}

/** Reads the annotations of one Ingress. */
export function parseAnnotations(annotations: Record<string, string>): { config: IngressConfig; problems: AnnotationProblem[] } {
  const r = new Reader(annotations);
  const d = DEFAULT_CONFIG;
  const size = r.str('proxy-body-size');
  let bodySizeLimit = d.bodySizeLimit;
  if (size !== undefined) bodySizeLimit = parseSize(size) ?? r.invalid('proxy-body-size', `"${size}" is not a size like 1m, 512k or 0`) ?? d.bodySizeLimit;
  const rewrite = r.str('rewrite-target');
  if (rewrite !== undefined && !rewrite.startsWith('/') && !/^https?:\/\//.test(rewrite)) r.invalid('rewrite-target', `"${rewrite}" must start with /`);
  const config: IngressConfig = {
    rewriteTarget: rewrite && (rewrite.startsWith('/') || /^https?:\/\//.test(rewrite)) ? rewrite : undefined,
    useRegex: r.bool('use-regex') ?? false,
    sslRedirect: r.bool('ssl-redirect') ?? d.sslRedirect,
    forceSslRedirect: r.bool('force-ssl-redirect') ?? d.forceSslRedirect,
    preserveTrailingSlash: r.bool('preserve-trailing-slash') ?? d.preserveTrailingSlash,
    backendProtocol: r.oneOf('backend-protocol', ['HTTP', 'HTTPS'] as const) ?? d.backendProtocol,
    affinity: parseAffinity(r),
    allowSourceRange: r.cidrs('allowlist-source-range') ?? r.cidrs('whitelist-source-range'),
    denySourceRange: r.cidrs('denylist-source-range'),
    bodySizeLimit,
    connectTimeoutMs: seconds(r, 'proxy-connect-timeout', d.connectTimeoutMs),
    readTimeoutMs: seconds(r, 'proxy-read-timeout', d.readTimeoutMs),
    sendTimeoutMs: seconds(r, 'proxy-send-timeout', d.sendTimeoutMs),
    cors: parseCors(r),
    canary: parseCanary(r),
  };
  return { config, problems: r.problems };
}
