/**
 * Cluster DNS entry point: informers over Services, EndpointSlices and Namespaces (and Pods for
 * `pods: 'verified'`) feed a coalesced snapshot rebuild; each rebuild swaps a new ClusterZone
 * into the server whole. `skiff up` / `skiff server` call startDns once.
 */
import type { ApiClient } from '../client/types.js';
import { componentLogger } from '../util/log.js';
import { SkiffError } from '../util/errors.js';
import { Forwarder, parseUpstream, resolvConfUpstreams, type Upstream } from './forward.js';
import { snapshotToWire } from './model.js';
import { WorkerPool } from './workers.js';
import type { PodMode, ZoneConfig } from './records.js';
import { ClusterWatch } from './watch.js';
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
  /** least time between two rebuilds (default 200 ms): bounds the share of the serving thread rebuilds take under churn */
  rebuildMinIntervalMs?: number;
}

export interface DnsHandle {
  stop(): Promise<void>;
  port(): number;
}

interface Resolved {
  cfg: ZoneConfig;
  upstreams: Upstream[];
  workers: number;
  rateLimit: RateLimit;
}

function resolveOptions(opts: DnsOptions): Resolved {
  const ttl = opts.ttl ?? 5;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 3600) throw new SkiffError('ERR_DNS_CONFIG', `ttl must be an integer in 0..3600, got ${ttl}`);
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new SkiffError('ERR_DNS_CONFIG', `workers must be an integer in 1..64, got ${workers}`);
  if (opts.listen.length === 0) throw new SkiffError('ERR_DNS_CONFIG', 'dns needs at least one listen address');
  const own = opts.listen.map((l) => l.address);
  const cfg: ZoneConfig = {
    clusterDomain: (opts.clusterDomain ?? 'cluster.local').replace(/\.$/, '').toLowerCase(),
    ttl,
    pods: opts.pods ?? 'insecure',
    reverseFallthrough: opts.reverseFallthrough ?? true,
    nsAddresses: own.filter((a) => a !== '0.0.0.0' && a !== '::'),
  };
  const upstreams = opts.upstreams ? opts.upstreams.map(parseUpstream) : resolvConfUpstreams(opts.resolvConf, own);
  return { cfg, upstreams, workers, rateLimit: opts.rateLimit ?? { qps: 5000, burst: 10000 } };
}

export async function startDns(opts: DnsOptions): Promise<DnsHandle> {
  const { cfg, upstreams, workers, rateLimit } = resolveOptions(opts);
  let pool: WorkerPool | undefined;
  const watch = new ClusterWatch(
    opts.client,
    cfg,
    (zone) => {
      server.setZone(zone); // only called after start(), when server exists
      pool?.broadcast(snapshotToWire(zone.snap));
    },
    opts.rebuildDelayMs,
    opts.rebuildMinIntervalMs,
  );
  const forwarder = new Forwarder({ upstreams, timeoutMs: opts.forwardTimeoutMs });
  const server = new DnsServer({ zone: watch.current(), forwarder, rateLimit });
  const fail = async (code: string, msg: string, err: unknown): Promise<never> => {
    watch.stop();
    await pool?.stop();
    forwarder.close();
    await server.close();
    throw new SkiffError(code, msg, { cause: err });
  };
  await server.listen(opts.listen).catch((err) => fail('ERR_DNS_LISTEN', `dns cannot listen on ${opts.listen.map((l) => `${l.address}:${l.port}`).join(', ')}`, err));
  if (workers > 1) {
    pool = new WorkerPool({
      count: workers - 1,
      sockets: server.udpSockets(),
      init: () => ({ type: 'init', cfg, snap: snapshotToWire(watch.current().snap), upstreams, forwardTimeoutMs: opts.forwardTimeoutMs, rateLimit }),
    });
    await pool.start().catch((err) => fail('ERR_DNS_WORKERS', 'starting dns workers failed', err));
  }
  const port = server.port();
  void watch.start().then(() => log.info({ port, workers, upstreams: upstreams.map((u) => `${u.host}:${u.port}`), zone: cfg.clusterDomain }, 'dns synced and serving'));

  return {
    port: () => port,
    async stop() {
      watch.stop();
      await pool?.stop();
      forwarder.close();
      await server.close();
    },
  };
}

export { DnsServer } from './server.js';
export { ClusterZone } from './records.js';
export { Forwarder } from './forward.js';
