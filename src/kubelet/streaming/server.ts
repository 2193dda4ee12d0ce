import { createServer as createHttp, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { nodeUsage, renderSummary } from './stats.js';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { ContainerRuntime, NetnsRef, StreamSession } from '../runtime/types.js';
import type { Logger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { acceptSpdyTunnel, acceptSpdyUpgrade, isSpdyUpgrade, podNetnsDialer, PortForwardSession } from './portforward.js';
import { CH_CLOSE, CH_ERROR, CH_RESIZE, CH_STDERR, CH_STDIN, CH_STDOUT, exitStatus, frame, STREAM_PROTOCOLS } from './channel.js';

const streams = counter({ name: 'skiff_kubelet_streams_total', help: 'Streaming sessions served by the kubelet', labelNames: ['kind'] as const });

export interface KubeletServerOptions {
  runtime: ContainerRuntime;
  port: number;
  tls?: { cert: string; key: string; ca?: string };
  log: Logger;
  listPods(): Pod[];
  nodeName?: string;
}

export interface KubeletServer {
  port: number;
  close(): Promise<void>;
}

function bool(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** Resolves ns/pod/container (default: the first container) to the runtime container id. */
async function resolveContainer(o: KubeletServerOptions, ns: string, pod: string, container: string | undefined, previous = false): Promise<string> {
  const p = o.listPods().find((x) => x.metadata?.namespace === ns && x.metadata?.name === pod);
  if (!p) throw Object.assign(new Error(`pod ${ns}/${pod} not found on this node`), { status: 404 });
  const name = container || p.spec?.containers[0]?.name;
  const all = (await o.runtime.listContainers()).filter((c) => c.podUid === p.metadata?.uid && c.name === name).sort((a, b) => b.attempt - a.attempt);
  const c = previous ? all[1] : all[0];
  if (!c) throw Object.assign(new Error(`container ${name} of pod ${ns}/${pod} ${previous ? 'has no previous instance' : 'is not created yet'}`), { status: previous ? 400 : 404 });
  return c.id;
}

async function serveLogs(o: KubeletServerOptions, url: URL, m: RegExpExecArray, res: ServerResponse): Promise<void> {
  const q = url.searchParams;
  const id = await resolveContainer(o, m[1], m[2], m[3], bool(q.get('previous')));
  const tail = q.get('tailLines');
  const s = o.runtime.logs(id, { follow: bool(q.get('follow')), timestamps: bool(q.get('timestamps')), tail: tail !== null ? Number(tail) : undefined, sinceSeconds: Number(q.get('sinceSeconds') ?? 0) || undefined });
  streams.inc({ kind: 'logs' });
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.on('close', () => s.kill());
  s.stdout.on('data', (d: Buffer) => res.write(d));
  s.stderr?.on('data', (d: Buffer) => res.write(d));
  await s.exited;
  res.end();
}

async function serveSummary(o: KubeletServerOptions, res: ServerResponse): Promise<void> {
  const [containers, stats, node] = await Promise.all([o.runtime.listContainers(), o.runtime.stats?.() ?? new Map(), nodeUsage(cpus().length)]);
  const body = renderSummary(o.nodeName ?? '', o.listPods(), containers, stats, node, new Date());
  streams.inc({ kind: 'stats' });
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Pipes an exec/attach session over a v4/v5 channel WebSocket. */
export function bridgeSession(ws: WebSocket, s: StreamSession): void {
  let outs = 0;
  const ended = new Promise<void>((resolve) => {
    const streamsToWait = [s.stdout, s.stderr].filter((x) => x !== null);
    if (streamsToWait.length === 0) resolve();
    for (const st of streamsToWait) st!.on('end', () => { if (++outs === streamsToWait.length) resolve(); });
    setTimeout(resolve, 60 * 60 * 1000).unref();
  });
  s.stdout.on('data', (d: Buffer) => ws.send(frame(CH_STDOUT, d)));
  s.stderr?.on('data', (d: Buffer) => ws.send(frame(CH_STDERR, d)));
  ws.on('message', (data: Buffer) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    if (buf.length === 0) return;
    const ch = buf[0];
    const body = buf.subarray(1);
    if (ch === CH_STDIN) s.stdin?.write(body);
    else if (ch === CH_RESIZE) {
      try {
        const r = JSON.parse(body.toString()) as { Width: number; Height: number };
        s.resize(r.Width, r.Height);
      } catch { /* ignore malformed resize */ }
    } else if (ch === CH_CLOSE && body[0] === CH_STDIN) s.stdin?.end();
  });
  ws.on('close', () => s.kill());
  void s.exited.then(async (code) => {
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
    if (ws.readyState === ws.OPEN) {
      ws.send(frame(CH_ERROR, Buffer.from(JSON.stringify(exitStatus(code)))));
      ws.close(1000);
    }
  });
}

/** The network namespace of the pod's running sandbox (newest first), if it has one. */
async function podNetns(o: KubeletServerOptions, uid: string | undefined): Promise<NetnsRef | undefined> {
  const sandboxes = (await o.runtime.listSandboxes()).filter((s) => s.podUid === uid && s.running && s.netns).sort((a, b) => b.createdAt - a.createdAt);
  return sandboxes[0]?.netns;
}

/**
 * /portForward/NS/POD: SPDY/3.1 tunnelled in WebSocket binary frames, or on the raw upgraded socket
 * (KUBECTL.md §9.2). Streams go to the port on the pod's localhost, inside its network namespace.
 */
async function handlePortForward(o: KubeletServerOptions, pfClients: Set<{ terminate(): void }>, m: RegExpExecArray, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const p = o.listPods().find((x) => x.metadata?.namespace === m[1] && x.metadata?.name === m[2]);
  const netns = p ? await podNetns(o, p.metadata?.uid) : undefined;
  if (!p || !netns) {
    socket.end(`HTTP/1.1 ${p ? 400 : 404} Error\r\nContent-Type: text/plain\r\n\r\npod ${m[1]}/${m[2]} ${p ? 'has no running sandbox' : 'not found on this node'}`);
    return;
  }
  const session = { podIP: p.status?.podIP ?? '', dial: podNetnsDialer(netns), log: o.log };
  if (isSpdyUpgrade(req)) {
    const raw = { terminate: () => socket.destroy() };
    pfClients.add(raw);
    socket.on('close', () => pfClients.delete(raw));
    streams.inc({ kind: 'portforward' });
    new PortForwardSession(acceptSpdyUpgrade(socket, head), session);
    return;
  }
  acceptSpdyTunnel(req, socket, head, (ws) => {
    pfClients.add(ws);
    ws.on('close', () => pfClients.delete(ws));
    streams.inc({ kind: 'portforward' });
    new PortForwardSession(createWebSocketStream(ws), session);
  });
}

function handleUpgrade(o: KubeletServerOptions, wss: WebSocketServer, pfClients: Set<{ terminate(): void }>, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://kubelet');
  const pf = /^\/portForward\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (pf) {
    handlePortForward(o, pfClients, pf, req, socket, head).catch((err: Error) => socket.end(`HTTP/1.1 500 Error\r\nContent-Type: text/plain\r\n\r\n${err.message}`));
    return;
  }
  const m = /^\/(exec|attach)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (!m) {
    socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
    return;
  }
  const q = url.searchParams;
  const tty = bool(q.get('tty'));
  const stdin = bool(q.get('stdin')) || bool(q.get('input'));
  resolveContainer(o, m[2], m[3], m[4]).then(
    (id) => wss.handleUpgrade(req, socket, head, (ws) => {
      streams.inc({ kind: m[1] });
      const cmd = q.getAll('command');
      const s = m[1] === 'exec' ? o.runtime.exec(id, cmd, { stdin, tty }) : o.runtime.attach(id, { stdin, tty });
      bridgeSession(ws, s);
    }),
    (err: Error & { status?: number }) => socket.end(`HTTP/1.1 ${err.status ?? 500} Error\r\nContent-Type: text/plain\r\n\r\n${err.message}`),
  );
}

/**
 * The kubelet's own endpoint: GET /containerLogs/NS/POD/CONTAINER, WebSocket /exec/... and
 * /attach/... (channel protocols v4/v5), /healthz. HTTPS when tls is given.
 */
export async function startKubeletServer(o: KubeletServerOptions): Promise<KubeletServer> {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => STREAM_PROTOCOLS.find((x) => p.has(x)) ?? false });
  const pfClients = new Set<{ terminate(): void }>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://kubelet');
    const logs = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (url.pathname === '/healthz') {
      res.end('ok');
    } else if (url.pathname === '/stats/summary' && req.method === 'GET') {
      serveSummary(o, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(err.message);
      });
    } else if (logs && req.method === 'GET') {
      serveLogs(o, url, logs, res).catch((err: Error & { status?: number }) => {
        if (!res.headersSent) res.writeHead(err.status ?? 500, { 'Content-Type': 'text/plain' });
        res.end(err.message);
      });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  };
  // with a client CA, only callers holding a certificate it signed (the apiserver) get in
  const server: Server = o.tls
    ? createHttps({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: !!o.tls.ca, rejectUnauthorized: !!o.tls.ca }, handler)
    : createHttp(handler);
  server.on('upgrade', (req, socket, head) => handleUpgrade(o, wss, pfClients, req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const c of [...wss.clients, ...pfClients]) c.terminate();
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}
