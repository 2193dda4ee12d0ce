import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { FastPath, isHttp1 } from './fastpath.js';
import { RequestHandler, type HandlerOptions } from './handler.js';
import { compileTable } from './match.js';
import type { IngressMetrics } from './metrics.js';
import type { RouteTable } from './routes.js';
import { CertStore, SERVER_SIGALGS, type PemPair } from './tls.js';
import { SkiffError } from '../util/errors.js';

/**
 * The HTTP and HTTPS listeners of one process, serving from a swappable route table.
 * HTTPS is an HTTP/2 server that also speaks HTTP/1.1 (ALPN), TLS >= 1.2, certificates by SNI.
 */

export interface ListenerLimits {
  /** time allowed to receive the request headers (slowloris), default 20s */
  headersTimeoutMs: number;
  /** time allowed to receive the whole request, default 120s */
  requestTimeoutMs: number;
  /** idle keep-alive connections are closed after this, default 75s */
  keepAliveTimeoutMs: number;
  /** total header bytes, default 16 KiB */
  maxHeaderSize: number;
}

export const DEFAULT_LIMITS: ListenerLimits = { headersTimeoutMs: 20_000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 75_000, maxHeaderSize: 16 * 1024 };

export interface ServerOptions extends HandlerOptions, ListenerLimits {
  defaultCert: PemPair;
  /** serve keep-alive HTTP/1.1 on raw sockets (fastpath.ts); false: node:http for everything */
  fastPath?: boolean;
}

const EMPTY: RouteTable = { hosts: {}, wildcards: {}, backends: {}, sni: {}, certs: {}, tlsHosts: [] };

export class IngressServer {
  readonly handler: RequestHandler;
  readonly certs: CertStore;
  readonly http: http.Server;
  readonly https: http2.Http2SecureServer;
  /** keep-alive HTTP/1.1 on raw sockets; the servers above take what it does not handle */
  readonly fast: FastPath;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly opts: ServerOptions, private readonly metrics: IngressMetrics) {
    this.handler = new RequestHandler(compileTable(EMPTY), opts, metrics);
    this.certs = new CertStore(opts.defaultCert);
    const checkMs = Math.max(100, Math.min(1000, Math.floor(opts.headersTimeoutMs / 4)));
    this.http = http.createServer(
      { maxHeaderSize: opts.maxHeaderSize, headersTimeout: opts.headersTimeoutMs, requestTimeout: opts.requestTimeoutMs, keepAliveTimeout: opts.keepAliveTimeoutMs, connectionsCheckingInterval: checkMs },
      this.handler.handle,
    );
    this.https = http2.createSecureServer(
      {
        allowHTTP1: true,
        noDelay: true,
        minVersion: 'TLSv1.2',
        // a Secret's certificate must win over the default one whatever its key type (see SERVER_SIGALGS)
        sigalgs: SERVER_SIGALGS,
        honorCipherOrder: true,
        cert: opts.defaultCert.cert,
        key: opts.defaultCert.key,
        SNICallback: (servername, cb) => cb(null, this.certs.forServername(servername)),
        maxSessionMemory: 64,
        settings: { maxHeaderListSize: opts.maxHeaderSize },
      },
      this.handler.handle,
    );
    const h1 = this.https as unknown as { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number; maxHeaderSize: number };
    Object.assign(h1, { headersTimeout: opts.headersTimeoutMs, requestTimeout: opts.requestTimeoutMs, keepAliveTimeout: opts.keepAliveTimeoutMs, connectionsCheckingInterval: checkMs, maxHeaderSize: opts.maxHeaderSize });
    this.https.setTimeout(opts.keepAliveTimeoutMs);
    this.fast = new FastPath(this.handler, opts);
    if (opts.fastPath !== false) {
      this.fast.attach(this.http, 'connection', () => true);
      this.fast.attach(this.https, 'secureConnection', isHttp1);
    }
    for (const s of [this.http, this.https] as NetServer[]) {
      s.on('connection', (sock: Socket) => {
        this.sockets.add(sock);
        sock.once('close', () => this.sockets.delete(sock));
      });
      s.on('upgrade', this.handler.upgrade);
    }
    this.https.on('tlsClientError', (_err, sock) => sock.destroy());
  }

  /** Compiles and swaps in a table; returns the secrets whose certificates could not be loaded. */
  swap(table: RouteTable): { failedSecrets: string[]; ms: number } {
    const t0 = performance.now();
    const compiled = compileTable(table);
    const failedSecrets = this.certs.update(table);
    this.handler.swap(compiled);
    const ms = performance.now() - t0;
    this.metrics.swaps.inc();
    this.metrics.swapSeconds.observe(ms / 1000);
    this.metrics.routes.set(countRoutes(table));
    return { failedSecrets, ms };
  }

  /** Listens on the given ports (0 = any) and returns the bound ports. */
  async listen(bindAddress: string, httpPort: number, httpsPort: number): Promise<{ httpPort: number; httpsPort: number }> {
    await Promise.all([listenOn(this.http, httpPort, bindAddress), listenOn(this.https, httpsPort, bindAddress)]);
    return { httpPort: (this.http.address() as AddressInfo).port, httpsPort: (this.https.address() as AddressInfo).port };
  }

  /** Shares listening sockets received from the controller process. */
  async adopt(httpHandle: NetServer, httpsHandle: NetServer): Promise<void> {
    await Promise.all([
      new Promise<void>((resolve) => this.http.listen(httpHandle, resolve)),
      new Promise<void>((resolve) => this.https.listen(httpsHandle, resolve)),
    ]);
  }

  /** Stops accepting, lets in-flight requests finish for up to graceMs, then closes everything. */
  async close(graceMs = 2000): Promise<void> {
    const closed = Promise.all([this.http, this.https].map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
    this.http.closeIdleConnections();
    this.fast.stop();
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    this.handler.close();
  }
}

function listenOn(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new SkiffError('ERR_INGRESS_LISTEN', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function countRoutes(t: RouteTable): number {
  const groups = [...Object.values(t.hosts), ...Object.values(t.wildcards), ...(t.hostless ? [t.hostless] : [])];
  return groups.reduce((n, g) => n + g.paths.length, 0);
}
