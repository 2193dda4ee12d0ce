import type { Kube } from './kube.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Node, Pod, Service } from 'kubernetes-types/core/v1.js';
import type { ApiClient } from '../client/types.js';
import type { Host } from '../host/host.js';
import { LocalHost } from '../host/host.js';
import { HelperHost, sharedExecHelper } from '../host/exec-helper.js';
import { R } from '../api/registry.js';
import { SharedInformer } from '../client/informer.js';
import { WorkQueue, runWorkers } from '../client/workqueue.js';
import { ApiEventRecorder } from '../client/events.js';
import { objectKey, splitKey } from '../api/object.js';
import { componentLogger } from '../util/log.js';
import { errorMessage, SkiffError } from '../util/errors.js';
import { counter, gauge, histogram } from '../util/metrics.js';
import { DockerCliRuntime } from './runtime/docker-cli.js';
import { NetnsRuntime } from './runtime/netns.js';
import type { ContainerRuntime } from './runtime/types.js';
import { BridgePodNetwork, type PodNetwork } from './network/index.js';
import { NodeAgent, localFacts } from './node.js';
import { ProbeRunner } from './probes.js';
import { Backoff } from './pod/backoff.js';
import { RuntimeCache } from './pod/snapshot.js';
import { PodWorkers, type PodTrace } from './pod/worker.js';
import { startKubeletServer, type KubeletServer } from './streaming/server.js';

const syncDuration = histogram({ name: 'skiff_kubelet_pod_sync_seconds', help: 'Duration of one pod sync', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
const syncErrors = counter({ name: 'skiff_kubelet_pod_sync_errors_total', help: 'Pod syncs that failed' });
const runningPods = gauge({ name: 'skiff_kubelet_running_pods', help: 'Pods bound to this node that the kubelet manages' });

export interface KubeletOptions {
  client: ApiClient;
  host: Host;
  nodeName: string;
  nodeIP: string;
  dataDir: string;
  runtime?: 'docker' | 'netns';
  clusterDNS?: string;
  clusterDomain?: string;
  /** kubelet HTTPS for logs/exec/portforward/stats, default 10250 (0 = pick a free port) */
  serverPort?: number;
  tls?: { cert: string; key: string; ca?: string };
  /** Additive knobs (tests and labs): restart backoff, resync period, pod worker count, bridge name. */
  restartBackoffMs?: { initial: number; max: number };
  resyncMs?: number;
  workers?: number;
  bridgeName?: string;
  /** Inject a runtime (unit tests: FakeRuntime) instead of building one from `runtime`. */
  runtimeImpl?: ContainerRuntime;
  /** Inject the pod network (unit tests) instead of the bridge plugin. */
  networkImpl?: PodNetwork;
  /** Called at each step of a pod's startup (benchmarks: the per-phase timeline). */
  trace?: PodTrace;
}

async function waitForPodCidr(client: ApiClient, nodeName: string, stopped: () => boolean): Promise<string> {
  for (let delay = 200; !stopped(); delay = Math.min(delay * 2, 2000)) {
    const node = await client.get<Kube<Node>>(R.nodes, nodeName).catch(() => undefined);
    if (node?.spec?.podCIDR) return node.spec.podCIDR;
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new SkiffError('ERR_KUBELET_STOPPED', 'stopped while waiting for Node.spec.podCIDR');
}

/**
 * Pure: does a pod update need a sync? Not when only its status moved (almost always the kubelet's
 * own write echoing back), unless the phase changed; the periodic resync still visits every pod.
 */
export function podUpdateNeedsSync(old: Pod, cur: Pod): boolean {
  if (old.status?.phase !== cur.status?.phase) return true;
  const rest = (p: Pod) => JSON.stringify([p.spec, { ...p.metadata, resourceVersion: undefined, managedFields: undefined }]);
  return rest(old) !== rest(cur);
}

function buildRuntime(opts: KubeletOptions, host: Host): ContainerRuntime {
  if (opts.runtimeImpl) return opts.runtimeImpl;
  const helper = sharedExecHelper();
  if (opts.runtime === 'netns') {
    return new NetnsRuntime(host, join(opts.dataDir, 'netns-runtime'), new HelperHost(null, helper), (f, a, o) => helper.spawnDetached(f, a, o));
  }
  return new DockerCliRuntime(new HelperHost(null, helper), opts.nodeName);
}

/**
 * The kubelet: registers the Node, heartbeats its Lease, and runs the pods bound to it through a
 * ContainerRuntime with the bridge pod network. Pods keep running when it stops; a new kubelet
 * adopts them.
 */
export async function startKubelet(opts: KubeletOptions): Promise<{ stop(): Promise<void>; port: number }> {
  const log = componentLogger('kubelet').child({ node: opts.nodeName });
  let stopped = false;
  // commands on a real host go through the exec helper (cheap spawns whatever this process's size)
  const host = opts.host instanceof LocalHost ? new HelperHost(opts.host.netns) : opts.host;
  const runtime = buildRuntime(opts, host);
  const version = runtime.name === 'docker' ? (await new HelperHost(null).exec('docker', ['version', '--format', '{{.Server.Version}}'], { allowFail: true })).stdout.trim() : '0.1.0';
  const server: KubeletServer = await startKubeletServer({ runtime, port: opts.serverPort ?? 10250, tls: opts.tls, log, nodeName: opts.nodeName, listPods: () => podInformer.list() });
  const agent = new NodeAgent(opts.client, localFacts(opts.nodeName, opts.nodeIP, server.port, runtime.name, version || 'unknown'), log);
  await agent.register();
  agent.start();

  const podInformer = new SharedInformer<Kube<Pod>>(opts.client, R.pods, { fieldSelector: `spec.nodeName=${opts.nodeName}` });
  const nodeInformer = new SharedInformer<Kube<Node>>(opts.client, R.nodes);
  const serviceInformer = new SharedInformer<Kube<Service>>(opts.client, R.services);
  const queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 10_000 });
  const timers: NodeJS.Timeout[] = [];
  let stopWorkers = (): void => undefined;
  let inflight = 0;

  const stop = async (): Promise<void> => {
    stopped = true;
    stopWorkers();
    queue.shutdown();
    podInformer.stop();
    nodeInformer.stop();
    serviceInformer.stop();
    agent.stop();
    for (const t of timers) clearInterval(t);
    for (let i = 0; i < 100 && inflight > 0; i++) await new Promise((r) => setTimeout(r, 50));
    workers?.stopAll();
    await server.close();
  };

  let workers: PodWorkers | undefined;
  try {
    const podCidr = await waitForPodCidr(opts.client, opts.nodeName, () => stopped);
    let network = opts.networkImpl;
    if (!network) {
      // pod-side commands enter the pod netns by pid or name: from the root netns, not wrapped in the node's
      const podHost = opts.host instanceof LocalHost ? new HelperHost(null) : host;
      // a HelperHost enters the node netns with `nsenter --net=` (root mount namespace): it can make pod netns
      const bridge = new BridgePodNetwork(host, opts.bridgeName ?? 'skiff0', podCidr, join(opts.dataDir, 'ipam'), podHost, host instanceof HelperHost);
      await bridge.bridge.setupNode();
      network = bridge;
      const syncRoutes = () => {
        const routes = nodeInformer.list().filter((n) => n.metadata && (n.metadata as { name?: string }).name !== opts.nodeName && n.spec?.podCIDR)
          .map((n) => ({ cidr: n.spec!.podCIDR!, via: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '' })).filter((r) => r.via);
        void bridge.bridge.syncRoutes(routes).catch((err) => log.warn({ err: errorMessage(err) }, 'route sync failed'));
      };
      nodeInformer.addHandlers({ add: syncRoutes, update: syncRoutes, delete: syncRoutes });
    }
    const hostResolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const cache = new RuntimeCache(runtime);
    workers = new PodWorkers({
      client: opts.client, runtime, cache, network, probes: new ProbeRunner(runtime, host), dataDir: opts.dataDir,
      nodeName: opts.nodeName, nodeIP: opts.nodeIP, log,
      dns: { clusterDNS: opts.clusterDNS ?? '10.96.0.10', clusterDomain: opts.clusterDomain ?? 'cluster.local', hostResolvConf },
      backoff: new Backoff(opts.restartBackoffMs?.initial ?? 10_000, opts.restartBackoffMs?.max ?? 300_000),
      events: new ApiEventRecorder(opts.client, 'kubelet', opts.nodeName),
      enqueue: (key, afterMs) => (afterMs ? queue.addAfter(key, afterMs) : queue.add(key)),
      trace: opts.trace,
      // the API is asked until the service cache has synced (a kubelet never waits on it to start)
      services: () => (serviceInformer.hasSynced() ? serviceInformer.list() : undefined),
    });
    const w = workers;
    const mine = (p: Pod) => p.spec?.nodeName === opts.nodeName;
    const liveUids = () => new Set(podInformer.list().filter(mine).map((p) => p.metadata!.uid!));
    podInformer.addHandlers({
      add: (p) => {
        if (!mine(p)) return;
        opts.trace?.(objectKey(p), 'seen');
        queue.add(objectKey(p));
      },
      update: (o, p) => mine(p) && podUpdateNeedsSync(o, p) && queue.add(objectKey(p)),
      delete: (p) => mine(p) && queue.add(objectKey(p)),
    });
    podInformer.start();
    nodeInformer.start();
    serviceInformer.start();
    await podInformer.synced();
    await w.cleanupOrphans(liveUids());
    const sync = async (key: string): Promise<void> => {
      if (stopped) return;
      inflight++;
      const end = syncDuration.startTimer();
      try {
        const pod = podInformer.get(key);
        if (!pod || !mine(pod)) {
          await w.cleanupOrphans(liveUids());
          return;
        }
        await w.syncPod(pod);
      } finally {
        end();
        inflight--;
      }
    };
    stopWorkers = runWorkers(queue, opts.workers ?? 8, sync, (key, err) => {
      syncErrors.inc();
      log.warn({ pod: splitKey(key).name, err: errorMessage(err) }, 'pod sync failed');
    });
    timers.push(setInterval(() => {
      const pods = podInformer.list().filter(mine);
      runningPods.set(pods.length);
      for (const p of pods) queue.add(objectKey(p));
      void w.cleanupOrphans(liveUids()).catch((err) => log.warn({ err: errorMessage(err) }, 'orphan cleanup failed'));
    }, opts.resyncMs ?? 10_000));
    log.info({ podCidr, runtime: runtime.name, port: server.port }, 'kubelet started');
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop, port: server.port };
}
