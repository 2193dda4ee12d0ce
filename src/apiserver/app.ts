import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { KubeObject } from '../api/object.js';
import type { Store } from '../store/types.js';
import { ApiCore } from './core.js';
import { errors, StatusError } from './errors.js';
import { MAX_BODY } from './body.js';
import { aggregatedDiscovery, AGGREGATED_CT, legacyApiVersions, legacyGroup, legacyGroupList, resourceList, VERSION_INFO } from './discovery.js';
import { openapiGroupVersion, openapiRoot } from './openapi.js';
import { handleCreate, handleDelete, handleGet, handlePatch, handleUpdate, parseResourcePath, type RestContext } from './rest.js';
import type { ApiserverHooks, RequestAttributes, UserInfo } from './hooks.js';
import type { ValueTransformer } from './storage.js';
import { renderMetrics, counter, histogram } from '../util/metrics.js';
import { componentLogger } from '../util/log.js';
import { installProtobufDecoder } from './protobuf-decode.js';
import { ensureKubernetesService } from './bootstrap.js';

export interface BuildOptions {
  store: Store;
  serviceCIDR?: string;
  nodePortRange?: [number, number];
  transformer?: ValueTransformer;
  hooks?: ApiserverHooks;
  /** where clients reach this apiserver (the kubernetes Service's endpoints) */
  advertise?: { address: string; port: number };
  https?: import('node:https').ServerOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    user?: UserInfo;
  }
}

const log = componentLogger('apiserver');
const requests = counter({ name: 'skiff_apiserver_requests_total', help: 'API requests by verb, resource and code', labelNames: ['verb', 'resource', 'code'] as const });
const latency = histogram({ name: 'skiff_apiserver_request_duration_seconds', help: 'API request latency', labelNames: ['verb'] as const, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5] });

const ANONYMOUS_OK = ['/healthz', '/livez', '/readyz', '/version'];
const ANONYMOUS_ADMIN: UserInfo = { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] };

/** Kubernetes verb of an HTTP request. */
export function verbOf(method: string, parsed: ReturnType<typeof parseResourcePath>, query: Record<string, unknown>): string {
  const m = method.toUpperCase();
  if (!parsed) return m.toLowerCase();
  switch (m) {
    case 'GET':
    case 'HEAD':
      if (query.watch === 'true' || query.watch === '1') return 'watch';
      return parsed.name ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return parsed.name ? 'delete' : 'deletecollection';
    default:
      return m.toLowerCase();
  }
}

/** Builds the apiserver (not listening). `app.core` exposes the API semantics for bootstrap. */
export async function build(opts: BuildOptions): Promise<FastifyInstance & { core: ApiCore }> {
  const base = { logger: false, bodyLimit: MAX_BODY, routerOptions: { maxParamLength: 1000 }, return503OnClosing: false, forceCloseConnections: true };
  const app = (opts.https ? Fastify({ ...base, https: opts.https }) : Fastify(base)) as unknown as FastifyInstance;
  const core = new ApiCore(opts.store, { serviceCIDR: opts.serviceCIDR, nodePortRange: opts.nodePortRange, transformer: opts.transformer });
  await core.bootstrap();
  // records of ClusterIPs/NodePorts whose Service never got written (a crash between the two) are reclaimed
  const repair = setInterval(() => void core.repairAllocations().catch((err: unknown) => log.warn({ err }, 'allocation repair failed')), 3 * 60_000);
  repair.unref();
  app.addHook('onClose', async () => clearInterval(repair));
  installProtobufDecoder();
  if (opts.advertise) await ensureKubernetesService(core, opts.advertise);
  const hooks = opts.hooks ?? {};
  const anonymousPaths = hooks.anonymousPaths ?? ANONYMOUS_OK;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    let se: StatusError;
    const e = err as Error & { code?: string; statusCode?: number };
    if (err instanceof StatusError) se = err;
    else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') se = errors.tooLarge();
    else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') se = errors.unsupportedMediaType(String(req.headers['content-type']));
    else if (e.statusCode && e.statusCode < 500) se = new StatusError(e.statusCode, e.statusCode === 401 ? 'Unauthorized' : e.statusCode === 403 ? 'Forbidden' : e.statusCode === 429 ? 'TooManyRequests' : 'BadRequest', e.message);
    else {
      log.error({ err, url: req.url, method: req.method }, 'internal error');
      se = errors.internal(e.message);
    }
    if (se.code === 429 && se.details?.retryAfterSeconds) void reply.header('Retry-After', String(se.details.retryAfterSeconds));
    void reply.code(se.code).type('application/json').send(se.toStatus());
  });

  app.addHook('onRequest', async (req) => {
    (req as unknown as { t0: number }).t0 = performance.now();
    if (!hooks.authenticator) {
      req.user = ANONYMOUS_ADMIN;
      return;
    }
    const path = req.url.split('?')[0];
    const user = await hooks.authenticator.authenticate({ headers: req.headers, socket: req.raw.socket, url: req.url });
    if (!user) {
      if (anonymousPaths.includes(path)) {
        req.user = { username: 'system:anonymous', groups: ['system:unauthenticated'] };
        return;
      }
      throw errors.unauthorized();
    }
    req.user = user;
    if (hooks.authorizer) {
      const attrs = attributesOf(req);
      const d = await hooks.authorizer.authorize(attrs);
      if (!d.allowed) throw errors.forbidden(forbiddenMessage(attrs, d.reason));
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const t0 = (req as unknown as { t0?: number }).t0;
    const parsed = tryParse(req);
    const verb = verbOf(req.method, parsed, req.query as Record<string, unknown>);
    requestCounter(verb, parsed?.info.resource ?? 'nonresource', reply.statusCode).inc();
    if (t0 !== undefined && verb !== 'watch') latencyOf(verb).observe((performance.now() - t0) / 1000);
  });

  const admit: RestContext['admit'] = async (attrs, operation, object, oldObject, dryRun) => {
    for (const h of hooks.admission ?? []) await h({ attrs, operation, object, oldObject, dryRun: !!dryRun });
  };
  const ctx: RestContext = { core, admit, admits: (hooks.admission ?? []).length > 0, attrs: attributesOf };

  app.get('/version', async () => VERSION_INFO);
  for (const p of ['/healthz', '/livez', '/readyz']) {
    app.get(p, async (_req, reply) => {
      await core.store.currentRevision().catch(() => {
        throw errors.serviceUnavailable('storage is not reachable');
      });
      return reply.type('text/plain').send('ok');
    });
  }
  app.get('/metrics', async (_req, reply) => {
    const m = await renderMetrics();
    return reply.type(m.contentType).send(m.body);
  });
  const discovery = (core0: boolean) => async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    if (/as=APIGroupDiscoveryList/.test(String(req.headers.accept ?? ''))) return reply.type(AGGREGATED_CT).header('Vary', 'Accept').send(JSON.stringify(aggregatedDiscovery(core0)));
    return core0 ? legacyApiVersions(`${req.hostname}`) : legacyGroupList();
  };
  app.get('/api', discovery(true));
  app.get('/apis', discovery(false));
  app.get('/api/v1', async () => resourceList('', 'v1'));
  app.get('/apis/:group', async (req) => {
    const g = legacyGroup((req.params as { group: string }).group);
    if (!g) throw errors.notFound('', '', '');
    return g;
  });
  app.get('/apis/:group/:version', async (req) => {
    const { group, version } = req.params as { group: string; version: string };
    const r = resourceList(group, version);
    if (!r) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    return r;
  });
  app.get('/openapi/v3', async () => openapiRoot());
  app.get('/openapi/v3/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    const segs = rest.split('/');
    const [group, version] = segs[0] === 'api' ? ['', segs[1]] : [segs[1], segs[2]];
    const doc = openapiGroupVersion(group, version);
    if (!doc) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    return reply.type('application/json').header('Cache-Control', 'public, immutable').header('Etag', `"${doc.hash}"`).send(doc.body);
  });
  app.get('/openapi/v2', async () => {
    throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
  });

  for (const plugin of hooks.plugins ?? []) await plugin(app);

  const resourceRoute = async (req: FastifyRequest, reply: import('fastify').FastifyReply): Promise<unknown> => {
    const p = parsedPathOf(req);
    if (!p) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return handleGet(ctx, req, reply, p);
      case 'POST':
        return handleCreate(ctx, req, reply, p);
      case 'PUT':
        return handleUpdate(ctx, req, p, reply);
      case 'PATCH':
        return handlePatch(ctx, req, reply, p);
      case 'DELETE':
        return handleDelete(ctx, req, p);
      default:
        throw errors.methodNotAllowed(`method ${req.method} is not supported`);
    }
  };
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/api/v1/*', handler: resourceRoute });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/apis/:group/:version/*', handler: resourceRoute });

  return Object.assign(app, { core });
}

/** Authorization attributes of a request. */
export function attributesOf(req: FastifyRequest): RequestAttributes {
  const user = req.user ?? { username: 'system:anonymous', groups: ['system:unauthenticated'] };
  const path = req.url.split('?')[0];
  const parsed = tryParse(req);
  if (!parsed) return { user, verb: req.method.toLowerCase(), isResourceRequest: false, path, apiGroup: '', apiVersion: '' };
  // exec/attach/portforward arrive as WebSocket GETs; Kubernetes authorizes them as `create`.
  const streaming = parsed.info.resource === 'pods' && ['exec', 'attach', 'portforward'].includes(parsed.subresource ?? '');
  return {
    user,
    verb: streaming ? 'create' : verbOf(req.method, parsed, req.query as Record<string, unknown>),
    isResourceRequest: true,
    path,
    apiGroup: parsed.group,
    apiVersion: parsed.version,
    namespace: parsed.namespace ?? (parsed.info.resource === 'namespaces' ? parsed.name : undefined),
    resource: parsed.info.resource,
    subresource: parsed.subresource,
    name: parsed.name,
  };
}

/** parseResourcePath of a request's URL, parsed once per request (route, authorization, metrics). */
const parsedPaths = new WeakMap<FastifyRequest, { path: ReturnType<typeof parseResourcePath> } | { err: unknown }>();

function parsedPathOf(req: FastifyRequest): ReturnType<typeof parseResourcePath> {
  let r = parsedPaths.get(req);
  if (!r) {
    try {
      r = { path: parseResourcePath(req.url) };
    } catch (err) {
      r = { err };
    }
    parsedPaths.set(req, r);
  }
  if ('err' in r) throw r.err;
  return r.path;
}

function tryParse(req: FastifyRequest): ReturnType<typeof parseResourcePath> {
  try {
    return parsedPathOf(req);
  } catch {
    return null;
  }
}

/** Metric children by label values: prom-client hashes label objects on every call otherwise. */
const requestCounters = new Map<string, ReturnType<typeof requests.labels>>();
function requestCounter(verb: string, resource: string, code: number): ReturnType<typeof requests.labels> {
  const key = `${verb} ${resource} ${code}`;
  let c = requestCounters.get(key);
  if (!c) requestCounters.set(key, (c = requests.labels({ verb, resource, code: String(code) })));
  return c;
}
const latencies = new Map<string, ReturnType<typeof latency.labels>>();
function latencyOf(verb: string): ReturnType<typeof latency.labels> {
  let h = latencies.get(verb);
  if (!h) latencies.set(verb, (h = latency.labels({ verb })));
  return h;
}

function forbiddenMessage(a: RequestAttributes, reason?: string): string {
  if (!a.isResourceRequest) return `forbidden: User "${a.user.username}" cannot ${a.verb} path "${a.path}"${reason ? `: ${reason}` : ''}`;
  const res = `${a.resource}${a.subresource ? '/' + a.subresource : ''}${a.apiGroup ? '.' + a.apiGroup : ''}`;
  const target = a.name ? `${res} "${a.name}"` : res;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${target} is forbidden: User "${a.user.username}" cannot ${a.verb} resource "${a.resource}${a.subresource ? '/' + a.subresource : ''}" in API group "${a.apiGroup}" ${scope}${reason ? `: ${reason}` : ''}`;
}

export type { KubeObject };
