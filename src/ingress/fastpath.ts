import net, { type Server as NetServer, type Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { normalizeIp } from './cidr.js';
import { newRequestId } from './forward.js';
import { denyOrRedirect, errorStatus, RETRYABLE, type RequestHandler } from './handler.js';
import { ChunkedScanner, clientHead, parseRequestHead, parseResponseHead, upstreamHead, type RequestHead, type ResponseHead } from './h1.js';
import { endpointId, selectEndpoint } from './lb.js';
import { matchRequest, rewriteUrl, type CompiledRoute } from './match.js';
import { SERVER_HEADER, statusBody } from './respond.js';
import type { Backend, Endpoint, Target } from './routes.js';

/**
 * The fast path: keep-alive HTTP/1.1 requests handled on the raw client socket and forwarded over
 * pooled raw upstream sockets, without node:http's parser objects, IncomingMessage/ServerResponse/
 * ClientRequest streams and header objects. It serves the common case only: a request without a
 * body or with Content-Length, on a route without canary, affinity, CORS or an HTTPS backend.
 * Anything else (Transfer-Encoding, Upgrade/WebSocket, Expect, HTTP/1.0, h2 by ALPN, those
 * annotations) is handed to the node:http server at a request boundary, which then owns the
 * connection. Responses are relayed as they arrive: Content-Length bodies and chunked bodies byte
 * for byte (the chunked scanner only finds the end), close-delimited bodies re-framed as chunked.
 */

interface Limits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
/** unparsed pipelined bytes held while a request is in flight before the client is paused */
const PIPELINE_MAX = 64 * 1024;
/** largest upstream response head */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** idle pooled upstream connections: per endpoint, and how long they are kept */
const MAX_IDLE_PER_ENDPOINT = 512;
const UPSTREAM_IDLE_MS = 60_000;

type Fallback = (s: Socket) => void;

export class FastPath {
  readonly conns = new Set<ClientConn>();
  readonly pool = new UpstreamPool();
  stopping = false;
  private readonly sweep: NodeJS.Timeout;

  constructor(readonly handler: RequestHandler, readonly limits: Limits) {
    const checkMs = Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
    this.sweep = setInterval(() => this.check(), checkMs).unref();
  }

  /**
   * Takes over a server's connection event: sockets `accept` says yes to are served here (and handed
   * to the server's own listeners when the fast path lets go of them), the others go there directly.
   */
  attach(server: NetServer, event: 'connection' | 'secureConnection', accept: (s: Socket) => boolean): void {
    const own = server.listeners(event) as Fallback[];
    server.removeAllListeners(event);
    const fallback: Fallback = (s) => {
      for (const l of own) l.call(server, s);
    };
    server.on(event, (s: Socket) => {
      if (this.stopping || !accept(s)) fallback(s);
      else this.conns.add(new ClientConn(this, s, fallback));
    });
  }

  /** Closes idle connections now and busy ones after their current response. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.sweep);
    for (const c of this.conns) c.closeIfIdle();
    this.pool.close();
  }

  private check(): void {
    const now = performance.now();
    for (const c of this.conns) c.check(now);
  }
}

function hasBareLf(b: Buffer): boolean {
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) if (i === 0 || b[i - 1] !== 13) return true;
  return false;
}

/** ALPN of an HTTPS connection the fast path serves: HTTP/1.1 or none. */
export function isHttp1(s: Socket): boolean {
  const p = (s as TLSSocket).alpnProtocol;
  return p === false || p === 'http/1.1' || p === undefined;
}

/** One client connection served by the fast path. */
class ClientConn {
  /** unparsed bytes (the next request heads and bodies) */
  buf: Buffer | undefined;
  ex: Exchange | undefined;
  /** body bytes of a request answered without its body being read, still to skip */
  discard = 0;
  /** when the first byte of a pending head arrived (0: none pending) */
  headSince = 0;
  idleSince = performance.now();
  /** a request was answered on this connection (idle limit: keepAliveTimeout, before: headersTimeout) */
  served = false;
  /** close after the current response */
  closing = false;
  private readEnded = false;
  private gone = false;
  readonly tls: boolean;
  private ip?: string;
  private localPort?: string;

  constructor(readonly fp: FastPath, readonly sock: Socket, private readonly fallback: Fallback) {
    this.tls = (sock as TLSSocket).encrypted === true;
    sock.setNoDelay(true);
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onClose);
    sock.on('error', this.onError);
    sock.on('drain', this.onDrain);
  }

  clientIp(): string {
    return (this.ip ??= normalizeIp(this.sock.remoteAddress ?? ''));
  }

  port(): string {
    return (this.localPort ??= String(this.sock.localPort ?? ''));
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.gone) return;
    const ex = this.ex;
    if (ex && ex.bodyLeft > 0) {
      const n = Math.min(ex.bodyLeft, chunk.length);
      ex.sendBody(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.ex) this.next();
    else if (this.buf.length > PIPELINE_MAX) this.sock.pause();
  };

  /** The client half-closed: as node:http (allowHalfOpen off), a request in flight is aborted. */
  private readonly onEnd = (): void => {
    this.readEnded = true;
    if (this.ex) {
      this.ex.clientGone();
      this.ex = undefined;
      this.gone = true;
      this.sock.end();
    } else this.next();
  };

  private readonly onClose = (): void => {
    this.gone = true;
    this.fp.conns.delete(this);
    this.ex?.clientGone();
  };

  private readonly onError = (): void => {
    // 'close' follows
  };

  private readonly onDrain = (): void => {
    this.ex?.clientDrained();
  };

  /** Parses and starts the requests waiting in the buffer, one at a time. */
  next(): void {
    while (!this.ex && !this.gone && !this.closing) {
      let buf = this.buf;
      if (buf && this.discard > 0) {
        const n = Math.min(this.discard, buf.length);
        this.discard -= n;
        buf = this.buf = n === buf.length ? undefined : buf.subarray(n);
      }
      if (!buf) break;
      if (this.headSince === 0) this.headSince = performance.now();
      const limit = this.fp.limits.maxHeaderSize;
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        if (buf.length > limit) this.reject(431);
        else if (hasBareLf(buf)) this.reject(400); // would never see a CRLFCRLF
        return;
      }
      if (end + 4 > limit) return this.reject(431);
      const r = parseRequestHead(buf.toString('latin1', 0, end));
      if ('status' in r) return this.reject(r.status);
      if ('slow' in r || !this.start(r.ok, end + 4)) return this.handOff();
    }
    if (!this.ex && !this.gone && (this.readEnded || this.closing)) this.sock.end();
  }

  /** Starts a parsed request; false when it belongs to the slow path (nothing consumed then). */
  private start(h: RequestHead, headLen: number): boolean {
    const handler = this.fp.handler;
    const table = handler.current();
    const m = matchRequest(table, h.host, h.target);
    const r = m?.route;
    const backend = r?.target.backendId ? table.backends.get(r.target.backendId) : undefined;
    if (r && (r.canary || r.config.affinity || r.config.cors || backend?.protocol === 'HTTPS')) return false;
    const buf = this.buf!;
    const bodyInBuf = h.contentLength > 0 ? Math.min(h.contentLength, buf.length - headLen) : 0;
    const body = bodyInBuf > 0 ? buf.subarray(headLen, headLen + bodyInBuf) : undefined;
    const restAt = headLen + bodyInBuf;
    this.buf = restAt === buf.length ? undefined : buf.subarray(restAt);
    this.headSince = 0;
    const t0 = performance.now();
    const requestId = h.requestId ?? newRequestId();
    if (h.close) this.closing = true;
    if (!m || !r) return this.local(h, t0, requestId, 404, undefined, body);
    const cfg = r.config;
    const own = denyOrRedirect(table, r, { tls: this.tls, host: h.host, target: h.target, clientIp: () => this.clientIp(), httpsPort: handler.opts.httpsPort });
    if (own) return this.local(h, t0, requestId, own.status, r, body, own.location ? `location: ${own.location}\r\n` : '');
    if (cfg.bodySizeLimit > 0 && h.contentLength > cfg.bodySizeLimit) {
      this.closing = true;
      return this.local(h, t0, requestId, 413, r, body);
    }
    const ep = backend && selectEndpoint(backend, handler.state, { now: Date.now() });
    if (!backend || !ep) return this.local(h, t0, requestId, 503, r, body);
    const path = cfg.rewriteTarget ? rewriteUrl(cfg.rewriteTarget, m.captures, h.target) : h.target;
    this.ex = new Exchange(this, h, t0, requestId, r, backend, path);
    this.ex.send(ep, body);
    return true;
  }

  /** Answers a request without an upstream (404, 403, 308, 413, 503); its body is skipped. */
  private local(h: RequestHead, t0: number, requestId: string, status: number, route: CompiledRoute | undefined, body: Buffer | undefined, extra = ''): true {
    this.discard = h.contentLength > 0 ? h.contentLength - (body?.length ?? 0) : 0;
    this.writeStatus(status, h.method === 'HEAD', extra);
    this.record(h, t0, requestId, status, route, undefined, undefined, 0);
    this.served = true;
    this.idleSince = performance.now();
    return true;
  }

  writeStatus(status: number, head: boolean, extra = ''): void {
    const body = statusBody(status);
    const close = this.closing || this.fp.stopping ? 'connection: close\r\n' : '';
    this.sock.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nserver: ${SERVER_HEADER}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n${extra}${close}\r\n${head ? '' : body}`, 'latin1');
    if (close) this.closing = true;
  }

  /** A request the parser refuses (400/408/431): answered, then the connection is closed. */
  private reject(status: number): void {
    this.gone = true;
    this.buf = undefined;
    this.sock.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    this.sock.destroySoon();
    this.fp.conns.delete(this);
  }

  /** The node:http server takes the connection over, starting with the unparsed bytes. */
  private handOff(): void {
    const s = this.sock;
    this.gone = true;
    this.fp.conns.delete(this);
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    s.removeListener('error', this.onError);
    s.removeListener('drain', this.onDrain);
    s.pause();
    if (this.buf) s.unshift(this.buf);
    this.buf = undefined;
    this.fallback(s);
    s.resume();
  }

  /** The current exchange is over: next request, or close. */
  done(): void {
    this.ex = undefined;
    this.served = true;
    this.idleSince = performance.now();
    if (this.gone) return;
    if (this.closing || this.fp.stopping) {
      this.closing = true;
      this.buf = undefined;
      this.sock.end();
      return;
    }
    if (this.sock.isPaused()) this.sock.resume();
    this.next();
  }

  record(h: RequestHead, t0: number, requestId: string, status: number, route: CompiledRoute | undefined, target: Target | undefined, ep: Endpoint | undefined, tries: number): void {
    const handler = this.fp.handler;
    const seconds = (performance.now() - t0) / 1000;
    const stats = route ? (route.stats ??= handler.metrics.stats(route.ingress, route.host, route.path)) : handler.noRoute;
    stats.record(status, seconds);
    handler.access?.write({
      requestId, remote: this.sock.remoteAddress, method: h.method, host: h.host, uri: h.target, proto: 'HTTP/1.1', tls: this.tls, status,
      ms: Math.round(seconds * 1e4) / 10, ingress: route?.ingress, service: target?.service, upstream: ep && endpointId(ep), tries,
    });
  }

  closeIfIdle(): void {
    if (!this.ex) this.sock.destroy();
  }

  /** Slowloris and idle limits (as node:http's): 408 on a slow head or body, idle keep-alive closed. */
  check(now: number): void {
    const l = this.fp.limits;
    const ex = this.ex;
    if (ex) {
      if (ex.bodyLeft > 0 && now - ex.t0 > l.requestTimeoutMs) ex.requestTimedOut();
    } else if (this.headSince > 0 && this.buf) {
      if (now - this.headSince > l.headersTimeoutMs) this.reject(408);
    } else if (now - this.idleSince > (this.served ? l.keepAliveTimeoutMs : l.headersTimeoutMs)) this.sock.destroy();
  }
}

const enum Phase { Waiting, Body, Done }

/** One request on its way through an upstream connection (and its retries). */
class Exchange {
  up: UpstreamConn | undefined;
  /** client body bytes not yet read */
  bodyLeft: number;
  private readonly retryable: boolean;
  private readonly isHead: boolean;
  private ep: Endpoint | undefined;
  private phase = Phase.Waiting;
  private res: ResponseHead | undefined;
  /** partial upstream response head */
  private rhead: Buffer | undefined;
  private left = 0;
  private chunks: ChunkedScanner | undefined;
  /** bytes of the response were written to the client */
  private started = false;
  private status = 0;
  private sent = 0;
  private attempts = 0;
  private tried: Set<string> | undefined;
  private staleRetried = false;
  /** the client stopped reading: the upstream socket is paused */
  private upPaused = false;

  constructor(private readonly conn: ClientConn, private readonly h: RequestHead, readonly t0: number, private readonly requestId: string, private readonly route: CompiledRoute, private readonly backend: Backend, private readonly path: string) {
    this.bodyLeft = h.contentLength > 0 ? h.contentLength : 0;
    this.retryable = h.contentLength <= 0;
    this.isHead = h.method === 'HEAD';
  }

  /** One attempt on an endpoint; `body`: the request body bytes read with the head. */
  send(ep: Endpoint, body?: Buffer, fresh = false): void {
    const cfg = this.route.config;
    this.ep = ep;
    this.sent++;
    const up = this.conn.fp.pool.acquire(ep, fresh);
    this.up = up;
    up.ex = this;
    if (!up.reused) up.armConnectTimeout(cfg.connectTimeoutMs);
    up.sock.setTimeout(this.bodyLeft > 0 ? cfg.sendTimeoutMs : cfg.readTimeoutMs);
    const head = upstreamHead(this.h, { path: this.path, fallbackHost: endpointId(ep), clientIp: this.conn.clientIp(), tls: this.conn.tls, port: this.conn.port(), requestId: this.requestId });
    if (body) {
      this.bodyLeft -= body.length;
      up.sock.cork();
      up.sock.write(head, 'latin1');
      if (!up.sock.write(body)) this.conn.sock.pause();
      up.sock.uncork();
      if (this.bodyLeft === 0) up.sock.setTimeout(cfg.readTimeoutMs);
    } else up.sock.write(head, 'latin1');
  }

  /** Client body bytes (never more than bodyLeft). */
  sendBody(chunk: Buffer): void {
    this.bodyLeft -= chunk.length;
    const up = this.up;
    if (!up || this.phase === Phase.Done) return;
    if (!up.sock.write(chunk)) this.conn.sock.pause();
    if (this.bodyLeft === 0) up.sock.setTimeout(this.route.config.readTimeoutMs);
  }

  upstreamDrained(): void {
    if (this.bodyLeft > 0) this.conn.sock.resume();
  }

  clientDrained(): void {
    if (this.upPaused) {
      this.upPaused = false;
      this.up?.sock.resume();
    }
  }

  private write(data: Buffer | string): void {
    if (!this.conn.sock.write(data as Buffer) && this.up) {
      this.upPaused = true;
      this.up.sock.pause();
    }
  }

  upstreamData(up: UpstreamConn, chunk: Buffer): void {
    if (up !== this.up) return;
    up.received = true;
    if (this.phase === Phase.Waiting) {
      const b = this.rhead ? Buffer.concat([this.rhead, chunk]) : chunk;
      const end = b.indexOf(CRLF2);
      if (end < 0) {
        if (b.length > MAX_RESPONSE_HEAD) return this.upstreamFailed(up, 'EPROTO');
        this.rhead = b;
        return;
      }
      this.rhead = undefined;
      const res = parseResponseHead(b.toString('latin1', 0, end), this.isHead);
      if (!res || res.status === 101) return this.upstreamFailed(up, 'EPROTO');
      const rest = end + 4 === b.length ? undefined : b.subarray(end + 4);
      if (res.status < 200) {
        // interim responses (100, 103) are not relayed (as the slow path)
        if (rest) this.upstreamData(up, rest);
        return;
      }
      this.res = res;
      this.status = res.status;
      this.phase = Phase.Body;
      this.started = true;
      if (this.bodyLeft > 0) this.conn.closing = true; // answered before the whole body came: not reused
      const head = clientHead(res, { server: SERVER_HEADER, requestId: this.requestId, close: this.conn.closing || this.conn.fp.stopping });
      if (res.framing === 'length') this.left = res.length;
      else if (res.framing === 'chunked') this.chunks = new ChunkedScanner();
      const s = this.conn.sock;
      s.cork();
      s.write(head, 'latin1');
      if (res.framing === 'none') {
        s.uncork();
        return this.complete(rest === undefined);
      }
      if (rest) this.body(up, rest); // uncorks
      else s.uncork();
      return;
    }
    if (this.phase === Phase.Body) this.body(up, chunk);
  }

  private body(up: UpstreamConn, chunk: Buffer): void {
    const res = this.res!;
    if (res.framing === 'length') {
      if (chunk.length < this.left) {
        this.left -= chunk.length;
        this.write(chunk);
        this.uncork();
        return;
      }
      const exact = chunk.length === this.left;
      this.write(exact ? chunk : chunk.subarray(0, this.left));
      this.left = 0;
      this.uncork();
      return this.complete(exact);
    }
    if (res.framing === 'chunked') {
      const end = this.chunks!.scan(chunk);
      if (end === -2) return this.upstreamFailed(up, 'EPROTO');
      this.write(end < 0 || end === chunk.length ? chunk : chunk.subarray(0, end));
      this.uncork();
      if (end >= 0) this.complete(end === chunk.length);
      return;
    }
    // close-delimited: re-framed as chunked for the client
    if (!this.conn.sock.writableCorked) this.conn.sock.cork();
    this.write(`${chunk.length.toString(16)}\r\n`);
    this.write(chunk);
    this.write('\r\n');
    this.uncork();
  }

  private uncork(): void {
    if (this.conn.sock.writableCorked) this.conn.sock.uncork();
  }

  /** The response is complete; `reusable`: no stray bytes after it. */
  private complete(reusable: boolean): void {
    const up = this.up;
    this.phase = Phase.Done;
    this.up = undefined;
    if (up) {
      up.ex = undefined;
      if (this.upPaused) up.sock.resume();
      if (reusable && this.res!.keepAlive && this.bodyLeft === 0) this.conn.fp.pool.release(up);
      else up.sock.destroy();
    }
    this.finish();
  }

  private finish(): void {
    this.phase = Phase.Done;
    if (this.bodyLeft > 0) {
      this.conn.discard += this.bodyLeft;
      this.bodyLeft = 0;
    }
    this.conn.record(this.h, this.t0, this.requestId, this.status, this.route, this.route.target, this.ep, this.sent);
    this.conn.done();
  }

  /** The upstream connection ended, failed or timed out. */
  upstreamGone(up: UpstreamConn, code: string | undefined): void {
    if (up !== this.up) return;
    if (this.phase === Phase.Body && this.res!.framing === 'close' && code === undefined) {
      this.write('0\r\n\r\n');
      this.up = undefined;
      up.ex = undefined;
      up.sock.destroy();
      return this.finish();
    }
    this.upstreamFailed(up, code ?? 'ECONNRESET');
  }

  /** As the slow path's onError: retry a connection failure on another endpoint, else 502/504. */
  private upstreamFailed(up: UpstreamConn, errCode: string): void {
    this.up = undefined;
    up.ex = undefined;
    up.sock.destroy();
    let code = errCode === 'EPIPE' ? 'ECONNRESET' : errCode;
    if (code === 'ECONNRESET' && !this.started) code = 'ECONNRESET_BEFORE_SEND';
    // a pooled connection the upstream closed while it was idle: once more on a new connection
    if (code === 'ECONNRESET_BEFORE_SEND' && up.reused && !up.received && this.retryable && !this.staleRetried) {
      this.staleRetried = true;
      this.sent--;
      return this.send(this.ep!, undefined, true);
    }
    const handler = this.conn.fp.handler;
    const ep = this.ep!;
    handler.metrics.upstreamErrors.inc({ service: this.route.target.service, reason: code });
    if (code !== 'ETIMEDOUT_READ' && code !== 'ECONNRESET_BEFORE_SEND') handler.state.markFailed(ep, Date.now());
    if (this.started) {
      this.phase = Phase.Done;
      this.conn.sock.destroy();
      return;
    }
    this.attempts++;
    (this.tried ??= new Set()).add(endpointId(ep));
    if (RETRYABLE.has(code) && this.retryable && this.attempts < handler.opts.maxTries) {
      const next = selectEndpoint(this.backend, handler.state, { now: Date.now(), exclude: this.tried });
      if (next) return this.send(next);
    }
    this.answer(errorStatus(code));
  }

  private answer(status: number): void {
    this.status = status;
    this.started = true;
    this.conn.writeStatus(status, this.isHead);
    this.finish();
  }

  /** The whole request did not arrive within requestTimeout. */
  requestTimedOut(): void {
    const up = this.up;
    this.up = undefined;
    if (up) {
      up.ex = undefined;
      up.sock.destroy();
    }
    if (this.started) {
      this.conn.sock.destroy();
      return;
    }
    this.conn.closing = true;
    this.answer(408);
  }

  /** The client connection closed: the upstream request is stopped. */
  clientGone(): void {
    if (this.phase === Phase.Done) return;
    const up = this.up;
    this.up = undefined;
    if (up) {
      up.ex = undefined;
      up.sock.destroy();
    }
    this.phase = Phase.Done;
    this.conn.record(this.h, this.t0, this.requestId, this.started ? this.status : 499, this.route, this.route.target, this.ep, this.sent);
  }
}

/** A raw upstream connection, in use by one exchange or idle in the pool. */
class UpstreamConn {
  ex: Exchange | undefined;
  reused = false;
  /** response bytes arrived for the current exchange */
  received = false;
  idle = false;
  private connectTimer?: NodeJS.Timeout;
  private error?: string;

  constructor(private readonly pool: UpstreamPool, readonly key: string, readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      if (this.ex) this.ex.upstreamData(this, c);
      else sock.destroy(); // bytes on an idle connection: not reusable
    });
    sock.on('end', () => this.gone());
    sock.on('close', () => this.gone());
    sock.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? 'EPROXY';
    });
    sock.on('timeout', () => {
      if (this.ex) {
        this.error = 'ETIMEDOUT_READ';
        this.gone();
      } else sock.destroy();
    });
    sock.on('drain', () => this.ex?.upstreamDrained());
  }

  armConnectTimeout(ms: number): void {
    const t = setTimeout(() => {
      this.error = 'ETIMEDOUT_CONNECT';
      this.gone();
    }, ms);
    this.connectTimer = t;
    this.sock.once('connect', () => clearTimeout(t));
  }

  private gone(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.pool.remove(this);
    if (this.error !== undefined) this.sock.destroy();
    this.ex?.upstreamGone(this, this.error);
  }
}

/** Idle upstream connections per endpoint, newest first (LIFO keeps few connections warm). */
class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConn[]>();

  acquire(ep: Endpoint, fresh: boolean): UpstreamConn {
    const key = endpointId(ep);
    const list = fresh ? undefined : this.idle.get(key);
    while (list && list.length > 0) {
      const c = list.pop()!;
      c.idle = false;
      if (c.sock.destroyed) continue; // ended or closed ones left the pool already ('end'/'close')
      c.reused = true;
      c.received = false;
      return c;
    }
    return new UpstreamConn(this, key, net.connect({ host: ep.address, port: ep.port, noDelay: true }));
  }

  release(c: UpstreamConn): void {
    let list = this.idle.get(c.key);
    if (!list) this.idle.set(c.key, (list = []));
    if (list.length >= MAX_IDLE_PER_ENDPOINT) {
      c.sock.destroy();
      return;
    }
    c.idle = true;
    c.sock.setTimeout(UPSTREAM_IDLE_MS);
    list.push(c);
  }

  remove(c: UpstreamConn): void {
    if (!c.idle) return;
    c.idle = false;
    const list = this.idle.get(c.key);
    const i = list ? list.indexOf(c) : -1;
    if (i >= 0) list!.splice(i, 1);
  }

  close(): void {
    for (const list of this.idle.values()) for (const c of list) c.sock.destroy();
    this.idle.clear();
  }
}
