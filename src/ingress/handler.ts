import http, { type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { Transform } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import httpProxy from 'http-proxy';
import { pino } from 'pino';
import { componentLogger, logger } from '../util/log.js';
import { clientAllowed, hostHasTls, matchRequest, normalizeHost, rewriteUrl, type CompiledRoute, type CompiledTable, type RouteMatch } from './match.js';
import { affinityToken, BalancerState, cookieReader, endpointId, selectEndpoint, useCanary } from './lb.js';
import type { Backend, Endpoint, Target } from './routes.js';
import type { IngressMetrics, RouteStats } from './metrics.js';
import { affinityCookie, corsHeaders, httpsLocation, sendStatus, SERVER_HEADER, type Req, type Res } from './respond.js';
import { normalizeIp } from './cidr.js';
import { clientHeaders, clientHeadersH2, newRequestId, upstreamHeaders } from './forward.js';
import { REQUEST_ID } from './h1.js';

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

/** Per-request state. */
interface Flight {
  start: number;
  requestId: string;
  tls: boolean;
  route?: CompiledRoute;
  target?: Target;
  backend?: Backend;
  endpoint?: Endpoint;
  /** endpoints that failed for this request (created on the first failure) */
  tried?: Set<string>;
  /** failed attempts */
  attempts: number;
  /** attempts started */
  sent: number;
  retryable: boolean;
  extraHeaders?: Record<string, string>;
  timedOut?: 'connect' | 'read';
  proxyReq?: http.ClientRequest;
  proxyRes?: http.IncomingMessage;
  /** code of the last failed attempt */
  lastError?: string;
  /** headers and path as forwarded (built once, so retries keep forwarding headers and rewrites) */
  upstreamHeaders?: string[];
  upstreamPath?: string;
  logged?: boolean;
}

export const RETRYABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNRESET_BEFORE_SEND', 'ETIMEDOUT_CONNECT']);
const BODYLESS_H2 = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE']);

function hasBody(req: Req): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return req.httpVersionMajor === 2 && !BODYLESS_H2.has(req.method ?? '');
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

/**
 * The request pipeline. Plain HTTP requests (HTTP/1.1 and HTTP/2 clients) go through a lean
 * forwarder on node:http's keep-alive agents; WebSocket and other upgrades go through http-proxy.
 */
export class RequestHandler {
  private table: CompiledTable;
  private readonly upgraded = new WeakSet<Duplex>();
  readonly state: BalancerState;
  private readonly wsProxy = httpProxy.createProxyServer({ xfwd: false, ws: true, prependPath: false });
  private readonly agents = {
    HTTP: new http.Agent({ keepAlive: true, maxFreeSockets: 512, timeout: 60_000, scheduling: 'lifo', noDelay: true } as http.AgentOptions),
    HTTPS: new https.Agent({ keepAlive: true, maxFreeSockets: 512, timeout: 60_000, scheduling: 'lifo', rejectUnauthorized: false, noDelay: true } as https.AgentOptions),
  };
  readonly noRoute: RouteStats;
  readonly access?: AccessLog;

  constructor(table: CompiledTable, readonly opts: HandlerOptions, readonly metrics: IngressMetrics) {
    this.table = table;
    this.state = new BalancerState(opts.failTimeoutMs);
    this.noRoute = metrics.stats('', '', '');
    if (opts.accessLog) this.access = new AccessLog();
    this.wsProxy.on('proxyReqWs', (proxyReq, _req, socket) => proxyReq.once('upgrade', () => this.upgraded.add(socket)));
    this.wsProxy.on('error', (err) => log.debug({ err: err.message }, 'proxy error'));
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
    this.wsProxy.close();
    this.access?.close();
  }

  readonly handle = (req: Req, res: Res): void => {
    const tls = (req.socket as TLSSocket).encrypted === true;
    const headers = req.headers;
    const hostHeader = (headers.host ?? headers[':authority']) as string | undefined;
    const incomingId = headers['x-request-id'];
    const flight: Flight = {
      start: performance.now(),
      requestId: typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : newRequestId(),
      tls,
      attempts: 0,
      sent: 0,
      retryable: !hasBody(req),
    };
    res.once('close', () => this.done(req, res, flight));
    const table = this.table;
    const m = matchRequest(table, hostHeader, req.url ?? '/');
    if (!m) return sendStatus(res, 404);
    flight.route = m.route;
    const r = m.route;
    const cfg = r.config;
    const own = denyOrRedirect(table, r, { tls, host: hostHeader, target: req.url ?? '/', clientIp: () => normalizeIp(req.socket.remoteAddress ?? ''), httpsPort: this.opts.httpsPort });
    if (own) return sendStatus(res, own.status, own.location ? { location: own.location } : {});
    if (cfg.cors) {
      const ch = corsHeaders(cfg.cors, headers.origin);
      if (req.method === 'OPTIONS') return sendStatus(res, 204, { ...ch, 'content-type': 'text/plain charset=UTF-8', 'content-length': '0' });
      if (ch) flight.extraHeaders = { ...ch };
    }
    const limit = cfg.bodySizeLimit;
    if (limit > 0 && Number(headers['content-length'] ?? 0) > limit) return sendStatus(res, 413, { connection: 'close' });
    this.pickTarget(req, flight, m);
    this.forward(req, res, flight, m, hostHeader);
  };

  private pickTarget(req: Req, flight: Flight, m: RouteMatch): void {
    const r = m.route;
    const aff = r.config.affinity;
    if (!r.canary && !aff) {
      flight.target = r.target;
      flight.backend = r.target.backendId ? this.table.backends.get(r.target.backendId) : undefined;
      return;
    }
    const cookies = cookieReader(req.headers.cookie);
    const canary = r.canary && useCanary(r.canary.config, (n) => headerValue(req, n), cookies, Math.random, r.canaryPattern);
    flight.target = canary ? r.canary!.target : r.target;
    flight.backend = flight.target.backendId ? this.table.backends.get(flight.target.backendId) : undefined;
    if (!aff || !flight.backend) return;
    const wanted = cookies(aff.cookieName);
    const ep = selectEndpoint(flight.backend, this.state, { now: Date.now(), affinity: wanted });
    if (!ep) return;
    flight.endpoint = ep;
    const token = affinityToken(ep);
    if (token !== wanted) (flight.extraHeaders ??= {})['set-cookie'] = affinityCookie(aff, token, r.re ? '/' : r.path, Date.now());
  }

  private forward(req: Req, res: Res, f: Flight, m: RouteMatch, hostHeader: string | undefined): void {
    const backend = f.backend;
    const ep = f.endpoint ?? (backend && selectEndpoint(backend, this.state, { now: Date.now(), exclude: f.tried }));
    f.endpoint = undefined;
    if (!backend || !ep) return sendStatus(res, f.lastError ? errorStatus(f.lastError) : 503);
    f.endpoint = ep;
    if (!f.upstreamHeaders) {
      const ip = normalizeIp(req.socket.remoteAddress ?? '');
      f.upstreamHeaders = upstreamHeaders(req.headers, { host: hostHeader ?? '', fallbackHost: endpointId(ep), clientIp: ip, tls: f.tls, port: String(req.socket.localPort ?? ''), requestId: f.requestId });
      const rewrite = m.route.config.rewriteTarget;
      f.upstreamPath = rewrite ? rewriteUrl(rewrite, m.captures, req.url ?? '/') : req.url ?? '/';
    }
    const limit = m.route.config.bodySizeLimit;
    const chunked = limit > 0 && req.headers['content-length'] === undefined && !f.retryable;
    const body = chunked ? req.pipe(bodyLimiter(limit)) : undefined;
    body?.once('error', (err) => {
      const pr = f.proxyReq;
      f.proxyReq = undefined; // its own error from the destroy below is not this request's answer
      pr?.destroy();
      this.onError(err, req, res, f, m, undefined, hostHeader);
    });
    this.send(req, res, f, m, ep, backend, body, hostHeader);
  }

  /** One attempt: a request on the endpoint's keep-alive pool, the response streamed back. */
  private send(req: Req, res: Res, f: Flight, m: RouteMatch, ep: Endpoint, backend: Backend, body: Readable | undefined, hostHeader: string | undefined): void {
    const cfg = m.route.config;
    // idle timeout of the upstream socket: send timeout while a body is still coming, read timeout after
    const sending = !f.retryable && !req.readableEnded;
    const options: http.RequestOptions = {
      host: ep.address, port: ep.port, method: req.method, path: f.upstreamPath, timeout: sending ? cfg.sendTimeoutMs : cfg.readTimeoutMs,
      headers: f.upstreamHeaders as unknown as http.OutgoingHttpHeaders, agent: this.agents[backend.protocol], setHost: false,
    };
    const proxyReq = backend.protocol === 'HTTPS' ? https.request(options) : http.request(options);
    f.proxyReq = proxyReq;
    f.proxyRes = undefined;
    f.sent++;
    proxyReq.on('error', (err: NodeJS.ErrnoException) => this.onError(err, req, res, f, m, proxyReq, hostHeader));
    proxyReq.once('socket', (s: Socket) => this.armConnectTimeout(proxyReq, s, f, cfg.connectTimeoutMs));
    proxyReq.once('timeout', () => {
      f.timedOut = 'read';
      proxyReq.destroy(Object.assign(new Error('upstream timed out'), { code: 'ETIMEDOUT_READ' }));
    });
    if (sending) req.once('end', () => proxyReq.setTimeout(cfg.readTimeoutMs));
    proxyReq.on('response', (pres) => this.respond(pres, proxyReq, req, res, f));
    if (f.retryable) proxyReq.end();
    else (body ?? (req as Readable)).pipe(proxyReq);
  }

  /** Connect timeout, for a new connection only (a pooled one is connected already). */
  private armConnectTimeout(proxyReq: http.ClientRequest, s: Socket, f: Flight, ms: number): void {
    if (!s.connecting) return;
    const t = setTimeout(() => {
      f.timedOut = 'connect';
      proxyReq.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'ETIMEDOUT_CONNECT' }));
    }, ms);
    s.once('connect', () => clearTimeout(t));
    s.once('close', () => clearTimeout(t));
  }

  private respond(pres: http.IncomingMessage, proxyReq: http.ClientRequest, req: Req, res: Res, f: Flight): void {
    if (f.proxyReq !== proxyReq || f.logged) {
      pres.resume();
      return;
    }
    f.proxyRes = pres;
    pres.on('error', () => res.destroy());
    const extras = { server: SERVER_HEADER, requestId: f.requestId, extra: f.extraHeaders };
    const status = pres.statusCode ?? 502;
    if (req.httpVersionMajor === 2) (res as Http2ServerResponse).writeHead(status, clientHeadersH2(pres.headers, extras));
    else (res as ServerResponse).writeHead(status, pres.statusMessage, clientHeaders(pres.rawHeaders, extras));
    pres.pipe(res as Writable);
  }

  private onError(err: NodeJS.ErrnoException, req: Req, res: Res, f: Flight, m: RouteMatch, proxyReq: http.ClientRequest | undefined, hostHeader: string | undefined): void {
    if ((proxyReq && f.proxyReq !== proxyReq) || f.logged) return; // a superseded attempt, or the client is gone
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
    if (ep) (f.tried ??= new Set()).add(endpointId(ep));
    if (RETRYABLE.has(code) && f.retryable && f.attempts < this.opts.maxTries) {
      f.timedOut = undefined;
      f.endpoint = undefined;
      return this.forward(req, res, f, m, hostHeader);
    }
    sendStatus(res, errorStatus(code));
  }

  private done(req: Req, res: Res, f: Flight): void {
    if (f.logged) return;
    f.logged = true;
    // the client went away before the upstream response was complete: stop the upstream request
    if (f.proxyReq && !f.proxyRes?.complete) f.proxyReq.destroy();
    const r = f.route;
    const seconds = (performance.now() - f.start) / 1000;
    const status = res.headersSent ? res.statusCode : 499;
    const stats = r ? (r.stats ??= this.metrics.stats(r.ingress, r.host, r.path)) : this.noRoute;
    stats.record(status, seconds);
    this.access?.write({
      requestId: f.requestId, remote: req.socket?.remoteAddress, method: req.method, host: req.headers.host ?? req.headers[':authority'],
      uri: req.url, proto: `HTTP/${req.httpVersion}`, tls: f.tls, status, ms: Math.round(seconds * 1e4) / 10,
      ingress: r?.ingress, service: f.target?.service, upstream: f.endpoint && endpointId(f.endpoint), tries: f.sent,
    });
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
    const flight: Flight = { start: performance.now(), requestId: newRequestId(), tls: (req.socket as TLSSocket).encrypted === true, attempts: 0, sent: 1, retryable: false, route: m.route };
    this.pickTarget(req, flight, m);
    const ep = flight.endpoint ?? (flight.backend && selectEndpoint(flight.backend, this.state, { now: Date.now() }));
    if (!flight.backend || !ep) return fail(503);
    flight.endpoint = ep;
    this.setForwardHeaders(req, flight, m);
    const protocol = flight.backend.protocol === 'HTTPS' ? 'https:' : 'http:';
    this.wsProxy.ws(req, socket, head, { target: { protocol, host: ep.address, port: ep.port } as unknown as string, secure: false }, (err: NodeJS.ErrnoException) => {
      this.metrics.upstreamErrors.inc({ service: flight.target?.service ?? '', reason: err.code ?? 'EPROXY' });
      if (err.code === 'ECONNREFUSED') this.state.markFailed(ep, Date.now());
      if (socket.writable && !this.upgraded.has(socket)) socket.write('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
  };

  /** Forwarding headers and rewrite on the upgrade request itself (http-proxy forwards req.headers). */
  private setForwardHeaders(req: http.IncomingMessage, flight: Flight, m: RouteMatch): void {
    const h = req.headers;
    const ip = normalizeIp(req.socket.remoteAddress ?? '');
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${ip}` : ip;
    h['x-forwarded-proto'] = flight.tls ? 'https' : 'http';
    h['x-forwarded-host'] = h.host ?? '';
    h['x-forwarded-port'] = String(req.socket.localPort ?? '');
    h['x-real-ip'] = ip;
    h['x-request-id'] = flight.requestId;
    const r = m.route;
    if (r.config.rewriteTarget) req.url = rewriteUrl(r.config.rewriteTarget, m.captures, req.url ?? '/');
  }
}

/**
 * The JSON access log: pino on its own asynchronous, buffered destination (one write per 4 KiB
 * or per second instead of one per request).
 */
export class AccessLog {
  private readonly dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  private readonly log = pino({ level: logger.level, base: { pid: process.pid, component: 'ingress-access' }, timestamp: pino.stdTimeFunctions.isoTime }, this.dest);
  private readonly timer = setInterval(() => this.dest.flush(), 1000).unref();

  write(entry: Record<string, unknown>): void {
    this.log.info(entry, 'request');
  }

  close(): void {
    clearInterval(this.timer);
    try {
      this.dest.flushSync();
    } catch {
      // not ready yet or already closed: nothing buffered worth failing over
    }
  }
}

/**
 * The answers a route gives before any upstream, the same on both paths (node:http and the fast
 * path): 403 for a client outside its source ranges, 308 to HTTPS for a host with TLS (or with
 * force-ssl-redirect) reached over plain HTTP; undefined: go on.
 */
export function denyOrRedirect(
  table: CompiledTable,
  r: CompiledRoute,
  req: { tls: boolean; host: string | undefined; target: string; clientIp: () => string; httpsPort: number },
): { status: 403 | 308; location?: string } | undefined {
  const cfg = r.config;
  if ((r.allow || r.deny) && !clientAllowed(r, req.clientIp())) return { status: 403 };
  if (!req.tls && (cfg.forceSslRedirect || (cfg.sslRedirect && table.tlsHosts.size > 0))) {
    const host = normalizeHost(req.host);
    if (cfg.forceSslRedirect || (host !== '' && hostHasTls(table, host))) return { status: 308, location: httpsLocation(host, req.httpsPort, req.target, cfg.preserveTrailingSlash) };
  }
  return undefined;
}

/** 504 for timeouts, 502 for every other upstream failure (as nginx). */
export function errorStatus(code: string): number {
  return code === 'ETIMEDOUT_READ' || code === 'ETIMEDOUT_CONNECT' ? 504 : 502;
}

function headerValue(req: Req, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
