import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WebSocket, WebSocketServer } from 'ws';
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import type { ApiClient } from '../../client/types.js';
import { R } from '../../api/registry.js';
import { errorMessage } from '../../util/errors.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import type { Kube } from '../kube.js';
import type { Summary } from './stats.js';
import { acceptSpdyTunnel, isSpdyUpgrade, relaySpdyUpgrade } from './portforward.js';

const log = componentLogger('pod-streaming');
const proxied = counter({ name: 'skiff_apiserver_pod_streams_total', help: 'pods/log|exec|attach|portforward requests proxied to kubelets', labelNames: ['kind', 'result'] as const });

export interface PodStreamingOptions {
  client: ApiClient;
  /** How to reach kubelets: scheme (default https) and TLS material for the apiserver's client side. */
  kubeletScheme?: 'https' | 'http';
  kubeletTls?: { ca?: string; cert?: string; key?: string };
}

interface Target {
  base: string;
  pod: Kube<Pod>;
  container: string;
}

type Params = { namespace: string; name: string };

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** Finds the pod's kubelet (Node InternalIP + daemonEndpoints port) and the container to use. */
async function resolveTarget(o: PodStreamingOptions, ns: string, name: string, container: string | undefined): Promise<Target> {
  const pod = await o.client.get<Kube<Pod>>(R.pods, name, ns).catch(() => undefined);
  if (!pod) throw Object.assign(new Error(`pods "${name}" not found`), { code: 404, reason: 'NotFound' });
  const nodeName = pod.spec?.nodeName;
  if (!nodeName) throw Object.assign(new Error(`pod ${name} is not scheduled to a node yet`), { code: 400, reason: 'BadRequest' });
  const c = container || pod.metadata?.annotations?.['kubectl.kubernetes.io/default-container'] || pod.spec?.containers[0]?.name || '';
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []), ...(pod.spec?.ephemeralContainers ?? [])];
  if (!all.some((x) => x.name === c)) throw Object.assign(new Error(`container ${c} is not valid for pod ${name}`), { code: 400, reason: 'BadRequest' });
  const node = await o.client.get<Kube<Node>>(R.nodes, nodeName);
  const addr = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? node.status?.addresses?.[0]?.address;
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 10250;
  if (!addr) throw Object.assign(new Error(`node ${nodeName} has no address`), { code: 503, reason: 'ServiceUnavailable' });
  const host = addr.includes(':') ? `[${addr}]` : addr;
  return { base: `${o.kubeletScheme ?? 'https'}://${host}:${port}`, pod, container: c };
}

function tlsOpts(o: PodStreamingOptions) {
  const t = o.kubeletTls;
  return { ca: t?.ca, cert: t?.cert, key: t?.key, rejectUnauthorized: !!t?.ca };
}

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  const e = err as { code?: number; reason?: string };
  const code = typeof e.code === 'number' ? e.code : 500;
  return reply.code(code).type('application/json').send(status(code, e.reason ?? 'InternalError', errorMessage(err)));
}

async function logsHandler(o: PodStreamingOptions, req: FastifyRequest<{ Params: Params; Querystring: Record<string, string> }>, reply: FastifyReply) {
  try {
    const q = req.query;
    const t = await resolveTarget(o, req.params.namespace, req.params.name, q.container);
    const qs = new URLSearchParams();
    for (const k of ['follow', 'tailLines', 'sinceSeconds', 'timestamps', 'previous', 'limitBytes']) if (q[k] !== undefined) qs.set(k, q[k]);
    const url = `${t.base}/containerLogs/${encodeURIComponent(req.params.namespace)}/${encodeURIComponent(req.params.name)}/${encodeURIComponent(t.container)}?${qs}`;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { method: 'GET', ...tlsOpts(o) }, resolve);
      r.on('error', reject);
      r.end();
    });
    proxied.inc({ kind: 'log', result: String(res.statusCode) });
    if (res.statusCode !== 200) {
      const body = await new Promise<string>((resolve) => { let s = ''; res.on('data', (d) => (s += d)); res.on('end', () => resolve(s)); });
      return fail(reply, Object.assign(new Error(body.trim() || `kubelet answered ${res.statusCode}`), { code: res.statusCode === 404 ? 404 : 400, reason: 'BadRequest' }));
    }
    req.raw.on('close', () => res.destroy());
    return reply.code(200).type('text/plain').send(res);
  } catch (err) {
    proxied.inc({ kind: 'log', result: 'error' });
    return fail(reply, err);
  }
}

/** Legacy port-forward (POST, `Upgrade: SPDY/3.1`): the same upgrade to the kubelet, then raw bytes. */
async function spdyHandler(o: PodStreamingOptions, req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
  let t: Target;
  try {
    t = await resolveTarget(o, req.params.namespace, req.params.name, undefined);
  } catch (err) {
    return fail(reply, err);
  }
  reply.hijack();
  const socket = req.raw.socket;
  proxied.inc({ kind: 'portforward', result: 'spdy' });
  relaySpdyUpgrade(`${t.base}/portForward/${encodeURIComponent(req.params.namespace)}/${encodeURIComponent(req.params.name)}`, tlsOpts(o), socket, (code, message) => {
    const st = status(code, 'BadRequest', message);
    socket.end(`HTTP/1.1 ${code} Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(st)}`);
  });
}

/** Relays a WebSocket upgrade (exec/attach/portforward) to the kubelet frame by frame. */
async function upgradeHandler(o: PodStreamingOptions, kind: 'exec' | 'attach' | 'portforward', req: FastifyRequest<{ Params: Params; Querystring: Record<string, string | string[]> }>, reply: FastifyReply) {
  if (kind === 'portforward' && isSpdyUpgrade(req.raw)) return spdyHandler(o, req, reply);
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return fail(reply, Object.assign(new Error(`${kind} needs a WebSocket upgrade (SPDY is not supported by this apiserver)`), { code: 400, reason: 'BadRequest' }));
  }
  let t: Target;
  try {
    const c = req.query.container;
    t = await resolveTarget(o, req.params.namespace, req.params.name, kind === 'portforward' ? undefined : (Array.isArray(c) ? c[0] : c));
  } catch (err) {
    return fail(reply, err);
  }
  const qi = req.raw.url!.indexOf('?');
  const query = qi >= 0 ? req.raw.url!.slice(qi + 1) : '';
  const path = kind === 'portforward'
    ? `/portForward/${encodeURIComponent(req.params.namespace)}/${encodeURIComponent(req.params.name)}`
    : `/${kind}/${encodeURIComponent(req.params.namespace)}/${encodeURIComponent(req.params.name)}/${encodeURIComponent(t.container)}`;
  const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  // ws cannot send SPDY/3.1+portforward.k8s.io (not a token): the kubelet's /portForward needs none
  const upstream = new WebSocket(`${t.base.replace(/^http/, 'ws')}${path}${query ? `?${query}` : ''}`, kind === 'portforward' ? [] : protocols, { ...tlsOpts(o), perMessageDeflate: false });
  reply.hijack();
  const socket = req.raw.socket;
  upstream.once('unexpected-response', (_r, res) => {
    proxied.inc({ kind, result: String(res.statusCode) });
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => {
      const st = status(res.statusCode ?? 500, 'BadRequest', body.trim() || `kubelet answered ${res.statusCode}`);
      socket.end(`HTTP/1.1 ${res.statusCode ?? 500} Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify(st)}`);
    });
  });
  upstream.once('error', (err) => {
    log.warn({ kind, pod: req.params.name, err: errorMessage(err) }, 'kubelet stream failed');
    if (!socket.destroyed) socket.end(`HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n`);
  });
  upstream.once('open', () => {
    proxied.inc({ kind, result: '101' });
    // complete the client's handshake with the subprotocol the kubelet chose
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: () => upstream.protocol || false });
    const accept = kind === 'portforward'
      ? (done: (ws: WebSocket) => void) => acceptSpdyTunnel(req.raw, socket, Buffer.alloc(0), done)
      : (done: (ws: WebSocket) => void) => wss.handleUpgrade(req.raw, socket, Buffer.alloc(0), done);
    accept((client) => {
      upstream.on('message', (d, isBinary) => client.readyState === WebSocket.OPEN && client.send(d, { binary: isBinary }));
      client.on('message', (d, isBinary) => upstream.readyState === WebSocket.OPEN && upstream.send(d, { binary: isBinary }));
      upstream.on('close', (code) => client.close(code === 1005 || code === 1006 ? 1000 : code));
      client.on('close', () => upstream.close());
      upstream.on('error', () => client.terminate());
      client.on('error', () => upstream.terminate());
    });
  });
}

const MV = 'metrics.k8s.io/v1beta1';

/** Summaries of every node's kubelet (nodes that do not answer within 5 s are left out). */
async function fetchSummaries(o: PodStreamingOptions): Promise<Summary[]> {
  const nodes = await o.client.list<Kube<Node>>(R.nodes);
  const got = await Promise.all(nodes.items.map(async (n) => {
    const addr = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const port = n.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    if (!addr || !port) return undefined;
    const url = `${o.kubeletScheme ?? 'https'}://${addr.includes(':') ? `[${addr}]` : addr}:${port}/stats/summary`;
    return new Promise<Summary | undefined>((resolve) => {
      const r = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { ...tlsOpts(o), timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => { try { resolve(res.statusCode === 200 ? (JSON.parse(body) as Summary) : undefined); } catch { resolve(undefined); } });
      });
      r.on('error', () => resolve(undefined));
      r.on('timeout', () => { r.destroy(); resolve(undefined); });
      r.end();
    });
  }));
  return got.filter((x): x is Summary => !!x);
}

const cpuQ = (n: number): string => `${Math.max(0, Math.round(n))}n`;
const memQ = (b: number): string => `${Math.max(0, Math.round(b / 1024))}Ki`;

/** Pure: NodeMetrics / PodMetrics objects from kubelet summaries. */
export function renderMetrics(summaries: Summary[]): { nodes: Record<string, unknown>[]; pods: (Record<string, unknown> & { metadata: { name: string; namespace: string } })[] } {
  const nodes = summaries.map((s) => ({
    kind: 'NodeMetrics', apiVersion: MV, metadata: { name: s.node.nodeName, creationTimestamp: s.node.cpu.time },
    timestamp: s.node.cpu.time, window: '10s', usage: { cpu: cpuQ(s.node.cpu.usageNanoCores), memory: memQ(s.node.memory.workingSetBytes) },
  }));
  const pods = summaries.flatMap((s) => s.pods.map((p) => ({
    kind: 'PodMetrics', apiVersion: MV, metadata: { name: p.podRef.name, namespace: p.podRef.namespace, creationTimestamp: s.node.cpu.time },
    timestamp: s.node.cpu.time, window: '10s',
    containers: p.containers.map((c) => ({ name: c.name, usage: { cpu: cpuQ(c.cpu.usageNanoCores), memory: memQ(c.memory.workingSetBytes) } })),
  })));
  return { nodes, pods };
}

/** metrics.k8s.io/v1beta1 (kubectl top, HPA) served from the kubelets' /stats/summary. */
function registerMetricsApi(app: FastifyInstance, o: PodStreamingOptions): void {
  const base = `/apis/${MV}`;
  app.get(base, async () => ({
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: MV,
    resources: [
      { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
      { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
    ],
  }));
  const list = (kind: string, items: unknown[]) => ({ kind, apiVersion: MV, metadata: {}, items });
  app.get(`${base}/nodes`, async () => list('NodeMetricsList', renderMetrics(await fetchSummaries(o)).nodes));
  app.get<{ Params: { name: string } }>(`${base}/nodes/:name`, async (req, reply) => {
    const n = renderMetrics(await fetchSummaries(o)).nodes.find((x) => (x.metadata as { name: string }).name === req.params.name);
    return n ?? reply.code(404).send(status(404, 'NotFound', `nodemetrics.metrics.k8s.io "${req.params.name}" not found`));
  });
  const pods = async (ns: string | undefined, labelSelector: string | undefined) => {
    let items = renderMetrics(await fetchSummaries(o)).pods.filter((p) => !ns || p.metadata.namespace === ns);
    if (labelSelector) {
      const match = await o.client.list<Kube<Pod>>(R.pods, { namespace: ns, labelSelector });
      const keep = new Set(match.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
      items = items.filter((p) => keep.has(`${p.metadata.namespace}/${p.metadata.name}`));
    }
    return items;
  };
  app.get<{ Querystring: { labelSelector?: string } }>(`${base}/pods`, async (req) => list('PodMetricsList', await pods(undefined, req.query.labelSelector)));
  app.get<{ Params: { namespace: string }; Querystring: { labelSelector?: string } }>(`${base}/namespaces/:namespace/pods`, async (req) => list('PodMetricsList', await pods(req.params.namespace, req.query.labelSelector)));
  app.get<{ Params: { namespace: string; name: string } }>(`${base}/namespaces/:namespace/pods/:name`, async (req, reply) => {
    const p = (await pods(req.params.namespace, undefined)).find((x) => x.metadata.name === req.params.name);
    return p ?? reply.code(404).send(status(404, 'NotFound', `podmetrics.metrics.k8s.io "${req.params.namespace}/${req.params.name}" not found`));
  });
}

/**
 * pods/log, pods/exec, pods/attach and pods/portforward, proxied to the pod's kubelet (Node
 * InternalIP + status.daemonEndpoints.kubeletEndpoint.Port), and metrics.k8s.io/v1beta1 from the
 * kubelets' /stats/summary. Register with ApiserverHooks.plugins.
 */
export function podStreamingPlugin(opts: PodStreamingOptions): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    const base = '/api/v1/namespaces/:namespace/pods/:name';
    app.get<{ Params: Params; Querystring: Record<string, string> }>(`${base}/log`, (req, reply) => logsHandler(opts, req, reply));
    for (const kind of ['exec', 'attach', 'portforward'] as const) {
      app.get<{ Params: Params; Querystring: Record<string, string | string[]> }>(`${base}/${kind}`, (req, reply) => upgradeHandler(opts, kind, req, reply));
      app.post<{ Params: Params; Querystring: Record<string, string | string[]> }>(`${base}/${kind}`, (req, reply) => upgradeHandler(opts, kind, req, reply));
    }
    registerMetricsApi(app, opts);
  };
}
