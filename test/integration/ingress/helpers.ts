import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { FakeApiClient } from '../../../src/client/fake.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import type { ApiClient } from '../../../src/client/types.js';
import { startIngress, type IngressHandle, type IngressOptions } from '../../../src/ingress/index.js';
import { makeSelfSignedCertificate, type PemPair } from '../../../src/ingress/tls.js';

/** Test fixtures for the ingress: loopback backends, seeded API objects, HTTP(S) clients. */

export interface Backend {
  name: string;
  address: string;
  port: number;
  /** requests seen, newest last */
  seen: { url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** An echo backend on 127.0.0.x: JSON {service, path, host, method, headers}; WebSocket echo too. */
export async function startBackend(name: string, address = '127.0.0.1', opts: { tls?: PemPair; handler?: http.RequestListener } = {}): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const handler: http.RequestListener = opts.handler ?? ((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ service: name, path: req.url, host: req.headers.host, method: req.method, headers: req.headers, bodyBytes: Buffer.concat(chunks).length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}:${data.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name, address, port, seen,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function ingressClass(name = 'skiff', isDefault = false): KubeObject {
  return {
    metadata: { name, annotations: isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
    spec: { controller: 'skiff.io/ingress' },
  };
}

/** Seeds a Service (port 80 named http) and its EndpointSlice pointing at the given backends. */
export async function seedService(client: ApiClient, name: string, backends: { address: string; port: number; ready?: boolean; serving?: boolean; terminating?: boolean }[], ns = 'default'): Promise<void> {
  const svc = { metadata: { name, namespace: ns }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
  await upsert(client, R.services, svc);
  const ports = [...new Set(backends.map((b) => b.port))];
  const slices = (ports.length ? ports : [8080]).map((port) => ({
    metadata: { name: `${name}-${port}`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: backends.filter((b) => b.port === port).map((b) => ({ addresses: [b.address], conditions: { ready: b.ready ?? true, serving: b.serving ?? b.ready ?? true, terminating: b.terminating ?? false } })),
  }));
  const existing = (await client.list(R.endpointslices, { namespace: ns })).items.filter((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === name);
  for (const s of existing) if (!slices.some((n) => n.metadata.name === s.metadata?.name)) await client.delete(R.endpointslices, s.metadata!.name!, ns);
  for (const s of slices) await upsert(client, R.endpointslices, s);
}

export async function upsert(client: ApiClient, ref: typeof R.services, obj: KubeObject): Promise<KubeObject> {
  try {
    const cur = await client.get(ref, obj.metadata!.name!, obj.metadata!.namespace);
    return await client.update(ref, { ...obj, metadata: { ...cur.metadata, ...obj.metadata, resourceVersion: undefined } });
  } catch {
    return client.create(ref, obj, obj.metadata!.namespace);
  }
}

export type PathSpec = { path: string; pathType?: string; service: string; port?: number | string };

export function ingress(name: string, rules: { host?: string; paths: PathSpec[] }[], extra: { annotations?: Record<string, string>; tls?: { hosts: string[]; secretName?: string }[]; defaultBackend?: string; className?: string | null } = {}): KubeObject {
  const backend = (service: string, port: number | string = 80) => ({ service: { name: service, port: typeof port === 'number' ? { number: port } : { name: port } } });
  return {
    metadata: { name, namespace: 'default', annotations: extra.annotations ?? {} },
    spec: {
      ...(extra.className === null ? {} : { ingressClassName: extra.className ?? 'skiff' }),
      ...(extra.defaultBackend ? { defaultBackend: backend(extra.defaultBackend) } : {}),
      ...(extra.tls ? { tls: extra.tls } : {}),
      rules: rules.map((r) => ({ ...(r.host ? { host: r.host } : {}), http: { paths: r.paths.map((p) => ({ path: p.path, pathType: p.pathType ?? 'Prefix', backend: backend(p.service, p.port) })) } })),
    },
  };
}

export function tlsSecret(name: string, pair: PemPair): KubeObject {
  return { metadata: { name, namespace: 'default' }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from(pair.cert).toString('base64'), 'tls.key': Buffer.from(pair.key).toString('base64') } };
}

export const certFor = (host: string, keyType: 'ECDSA' | 'RSA' = 'ECDSA') => makeSelfSignedCertificate(host, [host], 365, keyType);

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = { service: string; path: string; host: string; headers: Record<string, string>; bodyBytes: number }>(): T;
}

export function request(port: number, opts: { host?: string; path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent | false; https?: boolean; servername?: string } = {}): Promise<Reply> {
  const mod = opts.https ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: opts.agent ?? false,
        headers: { ...(opts.host ? { host: opts.host } : {}), ...(opts.headers ?? {}) },
        ...(opts.https ? { servername: opts.servername ?? opts.host, rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The leaf certificate served for an SNI name. */
export function peerCert(port: number, servername: string, opts: tls.ConnectionOptions = {}): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...opts }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startTestIngress(client: ApiClient, extra: Partial<IngressOptions> = {}): Promise<IngressHandle> {
  return startIngress({ client, httpPort: 0, httpsPort: 0, bindAddress: '127.0.0.1', workers: 1, accessLog: false, publishAddresses: ['127.0.0.1'], ...extra });
}

export { FakeApiClient, R };
