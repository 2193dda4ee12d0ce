import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../util/log.js';

/** What a healthCheckNodePort answers for one Service (externalTrafficPolicy Local). */
export interface ServiceHealth {
  namespace: string;
  name: string;
  localEndpoints: number;
}

/** kube-proxy's body: 200 with local endpoints, 503 without, so load balancers skip this node. */
export function serviceHealthResponse(h: ServiceHealth): { status: number; headers: Record<string, string>; body: string } {
  return {
    status: h.localEndpoints > 0 ? 200 : 503,
    headers: { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'X-Load-Balancing-Endpoints': String(h.localEndpoints) },
    body: JSON.stringify({ service: { namespace: h.namespace, name: h.name }, localEndpoints: h.localEndpoints, serviceProxyHealthy: true }),
  };
}

function send(res: ServerResponse, r: { status: number; headers: Record<string, string>; body: string }): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

async function listen(server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
}

/** One HTTP listener per healthCheckNodePort, opened and closed as Services come and go. */
export class ServiceHealthServers {
  private readonly servers = new Map<number, { server: Server; health: ServiceHealth }>();
  constructor(
    private readonly bindAddress: string,
    private readonly log: Logger,
  ) {}

  async sync(wanted: Map<number, ServiceHealth>): Promise<void> {
    for (const [port, entry] of [...this.servers]) {
      if (wanted.has(port)) continue;
      this.servers.delete(port);
      await close(entry.server);
    }
    for (const [port, health] of wanted) {
      const cur = this.servers.get(port);
      if (cur) {
        cur.health = health;
        continue;
      }
      const entry = { server: createServer((_req, res) => send(res, serviceHealthResponse(entry.health))), health };
      try {
        await listen(entry.server, this.bindAddress, port);
        this.servers.set(port, entry);
      } catch (err) {
        this.log.warn({ port, svc: `${health.namespace}/${health.name}`, err: String(err) }, 'cannot serve health check node port');
      }
    }
  }

  ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  async stop(): Promise<void> {
    await this.sync(new Map());
  }
}

export interface ProxyHealthStatus {
  /** Last successful sync (ms since epoch), 0 before the first. */
  lastUpdated: number;
  /** Oldest change not yet in the kernel (ms since epoch), 0 when none is pending. */
  oldestPending: number;
  nodeEligible: boolean;
}

/** kube-proxy's /healthz semantics: unhealthy when a change has waited longer than `timeoutMs`. */
export function proxyHealthResponse(s: ProxyHealthStatus, now: number, timeoutMs: number): { status: number; headers: Record<string, string>; body: string } {
  const stale = s.oldestPending !== 0 && now - s.oldestPending > timeoutMs;
  const healthy = !stale && s.lastUpdated !== 0;
  return {
    status: healthy ? 200 : 503,
    headers: { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' },
    body: JSON.stringify({
      lastUpdated: s.lastUpdated ? new Date(s.lastUpdated).toISOString() : '',
      currentTime: new Date(now).toISOString(),
      nodeEligible: s.nodeEligible,
      stale,
    }),
  };
}

/** Serves /healthz (and /livez) on `host:port`. */
export async function startProxyHealthServer(
  bind: string,
  status: () => ProxyHealthStatus,
  timeoutMs: number,
): Promise<{ port: number; stop(): Promise<void> }> {
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i) || '0.0.0.0';
  const port = Number(bind.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.url === '/healthz' || req.url === '/livez') send(res, proxyHealthResponse(status(), Date.now(), timeoutMs));
    else send(res, { status: 404, headers: { 'Content-Type': 'text/plain' }, body: 'not found\n' });
  });
  await listen(server, host, port);
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : port, stop: () => close(server) };
}
