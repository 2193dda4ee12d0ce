import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { SqliteStore } from '../store/sqlite.js';
import { EtcdStore } from '../store/etcd.js';
import type { Store } from '../store/types.js';
import { build } from '../apiserver/app.js';
import { RestClient } from '../client/rest.js';
import type { ApiClient } from '../client/types.js';
import { InformerFactory } from '../client/factory.js';
import { ApiEventRecorder } from '../client/events.js';
import { ensurePki, issueServerCert, tlsServerOptions, writeKubeconfig, type Pki } from '../util/pki.js';
import { loadEncryption } from '../store/encryption.js';
import { securityHooks } from '../apiserver/auth/index.js';
import { podStreamingPlugin } from '../kubelet/streaming/apiserver-plugin.js';
import { evictionPlugin } from '../controllers/disruption/eviction.js';
import { startControllerManager } from '../controllers/manager.js';
import { defaultControllerOptions, realClock } from '../controllers/context.js';
import { startScheduler } from '../scheduler/index.js';
import { runLeaderElection } from '../client/leaderelection.js';
import { startDns } from '../dns/index.js';
import { ensureKubeDns } from '../dns/bootstrap.js';
import { startIngress } from '../ingress/index.js';
import { startKubelet } from '../kubelet/index.js';
import { startProxy } from '../proxy/index.js';
import { startNetpol } from '../netpol/index.js';
import { LocalHost } from '../host/host.js';
import { R } from '../api/registry.js';
import { componentLogger } from '../util/log.js';

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

export function openStore(spec: string | undefined, dataDir: string): Store {
  if (spec && spec.startsWith('etcd://')) return new EtcdStore(spec.slice('etcd://'.length).split(',').map((h) => (h.startsWith('http') ? h : `http://${h}`)));
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

/** The control plane: apiserver (TLS, auth, RBAC), controller manager, scheduler, DNS, ingress. */
export async function startServer(o: ClusterOptions): Promise<Running & { pki: Pki }> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const stops: (() => Promise<void> | void)[] = [];
  const pki = await step(o, 'certificates', () => ensurePki(o.dataDir, { nodeIPs: [o.nodeIP], hostnames: [os.hostname(), o.nodeName] }));
  const store = openStore(o.store, o.dataDir);
  const advertiseHost = o.bindAddress === '0.0.0.0' ? o.nodeIP : o.bindAddress;
  const url = `https://${advertiseHost === '0.0.0.0' ? '127.0.0.1' : advertiseHost}:${o.port}`;
  const localUrl = `https://127.0.0.1:${o.port}`;
  const client = new RestClient({ server: localUrl, ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey, userAgent: 'skiff-server' });
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
  // Controller manager and scheduler run only while this server holds their Lease (HA: several servers).
  const identity = `${o.nodeName}-${process.pid}`;
  const cm = await step(o, 'controllers', async () =>
    runLeaderElection({
      client,
      name: 'skiff-controller-manager',
      identity,
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
  stops.push(() => cm.stop());
  const sched = await step(o, 'scheduler', async () => runLeaderElection({ client, name: 'skiff-scheduler', identity, onStartedLeading: () => startScheduler({ client, informers }) }));
  stops.push(() => sched.stop());
  if (o.dns) {
    const dns = await step(o, 'dns', async () => {
      const h = await startDns({ client, listen: [{ address: o.nodeIP, port: o.dnsPort }], clusterDomain: o.clusterDomain, workers: Math.max(1, Math.min(2, os.availableParallelism())) });
      await ensureKubeDns(client, { address: o.nodeIP, port: o.dnsPort });
      return h;
    });
    stops.push(() => dns.stop());
  }
  if (o.ingress) {
    const ing = await step(o, 'ingress', async () => {
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
    stops.push(() => ing.stop());
  }
  return {
    url,
    kubeconfig,
    client,
    pki,
    async stop() {
      informers.stop();
      for (const s of stops.reverse()) await Promise.resolve(s()).catch((err) => log.warn({ err: String(err) }, 'stop failed'));
      client.close();
    },
  };
}

/** The node agent: netpol first (so new pods are dark until programmed), then proxy and kubelet. */
export async function startAgent(o: ClusterOptions & { client: ApiClient; pki?: Pki }): Promise<{ stop(): Promise<void> }> {
  const host = new LocalHost(o.netns ?? null);
  const stops: (() => Promise<void>)[] = [];
  const netpol = await step(o, 'netpol', () => startNetpol({ client: o.client, host, nodeName: o.nodeName, dropLog: { path: join(o.dataDir, 'netpol-drops.log') } }));
  stops.push(() => netpol.stop());
  const proxy = await step(o, 'proxy', () => startProxy({ client: o.client, host, nodeName: o.nodeName, serviceCIDR: o.serviceCIDR, clusterCIDR: o.podCIDR, healthzBindAddress: '127.0.0.1:10256' }));
  stops.push(() => proxy.stop());
  // The kubelet's streaming port serves TLS with a serving certificate for the node's name and
  // address (the apiserver verifies it against the cluster CA) and asks the apiserver for a client cert.
  const tls = o.pki ? await issueServerCert({ cert: o.pki.caCert, key: o.pki.caKey }, `kubelet-${o.nodeName}`, { dns: [o.nodeName, 'localhost'], ips: [...new Set([o.nodeIP, '127.0.0.1'])] }) : undefined;
  const kubelet = await step(o, 'kubelet', () =>
    startKubelet({
      client: o.client,
      host,
      nodeName: o.nodeName,
      nodeIP: o.nodeIP,
      dataDir: join(o.dataDir, 'kubelet'),
      runtime: o.runtime,
      clusterDNS: '10.96.0.10',
      clusterDomain: o.clusterDomain,
      tls: tls ? { cert: tls.cert, key: tls.key, ca: o.pki!.caCert } : undefined,
    }),
  );
  stops.push(() => kubelet.stop());
  return {
    async stop() {
      for (const s of stops.reverse()) await s().catch((err) => log.warn({ err: String(err) }, 'stop failed'));
    },
  };
}
