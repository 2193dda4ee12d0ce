import { R } from '../api/registry.js';
import type { KubeObject } from '../api/object.js';
import { SharedInformer } from '../client/informer.js';
import type { ApiClient } from '../client/types.js';
import type { Host } from '../host/host.js';
import { viaExecHelper } from '../host/exec-helper.js';
import { HINT_CHAIN, HostIptables, chainsInSave, detectBackend, type Iptables, type IptablesBackend } from '../host/iptables.js';
import { componentLogger } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import { isProxyChain, jumpRules } from './chains.js';
import { startProxyHealthServer } from './healthcheck.js';
import { applyLoadBalancerAddresses } from './lbaddr.js';
import { Proxier } from './proxier.js';

export { Proxier } from './proxier.js';
export type { SyncReport } from './proxier.js';

const log = componentLogger('proxy');

export interface ProxyOptions {
  client: ApiClient;
  host: Host;
  nodeName: string;
  /** When set, NodePorts answer only on these addresses and 127.0.0.1; default: every local address. */
  nodeIPs?: string[];
  /** Default 10.96.0.0/12: unallocated addresses in it are dropped. */
  serviceCIDR?: string;
  /** Default 10.244.0.0/16: traffic to cluster IPs from outside it is masqueraded. */
  clusterCIDR?: string;
  backend?: 'auto' | 'nft' | 'legacy';
  /** Default 1000 ms (with a burst of 2). */
  minSyncIntervalMs?: number;
  /** Default 600000 ms (10 min). */
  fullResyncIntervalMs?: number;
  /** e.g. 127.0.0.1:10256; /healthz is not served when absent. */
  healthzBindAddress?: string;
  /** Where healthCheckNodePorts listen. Default 0.0.0.0 when host is the root netns, else not served. */
  healthCheckBindAddress?: string | null;
  /** Bridge that holds LoadBalancer ingress IPs (default skiff0); null leaves addresses alone. */
  lbDevice?: string | null;
  /** Inject an Iptables (tests); default: the host's real binaries of the chosen backend. */
  iptables?: Iptables;
  /**
   * Default true: on a LocalHost, iptables runs through the shared exec helper (a small fork
   * server) rather than being spawned from this process, whose fork costs 10-30 ms at the heap a
   * 10,000-Service node agent has (see README, latency).
   */
  execHelper?: boolean;
}

export interface ProxyHandle {
  stop(): Promise<void>;
  proxier: Proxier;
  backend: IptablesBackend;
  healthzPort?: number;
}

/**
 * The Service proxy of a node: informers over Services, EndpointSlices and this Node, a Proxier
 * that renders them into SKIFF- iptables chains, /healthz. On stop the rules stay (like
 * kube-proxy); `cleanupProxyRules` removes them.
 */
export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const backend: IptablesBackend = opts.iptables?.backend ?? (!opts.backend || opts.backend === 'auto' ? await detectBackend(opts.host) : opts.backend);
  const iptables = opts.iptables ?? new HostIptables(iptablesHost(opts.host, opts.execHelper ?? true), backend);
  const sysctl = await opts.host.exec('sysctl', ['-w', 'net.ipv4.conf.all.route_localnet=1'], { allowFail: true });
  if (sysctl.exitCode !== 0) log.warn({ stderr: sysctl.stderr.trim() }, 'cannot enable route_localnet: NodePorts on 127.0.0.1 will not work');

  const services = new SharedInformer<KubeObject>(opts.client, R.services);
  const slices = new SharedInformer<KubeObject>(opts.client, R.endpointslices);
  const nodes = new SharedInformer<KubeObject>(opts.client, R.nodes, { fieldSelector: `metadata.name=${opts.nodeName}` });
  const fullResync = opts.fullResyncIntervalMs ?? 600_000;
  const proxier = new Proxier({
    iptables,
    host: opts.host,
    services,
    slices,
    nodes,
    ctx: {
      nodeName: opts.nodeName,
      clusterCIDR: opts.clusterCIDR ?? '10.244.0.0/16',
      serviceCIDR: opts.serviceCIDR ?? '10.96.0.0/12',
      nodePortAddresses: opts.nodeIPs,
    },
    minSyncIntervalMs: opts.minSyncIntervalMs ?? 1000,
    fullResyncIntervalMs: fullResync,
    lbDevice: opts.lbDevice === undefined ? 'skiff0' : opts.lbDevice,
    healthCheckBindAddress: opts.healthCheckBindAddress !== undefined ? opts.healthCheckBindAddress : opts.host.netns === null ? '0.0.0.0' : null,
  });
  for (const inf of [services, slices, nodes]) inf.start();
  await Promise.all([services.synced(), slices.synced(), nodes.synced()]);
  proxier.start();
  const healthz = opts.healthzBindAddress
    ? await startProxyHealthServer(opts.healthzBindAddress, () => proxier.healthStatus(), Math.max(2 * fullResync, 60_000))
    : undefined;
  log.info({ backend, node: opts.nodeName, netns: opts.host.netns }, 'service proxy started');
  return {
    proxier,
    backend,
    healthzPort: healthz?.port,
    async stop() {
      for (const inf of [services, slices, nodes]) inf.stop();
      await proxier.stop();
      await healthz?.stop();
    },
  };
}

/** Where iptables commands run: the exec helper for a real host, the given host otherwise (fakes). */
function iptablesHost(host: Host, helper: boolean): Host {
  return helper ? viaExecHelper(host) : host;
}

/**
 * Removes everything the proxy programmed: jumps from built-in chains, its SKIFF- chains in nat
 * and filter (on both backends unless one is named), the backend hint and the LB /32s it added.
 */
export async function cleanupProxyRules(host: Host, opts: { backend?: IptablesBackend; iptables?: Iptables; lbDevice?: string | null } = {}): Promise<void> {
  const targets: Iptables[] = opts.iptables ? [opts.iptables] : (opts.backend ? [opts.backend] : (['nft', 'legacy'] as const)).map((b) => new HostIptables(host, b));
  for (const ipt of targets) {
    try {
      for (const j of jumpRules()) {
        let more = true;
        while (more) more = await ipt.deleteRule(j.table, j.chain, j.args);
      }
      for (const table of ['nat', 'filter'] as const) {
        const ours = chainsInSave(await ipt.save(table)).filter(isProxyChain).sort();
        if (ours.length === 0) continue;
        const text = [`*${table}`, ...ours.map((c) => `:${c} - [0:0]`), ...ours.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
        await ipt.restore(text, { noflush: true });
      }
      await ipt.deleteChain('mangle', HINT_CHAIN);
    } catch (err) {
      log.warn({ backend: ipt.backend, err: errorMessage(err) }, 'proxy cleanup incomplete');
    }
  }
  const device = opts.lbDevice === undefined ? 'skiff0' : opts.lbDevice;
  if (device) await applyLoadBalancerAddresses(host, device, []);
}
