import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism, hostname, networkInterfaces } from 'node:os';
import { runLeaderElection } from '../client/leaderelection.js';
import type { ApiClient } from '../client/types.js';
import { ApiEventRecorder, type EventRecorder } from '../client/events.js';
import { componentLogger } from '../util/log.js';
import { IngressController } from './controller.js';
import { IngressMetrics } from './metrics.js';
import { DEFAULT_CONTROLLER } from './model.js';
import { DEFAULT_LIMITS, IngressServer, type ListenerLimits, type ServerOptions } from './server.js';
import { makeDefaultCertificate, type PemPair } from './tls.js';
import { WorkerPool } from './workers.js';

const log = componentLogger('ingress');

export interface IngressOptions extends Partial<ListenerLimits> {
  client: ApiClient;
  httpPort: number;
  httpsPort: number;
  /** default 0.0.0.0 */
  bindAddress?: string;
  /** IngressClass spec.controller value this controller serves, default skiff.io/ingress */
  controllerName?: string;
  /** proxy processes including this one, default one per core */
  workers?: number;
  /** addresses for status.loadBalancer.ingress, default: bindAddress if specific, else the first non-loopback IPv4 */
  publishAddresses?: string[];
  /** JSON access log through pino (component ingress-access), default true */
  accessLog?: boolean;
  /** default self-signed certificate; made with @peculiar/x509 when absent */
  defaultCertificate?: PemPair;
  /** port used in HTTP->HTTPS redirects, default httpsPort (use 443 behind a port mapping) */
  redirectHttpsPort?: number;
  recorder?: EventRecorder;
  /**
   * Only the holder of a Lease (kube-system/skiff-ingress-<hash of controllerName>) writes
   * status.loadBalancer, so several controllers of one class with different addresses (HA servers)
   * do not overwrite each other's status forever. Default true; false = always write.
   */
  statusLease?: boolean;
  /** identity in the status Lease, default hostname-pid-random */
  identity?: string;
  /** keep-alive HTTP/1.1 on raw sockets (fastpath.ts), default true; false: node:http only */
  fastPath?: boolean;
}

export interface IngressHandle {
  stop(): Promise<void>;
  /** bound ports (useful when 0 was asked) */
  httpPort: number;
  httpsPort: number;
  /** resolves after the next route-table sync (tests) */
  nextSync(): Promise<void>;
}

function defaultPublishAddresses(bind: string): string[] {
  if (bind !== '0.0.0.0' && bind !== '::') return [bind];
  const ips = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && i.family === 'IPv4' && !i.internal)
    .map((i) => i!.address)
    .sort();
  return ips.length ? [ips[0]] : ['127.0.0.1'];
}

/** Starts the ingress controller and its HTTP/HTTPS listeners. */
export async function startIngress(opts: IngressOptions): Promise<IngressHandle> {
  const bind = opts.bindAddress ?? '0.0.0.0';
  const metrics = new IngressMetrics();
  metrics.exportToShared();
  const defaultCert = opts.defaultCertificate ?? (await makeDefaultCertificate());
  const serverOpts: ServerOptions = {
    ...DEFAULT_LIMITS,
    headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? DEFAULT_LIMITS.keepAliveTimeoutMs,
    maxHeaderSize: opts.maxHeaderSize ?? DEFAULT_LIMITS.maxHeaderSize,
    defaultCert,
    httpsPort: opts.httpsPort,
    accessLog: opts.accessLog ?? true,
    maxTries: 3,
    failTimeoutMs: 10_000,
    fastPath: opts.fastPath ?? true,
  };
  const server = new IngressServer(serverOpts, metrics);
  const ports = await server.listen(bind, opts.httpPort, opts.httpsPort);
  serverOpts.httpsPort = opts.redirectHttpsPort ?? ports.httpsPort;
  const workers = Math.max(1, opts.workers ?? availableParallelism());
  const pool = workers > 1 ? new WorkerPool(workers - 1, server, serverOpts, metrics) : undefined;
  const controllerName = opts.controllerName ?? DEFAULT_CONTROLLER;
  let statusWriter = opts.statusLease === false;
  const controller = new IngressController({
    client: opts.client,
    controllerName,
    isStatusWriter: () => statusWriter,
    publishAddresses: opts.publishAddresses ?? defaultPublishAddresses(bind),
    recorder: opts.recorder ?? new ApiEventRecorder(opts.client, 'skiff-ingress'),
    apply: (table) => {
      const r = server.swap(table);
      pool?.broadcast(table);
      return r;
    },
  });
  const lease = opts.statusLease === false ? undefined : runLeaderElection({
    client: opts.client,
    name: `skiff-ingress-${createHash('sha256').update(controllerName).digest('hex').slice(0, 10)}`,
    identity: opts.identity ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    onStartedLeading: async () => {
      statusWriter = true;
      controller.resyncNow();
      return { stop: () => void (statusWriter = false) };
    },
  });
  try {
    await pool?.start();
    await controller.start();
  } catch (err) {
    await lease?.stop();
    controller.stop();
    await pool?.stop();
    await server.close(0);
    metrics.unexport();
    throw err;
  }
  log.info({ bind, ...ports, workers }, 'ingress listening');
  return {
    ...ports,
    nextSync: () => controller.nextSync(),
    async stop() {
      await lease?.stop().catch(() => undefined);
      controller.stop();
      await Promise.all([pool?.stop(), server.close()]);
      metrics.unexport();
    },
  };
}
