import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { Transform } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import httpProxy from 'http-proxy';
import { componentLogger } from '../util/log.js';
import { clientAllowed, hostHasTls, matchRequest, normalizeHost, rewriteUrl, type CompiledRoute, type CompiledTable, type RouteMatch } from './match.js';
import { affinityToken, BalancerState, cookieReader, endpointId, selectEndpoint, useCanary } from './lb.js';
import type { Backend, Endpoint, Target } from './routes.js';
import type { IngressMetrics } from './metrics.js';
import { affinityCookie, corsHeaders, httpsLocation, sendStatus, SERVER_HEADER, type Req, type Res } from './respond.js';
import { normalizeIp } from './cidr.js';

const accessLog = componentLogger('ingress-access');
const log = componentLogger('ingress');

export interface HandlerOptions {
  /** port used in https redirects */
  httpsPort: number;
  accessLog: boolean;
  /** attempts per request on connect failures (nginx proxy_next_upstream_tries) */
  maxTries: number;
  /** passive health: how long a failed endpoint is skipped */
  failTimeoutMs: number;
}

/** Per-request state, kept on the request object under a symbol. */
interface Flight {
  start: number;
  requestId: string;
  tls: boolean;
  route?: CompiledRoute;
  target?: Target;
  backend?: Backend;
  endpoint?: Endpoint;
  tried: Set<string>;
  attempts: number;
  retryable: boolean;
  extraHeaders?: Record<string, string>;
  timedOut?: 'connect' | 'read';
  proxyReq?: http.ClientRequest;
  /** code of the last failed attempt */
  lastError?: string;
  /** the request as forwarded (HTTP/1 view of HTTP/2 requests, rewritten URL, forwarding headers) */
  view?: Req;
  logged?: boolean;
}
const FLIGHT = Symbol('skiff.ingress.flight');
type WithFlight = { [FLIGHT]?: Flight };

const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNRESET_BEFORE_SEND', 'ETIMEDOUT_CONNECT']);
const H2_DROP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

function hasBody(req: Req): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return req.httpVersionMajor === 2 && !['GET', 'HEAD', 'OPTIONS', 'DELETE'].includes(req.method ?? '');
}

/** An HTTP/2 request seen through HTTP/1 eyes (no pseudo-headers), for http-proxy. */
function h1View(req: Req): Req {
  if (req.httpVersionMajor !== 2) return req;
  const url = req.url;
  const method = req.method;
  const headers: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) if (!k.startsWith(':')) headers[k] = v;
  headers.host ??= (req.headers[':authority'] as string | undefined) ?? '';
  const view = Object.create(req) as Req;
  Object.defineProperties(view, { url: { value: url, writable: true }, method: { value: method }, headers: { value: headers } });
  return view;
}

/** Stops a chunked body at the limit: the request fails with 413. */
function bodyLimiter(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(Object.assign(new Error('request body too large'), { code: 'EBODYLIMIT' }));
      else cb(null, chunk);
    },
  });
}

export class RequestHandler {
  private table: CompiledTable;
  private readonly upgraded = new WeakSet<Duplex>();
  readonly state: BalancerState;
  private readonly proxy = httpProxy.createProxyServer({ xfwd: false, ws: true, prependPath: false });
  private readonly agents = {
    HTTP: new http.Agent({ keepAlive: true, maxFreeSockets: 512, timeout: 60_000, scheduling: 'lifo', noDelay: true } as http.AgentOptions),
    HTTPS: new https.Agent({ keepAlive: true, maxFreeSockets: 512, timeout: 60_000, scheduling: 'lifo', rejectUnauthorized: false, noDelay: true } as https.AgentOptions),
  };

  constructor(table: CompiledTable, private readonly opts: HandlerOptions, private readonly metrics: IngressMetrics) {
    this.table = table;
    this.state = new BalancerState(opts.failTimeoutMs);
    this.proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req as Req & WithFlight));
    this.proxy.on('proxyRes', (proxyRes, req) => this.onProxyRes(proxyRes, req as Req & WithFlight));
    this.proxy.on('proxyReqWs', (proxyReq, _req, socket) => proxyReq.once('upgrade', () => this.upgraded.add(socket)));
    this.proxy.on('error', (err) => log.debug({ err: err.message }, 'proxy error'));
  }

  /** Atomically replaces the route table; in-flight requests finish on the old one. */
  swap(table: CompiledTable): void {
    this.table = table;
    this.state.prune(table.backends.keys());
  }

  current(): CompiledTable {
    return this.table;
  }

  close(): void {
    this.agents.HTTP.destroy();
    this.agents.HTTPS.destroy();
    this.proxy.close();
  }

  readonly handle = (req: Req, res: Res): void => {
    const tls = (req.socket as TLSSocket).encrypted === true;
    const hostHeader = (req.headers.host ?? req.headers[':authority']) as string | undefined;
    const incomingId = req.headers['x-request-id'];
    const flight: Flight = {
      start: performance.now(),
      requestId: typeof incomingId === 'string' && /^[\w.-]{1,128}$/.test(incomingId) ? incomingId : randomUUID().replace(/-/g, ''),
      tls,
      tried: new Set(),
      attempts: 0,
      retryable: !hasBody(req),
    };
    (req as Req & WithFlight)[FLIGHT] = flight;
    res.once('finish', () => this.done(req, res, flight));
    res.once('close', () => this.done(req, res, flight));
    const table = this.table;
    const m = matchRequest(table, hostHeader, req.url ?? '/');
    if (!m) return sendStatus(res, 404);
    flight.route = m.route;
    const r = m.route;
    if (!clientAllowed(r, normalizeIp(req.socket.remoteAddress ?? ''))) return sendStatus(res, 403);
    const host = normalizeHost(hostHeader);
    if (!tls && (r.config.forceSslRedirect || (r.config.sslRedirect && host !== '' && hostHasTls(table, host)))) {
      return sendStatus(res, 308, { location: httpsLocation(host, this.opts.httpsPort, req.url ?? '/', r.config.preserveTrailingSlash) });
    }
    if (r.config.cors) {
      const ch = corsHeaders(r.config.cors, req.headers.origin);
      if (req.method === 'OPTIONS') return sendStatus(res, 204, { ...ch, 'content-type': 'text/plain charset=UTF-8', 'content-length': '0' });
      if (ch) flight.extraHeaders = { ...ch };
    }
    const limit = r.config.bodySizeLimit;
    if (limit > 0 && Number(req.headers['content-length'] ?? 0) > limit) return sendStatus(res, 413, { connection: 'close' });
    this.pickTarget(req, flight, m);
    this.forward(req, res, flight, m);
  };

  private pickTarget(req: Req, flight: Flight, m: RouteMatch): void {
    const r = m.route;
    const cookies = cookieReader(req.headers.cookie);
    const canary = r.canary && useCanary(r.canary.config, (n) => headerValue(req, n), cookies, Math.random, r.canaryPattern);
    flight.target = canary ? r.canary!.target : r.target;
    flight.backend = flight.target.backendId ? this.table.backends.get(flight.target.backendId) : undefined;
    const aff = r.config.affinity;
    if (!aff || !flight.backend) return;
    const wanted = cookies(aff.cookieName);
    const ep = selectEndpoint(flight.backend, this.state, { now: Date.now(), affinity: wanted });
    if (!ep) return;
    flight.endpoint = ep;
    const token = affinityToken(ep);
    if (token !== wanted) (flight.extraHeaders ??= {})['set-cookie'] = affinityCookie(aff, token, r.re ? '/' : r.path, Date.now());
  }

  private forward(req: Req, res: Res, flight: Flight, m: RouteMatch): void {
    const backend = flight.backend;
    const ep = flight.endpoint ?? (backend && selectEndpoint(backend, this.state, { now: Date.now(), exclude: flight.tried }));
    flight.endpoint = undefined;
    if (!backend || !ep) return sendStatus(res, flight.lastError ? errorStatus(flight.lastError) : 503);
    flight.endpoint = ep;
    flight.tried.add(endpointId(ep));
    let view = flight.view;
    if (!view) {
      view = flight.view = h1View(req);
      this.setForwardHeaders(view, flight, m);
    }
    const limit = m.route.config.bodySizeLimit;
    const chunked = limit > 0 && req.headers['content-length'] === undefined && !flight.retryable;
    const buffer = chunked ? req.pipe(bodyLimiter(limit)) : undefined;
    buffer?.once('error', (err) => {
      flight.proxyReq?.destroy();
      this.onError(err, req, res, flight, m);
    });
    const protocol = backend.protocol === 'HTTPS' ? 'https:' : 'http:';
    this.proxy.web(
      view as http.IncomingMessage,
      res as http.ServerResponse,
      { target: { protocol, host: ep.address, port: ep.port } as unknown as string, agent: this.agents[backend.protocol], secure: false, buffer },
      (err: NodeJS.ErrnoException) => this.onError(err, req, res, flight, m),
    );
  }

  private setForwardHeaders(view: Req, flight: Flight, m: RouteMatch): void {
    const h = view.headers as Record<string, string | string[] | undefined>;
    const ip = normalizeIp(view.socket.remoteAddress ?? '');
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${ip}` : ip;
    h['x-forwarded-proto'] = flight.tls ? 'https' : 'http';
    h['x-forwarded-host'] = h.host ?? '';
    h['x-forwarded-port'] = String(view.socket.localPort ?? '');
    h['x-real-ip'] = ip;
    h['x-request-id'] = flight.requestId;
    const r = m.route;
    if (r.config.rewriteTarget) view.url = rewriteUrl(r.config.rewriteTarget, m.captures, view.url ?? '/');
  }

  private onProxyReq(proxyReq: http.ClientRequest, req: Req & WithFlight): void {
    const f = req[FLIGHT];
    const cfg = f?.route?.config;
    if (!f || !cfg) return;
    f.proxyReq = proxyReq;
    // http-proxy emits proxyReq from the request's 'socket' event, so the socket is there already
    const s = proxyReq.socket;
    if (s?.connecting) {
      const t = setTimeout(() => {
        f.timedOut = 'connect';
        proxyReq.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT_CONNECT' }));
      }, cfg.connectTimeoutMs);
      s.once('connect', () => clearTimeout(t));
      s.once('close', () => clearTimeout(t));
    }
    // send timeout while the body is still being sent, read timeout after that
    const sending = !f.retryable && !req.readableEnded;
    proxyReq.setTimeout(sending ? cfg.sendTimeoutMs : cfg.readTimeoutMs, () => {
      f.timedOut = 'read';
      proxyReq.destroy(Object.assign(new Error('upstream timed out'), { code: 'ETIMEDOUT_READ' }));
    });
    if (sending) req.once('end', () => proxyReq.setTimeout(cfg.readTimeoutMs));
  }

  private onProxyRes(proxyRes: http.IncomingMessage, req: Req & WithFlight): void {
    const h = proxyRes.headers;
    h.server ??= SERVER_HEADER;
    const f = req[FLIGHT];
    if (f) {
      h['x-request-id'] ??= f.requestId;
      if (f.extraHeaders) {
        for (const [k, v] of Object.entries(f.extraHeaders)) {
          if (k === 'set-cookie') h['set-cookie'] = [...(h['set-cookie'] ?? []), v];
          else h[k] = v;
        }
      }
    }
    if (req.httpVersionMajor === 2) for (const k of H2_DROP) delete h[k];
  }

  private onError(err: NodeJS.ErrnoException, req: Req, res: Res, f: Flight, m: RouteMatch): void {
    const ep = f.endpoint;
    let code = err.code ?? 'EPROXY';
    if (code === 'ECONNRESET' && !res.headersSent && f.timedOut === undefined) code = 'ECONNRESET_BEFORE_SEND';
    if (code === 'EBODYLIMIT') return sendStatus(res, 413, { connection: 'close' });
    this.metrics.upstreamErrors.inc({ service: f.target?.service ?? '', reason: code });
    if (ep && code !== 'ETIMEDOUT_READ' && code !== 'ECONNRESET_BEFORE_SEND') this.state.markFailed(ep, Date.now());
    if (res.headersSent || req.socket.destroyed) {
      res.destroy();
      return;
    }
    f.attempts++;
    f.lastError = code;
    if (RETRYABLE.has(code) && f.retryable && f.attempts < this.opts.maxTries) {
      f.timedOut = undefined;
      f.endpoint = undefined;
      return this.forward(req, res, f, m);
    }
    sendStatus(res, errorStatus(code));
  }

  private done(req: Req, res: Res, f: Flight): void {
    if (f.logged) return;
    f.logged = true;
    const r = f.route;
    const seconds = (performance.now() - f.start) / 1000;
    const status = res.headersSent ? res.statusCode : 499;
    const labels = { ingress: r?.ingress ?? '', host: r?.host ?? '', path: r?.path ?? '' };
    this.metrics.requests.inc({ ...labels, status: String(status) });
    this.metrics.latency.observe(labels, seconds);
    if (!this.opts.accessLog) return;
    accessLog.info({
      requestId: f.requestId, remote: req.socket?.remoteAddress, method: req.method, host: req.headers.host ?? req.headers[':authority'],
      uri: req.url, proto: `HTTP/${req.httpVersion}`, tls: f.tls, status, ms: Math.round(seconds * 1e4) / 10,
      ingress: r?.ingress, service: f.target?.service, upstream: f.endpoint && endpointId(f.endpoint), tries: f.tried.size,
    }, 'request');
  }

  /** WebSocket and other upgrades: routed like requests, then spliced through to the endpoint. */
  readonly upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const fail = (status: number) => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    socket.on('error', () => socket.destroy());
    const m = matchRequest(this.table, req.headers.host, req.url ?? '/');
    if (!m) return fail(404);
    if (!clientAllowed(m.route, normalizeIp(req.socket.remoteAddress ?? ''))) return fail(403);
    const flight: Flight = { start: performance.now(), requestId: randomUUID().replace(/-/g, ''), tls: (req.socket as TLSSocket).encrypted === true, tried: new Set(), attempts: 0, retryable: false, route: m.route };
    this.pickTarget(req, flight, m);
    const ep = flight.endpoint ?? (flight.backend && selectEndpoint(flight.backend, this.state, { now: Date.now() }));
    if (!flight.backend || !ep) return fail(503);
    flight.endpoint = ep;
    this.setForwardHeaders(req, flight, m);
    const protocol = flight.backend.protocol === 'HTTPS' ? 'https:' : 'http:';
    this.proxy.ws(req, socket, head, { target: { protocol, host: ep.address, port: ep.port } as unknown as string, secure: false }, (err: NodeJS.ErrnoException) => {
      this.metrics.upstreamErrors.inc({ service: flight.target?.service ?? '', reason: err.code ?? 'EPROXY' });
      if (err.code === 'ECONNREFUSED') this.state.markFailed(ep, Date.now());
      if (socket.writable && !this.upgraded.has(socket)) socket.write('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
  };
}

/** 504 for timeouts, 502 for every other upstream failure (as nginx). */
function errorStatus(code: string): number {
  return code === 'ETIMEDOUT_READ' || code === 'ETIMEDOUT_CONNECT' ? 504 : 502;
}

function headerValue(req: Req, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
