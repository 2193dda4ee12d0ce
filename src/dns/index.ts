/**
 * Cluster DNS entry point: informers over Services, EndpointSlices and Namespaces (and Pods for
 * `pods: 'verified'`) feed a coalesced snapshot rebuild; each rebuild swaps a new ClusterZone
 * into the server whole. `skiff up` / `skiff server` call startDns once.
 */
import type { Namespace, Pod, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { R } from '../api/registry.js';
import { SharedInformer } from '../client/informer.js';
import type { ApiClient, Informer } from '../client/types.js';
import type { KubeObject } from '../api/object.js';
import { componentLogger } from '../util/log.js';
import { SkiffError } from '../util/errors.js';
import { Forwarder, parseUpstream, resolvConfUpstreams } from './forward.js';
import { buildSnapshot, snapshotToWire } from './model.js';
import { WorkerPool } from './workers.js';
import { metrics } from './metrics.js';
import { ClusterZone, type PodMode, type ZoneConfig } from './records.js';
import { DnsServer, type RateLimit } from './server.js';

const log = componentLogger('dns');

export interface DnsOptions {
  client: ApiClient;
  listen: { address: string; port: number }[];
  clusterDomain?: string;
  /** `ip`, `ip:port` or `[ip6]:port`; default: nameservers from /etc/resolv.conf that are not our own */
  upstreams?: string[];
  /** TTL of synthesized records, 0-3600 (default 5) */
  ttl?: number;
  /** processes answering UDP (default 1): the primary plus workers-1 forked workers sharing its sockets */
  workers?: number;
  /** pod records a-b-c-d.<ns>.pod.<zone> (default 'insecure', as kubeadm) */
  pods?: PodMode;
  /** unknown reverse names go upstream (default true, as kubeadm's `fallthrough in-addr.arpa ip6.arpa`) */
  reverseFallthrough?: boolean;
  /** per client address (default 5000 qps, burst 10000; qps 0 disables) */
  rateLimit?: RateLimit;
  /** resolv.conf to read upstreams from (default /etc/resolv.conf) */
  resolvConf?: string;
  /** per-upstream attempt timeout (default 2000 ms) */
  forwardTimeoutMs?: number;
  /** coalescing delay between an API change and the rebuild (default 20 ms) */
  rebuildDelayMs?: number;
}

export interface DnsHandle {
  stop(): Promise<void>;
  port(): number;
}

export async function startDns(opts: DnsOptions): Promise<DnsHandle> {
  const ttl = opts.ttl ?? 5;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 3600) throw new SkiffError('ERR_DNS_CONFIG', `ttl must be an integer in 0..3600, got ${ttl}`);
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new SkiffError('ERR_DNS_CONFIG', `workers must be an integer in 1..64, got ${workers}`);
  if (opts.listen.length === 0) throw new SkiffError('ERR_DNS_CONFIG', 'dns needs at least one listen address');
  const own = opts.listen.map((l) => l.address);
  const upstreams = opts.upstreams ? opts.upstreams.map(parseUpstream) : resolvConfUpstreams(opts.resolvConf, own);
  const cfg: ZoneConfig = {
    clusterDomain: (opts.clusterDomain ?? 'cluster.local').replace(/\.$/, '').toLowerCase(),
    ttl,
    pods: opts.pods ?? 'insecure',
    reverseFallthrough: opts.reverseFallthrough ?? true,
    nsAddresses: own.filter((a) => a !== '0.0.0.0' && a !== '::'),
  };

  const services = new SharedInformer<Service & KubeObject>(opts.client, R.services);
  const slices = new SharedInformer<EndpointSlice & KubeObject>(opts.client, R.endpointslices);
  const namespaces = new SharedInformer<Namespace & KubeObject>(opts.client, R.namespaces);
  const pods = cfg.pods === 'verified' ? new SharedInformer<Pod & KubeObject>(opts.client, R.pods) : undefined;
  const informers: Informer[] = [services, slices, namespaces, ...(pods ? [pods] : [])] as Informer[];

  const build = (serial: number) =>
    new ClusterZone(
      buildSnapshot({ services: services.list(), slices: slices.list(), namespaces: namespaces.list(), pods: pods?.list(), synced: informers.every((i) => i.hasSynced()), serial }),
      cfg,
    );

  const rateLimit = opts.rateLimit ?? { qps: 5000, burst: 10000 };
  const forwarder = new Forwarder({ upstreams, timeoutMs: opts.forwardTimeoutMs });
  let zone = build(Math.floor(Date.now() / 1000));
  const server = new DnsServer({ zone, forwarder, rateLimit });
  let pool: WorkerPool | undefined;

  let firstChange: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const rebuild = () => {
    timer = undefined;
    const started = firstChange ?? Date.now();
    firstChange = undefined;
    zone = build(Math.floor(Date.now() / 1000));
    server.setZone(zone);
    pool?.broadcast(snapshotToWire(zone.snap));
    metrics.programming.observe((Date.now() - started) / 1000);
  };
  let stopped = false;
  const changed = () => {
    if (stopped) return;
    firstChange ??= Date.now();
    timer ??= setTimeout(rebuild, opts.rebuildDelayMs ?? 20);
  };
  for (const inf of informers) inf.addHandlers({ add: changed, update: changed, delete: changed });

  try {
    await server.listen(opts.listen);
  } catch (err) {
    await server.close();
    forwarder.close();
    throw new SkiffError('ERR_DNS_LISTEN', `dns cannot listen on ${opts.listen.map((l) => `${l.address}:${l.port}`).join(', ')}`, { cause: err });
  }
  if (workers > 1) {
    pool = new WorkerPool({
      count: workers - 1,
      sockets: server.udpSockets(),
      init: () => ({ type: 'init', cfg, snap: snapshotToWire(zone.snap), upstreams, forwardTimeoutMs: opts.forwardTimeoutMs, rateLimit }),
    });
    try {
      await pool.start();
    } catch (err) {
      await pool.stop();
      await server.close();
      throw new SkiffError('ERR_DNS_WORKERS', 'starting dns workers failed', { cause: err });
    }
  }
  for (const inf of informers) inf.start();
  void Promise.all(informers.map((i) => i.synced())).then(() => {
    if (stopped) return;
    changed();
    log.info({ port: server.port(), upstreams: upstreams.map((u) => `${u.host}:${u.port}`), zone: cfg.clusterDomain }, 'dns synced and serving');
  });

  return {
    port: () => server.port(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const inf of informers) inf.stop();
      await pool?.stop();
      forwarder.close();
      await server.close();
    },
  };
}

export { DnsServer } from './server.js';
export { ClusterZone } from './records.js';
export { Forwarder } from './forward.js';
