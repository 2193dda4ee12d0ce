import 'reflect-metadata';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Store } from '../store/types.js';
import { RestClient } from '../client/rest.js';
import type { ApiClient } from '../client/types.js';
import { InformerFactory } from '../client/factory.js';
import type { Pki } from '../util/pki.js';
import type { Host } from '../host/host.js';
import { componentLogger } from '../util/log.js';

// Each component's modules are imported when it starts, not when this file loads: a process that
// runs one component (`skiff component NAME`, `skiff up --split`) loads only what that one needs
// (loading every module costs ~1.5 s of CPU; the etcd client alone ~0.5 s).

const log = componentLogger('skiff');

export interface ClusterOptions {
  dataDir: string;
  /** sqlite (default) or etcd://host:port,host:port */
  store?: string;
  bindAddress: string;
  port: number;
  nodeName: string;
  nodeIP: string;
  serviceCIDR: string;
  podCIDR: string;
  clusterDomain: string;
  lbPool?: string[];
  /** node networking namespace (default: the root namespace) */
  netns?: string | null;
  runtime: 'docker' | 'netns';
  agent: boolean;
  dns: boolean;
  ingress: boolean;
  httpPort: number;
  httpsPort: number;
  dnsPort: number;
  /** node lifecycle: NotReady after this long without a heartbeat (default 40) */
  nodeMonitorGracePeriodSeconds?: number;
  /** node lifecycle: default toleration for not-ready/unreachable before eviction (default 300) */
  podEvictionTimeoutSeconds?: number;
  onStep?: (step: string, done: boolean) => void;
}

export interface Running {
  url: string;
  kubeconfig: string;
  client: ApiClient;
  stop(): Promise<void>;
}

export function detectNodeIP(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export async function openStore(spec: string | undefined, dataDir: string): Promise<Store> {
  if (spec && spec.startsWith('etcd://')) {
    const { EtcdStore } = await import('../store/etcd.js');
    return new EtcdStore(spec.slice('etcd://'.length).split(',').map((h) => (h.startsWith('http') ? h : `http://${h}`)));
  }
  const { SqliteStore } = await import('../store/sqlite.js');
  return new SqliteStore(join(dataDir, 'store.db'));
}

async function step<T>(o: ClusterOptions, name: string, fn: () => Promise<T>): Promise<T> {
  o.onStep?.(name, false);
  const t0 = Date.now();
  const r = await fn();
  log.info({ step: name, ms: Date.now() - t0 }, 'started');
  o.onStep?.(name, true);
  return r;
}

type Stop = () => Promise<void> | void;

/** What the controller manager and scheduler need: a client, informers (started), a lease identity. */
export interface ComponentContext {
  client: ApiClient;
  informers: InformerFactory;
  /** leader-election identity of this server */
  identity: string;
}

/** The certificates a component needs, read from DIR/pki (the apiserver created them). */
export type ClusterCerts = Pick<Pki, 'caCert' | 'caKey' | 'adminCert' | 'adminKey'>;

export function readClusterCerts(dataDir: string): ClusterCerts {
  const read = (f: string) => readFileSync(join(dataDir, 'pki', f), 'utf8');
  return { caCert: read('ca.crt'), caKey: read('ca.key'), adminCert: read('admin.crt'), adminKey: read('admin.key') };
}

/** An admin client of the local apiserver (the PKI's system:masters cert). */
export function adminClient(o: ClusterOptions, pki: Omit<ClusterCerts, 'caKey'>, userAgent: string): RestClient {
  return new RestClient({ server: `https://127.0.0.1:${o.port}`, ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey, userAgent });
}

/**
 * The apiserver: store, TLS, authn/RBAC (its bootstrap roles), the pod-streaming and eviction
 * plugins; writes DIR/kubeconfig. Its context (client, started informers) serves the components
 * that run in the same process.
 */
export async function startApiserver(o: ClusterOptions): Promise<Running & { ctx: ComponentContext; pki: Pki }> {
  const [{ build }, { ensurePki, tlsServerOptions, writeKubeconfig }, { loadEncryption }, { securityHooks }, { podStreamingPlugin }, { evictionPlugin }] = await Promise.all([
    import('../apiserver/app.js'),
    import('../util/pki.js'),
    import('../store/encryption.js'),
    import('../apiserver/auth/index.js'),
    import('../kubelet/streaming/apiserver-plugin.js'),
    import('../controllers/disruption/eviction.js'),
  ]);
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const stops: Stop[] = [];
  const pki = await step(o, 'certificates', () => ensurePki(o.dataDir, { nodeIPs: [o.nodeIP], hostnames: [os.hostname(), o.nodeName] }));
  const store = await openStore(o.store, o.dataDir);
  const advertiseHost = o.bindAddress === '0.0.0.0' ? o.nodeIP : o.bindAddress;
  const url = `https://${advertiseHost === '0.0.0.0' ? '127.0.0.1' : advertiseHost}:${o.port}`;
  const client = adminClient(o, pki, 'skiff-server');
  const informers = new InformerFactory(client);
  const hooks = await securityHooks({ client, dataDir: o.dataDir, pki, informers });
  hooks.plugins = [...(hooks.plugins ?? []), podStreamingPlugin({ client, kubeletTls: { ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey } }), evictionPlugin({ client })];
  const app = await step(o, 'apiserver', async () => {
    const a = await build({ store, transformer: loadEncryption(o.dataDir), hooks, serviceCIDR: o.serviceCIDR, advertise: { address: o.nodeIP, port: o.port }, https: tlsServerOptions(pki) });
    await a.listen({ host: o.bindAddress, port: o.port });
    return a;
  });
  stops.push(async () => {
    await app.close();
    await store.close();
  });
  const port = (app.server.address() as AddressInfo).port;
  const kubeconfig = join(o.dataDir, 'kubeconfig');
  writeKubeconfig(kubeconfig, `https://127.0.0.1:${port}`, { caCert: pki.caCert, user: 'admin', clientCert: pki.adminCert, clientKey: pki.adminKey });
  informers.start();
  await step(o, 'rbac', () => hooks.start());
  stops.push(() => hooks.stop());
  return {
    url,
    kubeconfig,
    client,
    pki,
    ctx: { client, informers, identity: `${o.nodeName}-${process.pid}` },
    async stop() {
      informers.stop();
      for (const s of stops.reverse()) await Promise.resolve(s()).catch((err) => log.warn({ err: String(err) }, 'stop failed'));
      client.close();
    },
  };
}

/** The controller manager, only while this server holds its Lease (HA: several servers). */
export async function startControllers(o: ClusterOptions, ctx: ComponentContext): Promise<{ stop(): Promise<void> }> {
  const { client, informers } = ctx;
  const [{ runLeaderElection }, { startControllerManager }, { defaultControllerOptions, realClock }, { ApiEventRecorder }] = await Promise.all([
    import('../client/leaderelection.js'),
    import('../controllers/manager.js'),
    import('../controllers/context.js'),
    import('../client/events.js'),
  ]);
  return step(o, 'controllers', async () =>
    runLeaderElection({
      client,
      name: 'skiff-controller-manager',
      identity: ctx.identity,
      onStartedLeading: () =>
        startControllerManager({
          client,
          informers,
          recorder: (c) => new ApiEventRecorder(client, c),
          clock: realClock,
          options: {
            ...defaultControllerOptions,
            podCIDR: o.podCIDR,
            serviceCIDR: o.serviceCIDR,
            lbPool: o.lbPool,
            dataDir: o.dataDir,
            nodeMonitorGracePeriodSeconds: o.nodeMonitorGracePeriodSeconds ?? defaultControllerOptions.nodeMonitorGracePeriodSeconds,
            podEvictionTimeoutSeconds: o.podEvictionTimeoutSeconds ?? defaultControllerOptions.podEvictionTimeoutSeconds,
          },
        }),
    }),
  );
}

/** The scheduler, only while this server holds its Lease. */
export async function startSchedulerComponent(o: ClusterOptions, ctx: ComponentContext): Promise<{ stop(): Promise<void> }> {
  const [{ runLeaderElection }, { startScheduler }] = await Promise.all([import('../client/leaderelection.js'), import('../scheduler/index.js')]);
  return step(o, 'scheduler', async () => runLeaderElection({ client: ctx.client, name: 'skiff-scheduler', identity: ctx.identity, onStartedLeading: () => startScheduler({ client: ctx.client, informers: ctx.informers }) }));
}

/** Cluster DNS on the node address, and the kube-dns Service pointing at it. */
export async function startDnsComponent(o: ClusterOptions, client: ApiClient): Promise<{ stop(): Promise<void> }> {
  const [{ startDns }, { ensureKubeDns }] = await Promise.all([import('../dns/index.js'), import('../dns/bootstrap.js')]);
  return step(o, 'dns', async () => {
    const h = await startDns({ client, listen: [{ address: o.nodeIP, port: o.dnsPort }], clusterDomain: o.clusterDomain, workers: Math.max(1, Math.min(2, os.availableParallelism())) });
    await ensureKubeDns(client, { address: o.nodeIP, port: o.dnsPort });
    return h;
  });
}

/** The ingress controller and its (default) IngressClass. */
export async function startIngressComponent(o: ClusterOptions, client: ApiClient): Promise<{ stop(): Promise<void> }> {
  const [{ startIngress }, { R }] = await Promise.all([import('../ingress/index.js'), import('../api/registry.js')]);
  return step(o, 'ingress', async () => {
    await client
      .create(R.ingressclasses, {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'IngressClass',
        metadata: { name: 'skiff', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
        spec: { controller: 'skiff.io/ingress' },
      })
      .catch((err) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    return startIngress({ client, httpPort: o.httpPort, httpsPort: o.httpsPort, publishAddresses: [o.nodeIP] });
  });
}

/** The control plane in this process: apiserver (TLS, auth, RBAC), controller manager, scheduler, DNS, ingress. */
export async function startServer(o: ClusterOptions): Promise<Running & { pki: Pki }> {
  const api = await startApiserver(o);
  const stops: Stop[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch((err) => log.warn({ err: String(err) }, 'stop failed'));
    await api.stop();
  };
  try {
    const started = (h: { stop(): Promise<void> | void }) => stops.push(() => h.stop());
    started(await startControllers(o, api.ctx));
    started(await startSchedulerComponent(o, api.ctx));
    if (o.dns) started(await startDnsComponent(o, api.client));
    if (o.ingress) started(await startIngressComponent(o, api.client));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { url: api.url, kubeconfig: api.kubeconfig, client: api.client, pki: api.pki, stop: stopAll };
}

type AgentOptions = ClusterOptions & { client: ApiClient; pki?: Pick<Pki, 'caCert' | 'caKey'> };

/** The node's network namespace: the root one unless --netns names one. */
export async function nodeHost(o: ClusterOptions): Promise<Host> {
  const { LocalHost } = await import('../host/host.js');
  return new LocalHost(o.netns ?? null);
}

/** NetworkPolicy enforcement on this node (iptables + ipset, drop log in DIR/netpol-drops.log). */
export async function startNetpolComponent(o: AgentOptions, host?: Host): Promise<{ stop(): Promise<void> }> {
  const { startNetpol } = await import('../netpol/index.js');
  const h = host ?? (await nodeHost(o));
  return step(o, 'netpol', () => startNetpol({ client: o.client, host: h, nodeName: o.nodeName, dropLog: { path: join(o.dataDir, 'netpol-drops.log') } }));
}

/** Services on this node (iptables), health on 127.0.0.1:10256. */
export async function startProxyComponent(o: AgentOptions, host?: Host): Promise<{ stop(): Promise<void> }> {
  const { startProxy } = await import('../proxy/index.js');
  const h = host ?? (await nodeHost(o));
  return step(o, 'proxy', () => startProxy({ client: o.client, host: h, nodeName: o.nodeName, serviceCIDR: o.serviceCIDR, clusterCIDR: o.podCIDR, healthzBindAddress: '127.0.0.1:10256' }));
}

/** The kubelet: registers the Node, runs its pods, adopts the ones a previous kubelet started. */
export async function startKubeletComponent(o: AgentOptions, host?: Host): Promise<{ stop(): Promise<void> }> {
  const [{ startKubelet }, { issueServerCert }] = await Promise.all([import('../kubelet/index.js'), import('../util/pki.js')]);
  // The kubelet's streaming port serves TLS with a serving certificate for the node's name and
  // address (the apiserver verifies it against the cluster CA) and asks the apiserver for a client cert.
  const h = host ?? (await nodeHost(o));
  const tls = o.pki ? await issueServerCert({ cert: o.pki.caCert, key: o.pki.caKey }, `kubelet-${o.nodeName}`, { dns: [o.nodeName, 'localhost'], ips: [...new Set([o.nodeIP, '127.0.0.1'])] }) : undefined;
  return step(o, 'kubelet', () =>
    startKubelet({
      client: o.client,
      host: h,
      nodeName: o.nodeName,
      nodeIP: o.nodeIP,
      dataDir: join(o.dataDir, 'kubelet'),
      runtime: o.runtime,
      clusterDNS: '10.96.0.10',
      clusterDomain: o.clusterDomain,
      tls: tls ? { cert: tls.cert, key: tls.key, ca: o.pki!.caCert } : undefined,
    }),
  );
}

/** The node agent in this process: netpol first (so new pods are dark until programmed), then proxy and kubelet. */
export async function startAgent(o: AgentOptions): Promise<{ stop(): Promise<void> }> {
  const host = await nodeHost(o);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch((err) => log.warn({ err: String(err) }, 'stop failed'));
  };
  try {
    for (const start of [startNetpolComponent, startProxyComponent, startKubeletComponent]) {
      const h = await start(o, host);
      stops.push(() => h.stop());
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { stop: stopAll };
}
