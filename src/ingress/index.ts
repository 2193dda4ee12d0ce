import { availableParallelism, networkInterfaces } from 'node:os';
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
  };
  const server = new IngressServer(serverOpts, metrics);
  const ports = await server.listen(bind, opts.httpPort, opts.httpsPort);
  serverOpts.httpsPort = opts.redirectHttpsPort ?? ports.httpsPort;
  const workers = Math.max(1, opts.workers ?? availableParallelism());
  const pool = workers > 1 ? new WorkerPool(workers - 1, server, serverOpts, metrics) : undefined;
  const controller = new IngressController({
    client: opts.client,
    controllerName: opts.controllerName ?? DEFAULT_CONTROLLER,
    publishAddresses: opts.publishAddresses ?? defaultPublishAddresses(bind),
    recorder: opts.recorder ?? new ApiEventRecorder(opts.client, 'skiff-ingress'),
    apply: (table) => {
      const r = server.swap(table);
      pool?.broadcast(table);
      return r;
    },
  });
  try {
    await pool?.start();
    await controller.start();
  } catch (err) {
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
      controller.stop();
      await Promise.all([pool?.stop(), server.close()]);
      metrics.unexport();
    },
  };
}
