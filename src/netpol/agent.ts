import type { Namespace, Node, Pod } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { InformerFactory } from '../client/factory.js';
import type { ApiClient } from '../client/types.js';
import type { Host } from '../host/host.js';
import { viaExecHelper } from '../host/exec-helper.js';
import { errorMessage } from '../util/errors.js';
import { componentLogger } from '../util/log.js';
import { gauge, histogram } from '../util/metrics.js';
import { NetpolApplier } from './apply.js';
import { DropLogger } from './droplog.js';
import { podKey, toNamespaceInfo, toPodInfo, toPolicyInfo, type NamespaceInfo, type PodInfo, type PolicyInfo, type Snapshot } from './model.js';
import { shortHash } from './names.js';
import { NetpolRenderer, type RenderOptions } from './render.js';
import { Selection } from './select.js';

const log = componentLogger('netpol');

type Kube<T> = T & KubeObject;

const syncSeconds = histogram({ name: 'skiff_netpol_sync_duration_seconds', help: 'Render + apply time of one sync', labelNames: ['full'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
const latencySeconds = histogram({ name: 'skiff_netpol_programming_latency_seconds', help: 'From an API change seen to the kernel programmed', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
const policiesProgrammed = gauge({ name: 'skiff_netpol_policies_programmed', help: 'NetworkPolicies in the last programmed state' });
const podsIsolated = gauge({ name: 'skiff_netpol_pods_isolated', help: 'Pods of this node isolated by some policy', labelNames: ['direction'] as const });
const syncErrors = gauge({ name: 'skiff_netpol_sync_failing', help: '1 while the last sync failed' });

export interface NetpolOptions {
  client: ApiClient;
  host: Host;
  nodeName: string;
  podCIDR?: string;
  dropLog?: { path?: string; ratePerSec?: number } | false;
  /** iptables flavour (default 'iptables', i.e. nft) */
  iptables?: string;
  /** periodic full resync (default 5 min) */
  resyncMs?: number;
  /**
   * least time between the starts of two syncs (default 10 ms): a change after a quiet period is
   * synced at once (same event-loop turn's changes together), a burst is coalesced
   */
  minSyncIntervalMs?: number;
  /**
   * Default true: on a LocalHost, iptables and ipset run through the shared exec helper (a small
   * fork server, src/host/exec-helper.ts) instead of forking this large process for each command.
   */
  execHelper?: boolean;
}

export interface NetpolHandle {
  stop(): Promise<void>;
  /** Resolves once every change seen so far is programmed (tests, the lab). */
  flush(): Promise<void>;
  /** The last snapshot programmed (explain, drop log). */
  lastSnapshot(): Snapshot | null;
}

/** The per-instance tag in drop-log prefixes, so several agents on one kernel log apart. */
export function dropTag(nodeName: string, netns: string | null): string {
  return shortHash(`${nodeName}|${netns ?? ''}`).slice(0, 6).toLowerCase();
}

export async function startNetpolAgent(opts: NetpolOptions): Promise<NetpolHandle> {
  const podCIDR = opts.podCIDR ?? (await opts.client.get<Kube<Node>>(R.nodes, opts.nodeName).then((n) => n.spec?.podCIDR, () => undefined));
  if (!podCIDR) log.warn({ node: opts.nodeName }, 'no pod CIDR: new pods are not gated until programmed');
  const tag = dropTag(opts.nodeName, opts.host.netns);
  const ropts: RenderOptions = { podCIDR, dropLog: opts.dropLog === false ? null : { tag, ratePerSec: opts.dropLog?.ratePerSec ?? 20 } };
  const applier = new NetpolApplier(opts.execHelper === false ? opts.host : viaExecHelper(opts.host), { iptables: opts.iptables });
  // The gate first: from here on an address in the pod CIDR is dark until programmed.
  await applier.ensureBase(ropts);

  const factory = new InformerFactory(opts.client);
  const pods = factory.get<Kube<Pod>>(R.pods);
  const namespaces = factory.get<Kube<Namespace>>(R.namespaces);
  const policies = factory.get<Kube<NetworkPolicy>>(R.networkpolicies);

  let last: Snapshot | null = null;
  let lastSel: Selection | null = null;
  let dirtySince: number | null = null;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  const waiters: (() => void)[] = [];

  // Informer caches replace an object on every change, so conversions are memoized per object:
  // unchanged policies keep their slim struct, which is what lets the renderer reuse their chains.
  const converted = new WeakMap<object, PolicyInfo | PodInfo | NamespaceInfo | null>();
  const convert = <A extends object, B>(obj: A, fn: (o: A) => B): B => {
    if (converted.has(obj)) return converted.get(obj) as B;
    const out = fn(obj);
    converted.set(obj, out as PolicyInfo | PodInfo | NamespaceInfo | null);
    return out;
  };
  const policyInfo = (np: Kube<NetworkPolicy>): PolicyInfo | null => {
    try {
      return toPolicyInfo(np);
    } catch (err) {
      log.warn({ policy: `${np.metadata?.namespace}/${np.metadata?.name}`, err: errorMessage(err) }, 'policy skipped');
      return null;
    }
  };
  const snapshot = (): Snapshot => ({
    nodeName: opts.nodeName,
    pods: pods.list().map((p) => convert(p, toPodInfo)).filter((p) => p !== null),
    namespaces: namespaces.list().map((ns) => convert(ns, toNamespaceInfo)),
    policies: policies.list().map((np) => convert(np, policyInfo)).filter((p) => p !== null),
  });
  const renderer = new NetpolRenderer(ropts);
  let lastSelSnap: Snapshot | null = null;
  const selection = (): Selection | null => {
    if (last && lastSelSnap !== last) {
      lastSel = new Selection(last);
      lastSelSnap = last;
    }
    return lastSel;
  };

  let lastStart = -Infinity;
  const syncOnce = async (): Promise<void> => {
    const since = dirtySince;
    dirtySince = null;
    const start = performance.now();
    lastStart = start;
    const snap = snapshot();
    const rendered = renderer.render(snap);
    try {
      const stats = await applier.apply(rendered);
      failures = 0;
      syncErrors.set(0);
      last = snap;
      const ms = performance.now() - start;
      syncSeconds.observe({ full: String(stats.full) }, ms / 1000);
      if (since !== null) latencySeconds.observe((performance.now() - since) / 1000);
      policiesProgrammed.set(snap.policies.length);
      const progs = [...rendered.pods.values()];
      podsIsolated.set({ direction: 'ingress' }, progs.filter((p) => p.ingressChain).length);
      podsIsolated.set({ direction: 'egress' }, progs.filter((p) => p.egressChain).length);
      log.debug({ ms: Math.round(ms), ...stats }, 'synced');
    } catch (err) {
      failures++;
      syncErrors.set(1);
      dirtySince = dirtySince ?? since ?? performance.now();
      log.error({ err: errorMessage(err), failures }, 'sync failed; next sync is full');
      throw err;
    }
  };

  // Bounded frequency, as kube-proxy's runner: at once if the last sync started long enough ago.
  const schedule = (delay = Math.max(0, lastStart + (opts.minSyncIntervalMs ?? 10) - performance.now())): void => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (running) {
        void running.finally(() => schedule());
        return;
      }
      running = syncOnce()
        .catch(() => schedule(Math.min(30_000, 500 * 2 ** Math.min(failures, 6))))
        .finally(() => {
          running = null;
          if (dirtySince === null && !timer) for (const w of waiters.splice(0)) w();
        });
    }, delay);
  };

  const changed = (): void => {
    dirtySince = dirtySince ?? performance.now();
    if (pods.hasSynced() && namespaces.hasSynced() && policies.hasSynced()) schedule();
  };
  for (const inf of [pods, namespaces, policies] as const) {
    (inf as typeof pods).addHandlers({ add: changed, update: changed, delete: changed });
  }
  factory.start();
  await factory.waitForSync();
  dirtySince = dirtySince ?? performance.now();
  await syncOnce().catch(() => schedule(500));
  const resync = setInterval(() => {
    applier.forceFull();
    changed();
  }, opts.resyncMs ?? 300_000);

  let dropLogger: DropLogger | null = null;
  if (opts.dropLog !== false) {
    dropLogger = new DropLogger({
      tag,
      path: opts.dropLog?.path,
      ratePerSec: opts.dropLog?.ratePerSec,
      log,
      lookup: {
        podOf: (ip) => {
          const p = selection()?.podByIp.get(ip);
          return p ? podKey(p) : undefined;
        },
        isolating: (pod, dir) => {
          const [ns, name] = pod.split('/');
          const sel = selection();
          const p = sel?.podsByNs.get(ns)?.find((x) => x.name === name);
          return p && sel ? sel.isolating(p, dir).map(podKey) : [];
        },
      },
    });
    dropLogger.start();
  }
  log.info({ node: opts.nodeName, podCIDR, netns: opts.host.netns }, 'netpol started');

  return {
    async stop() {
      stopped = true;
      clearInterval(resync);
      if (timer) clearTimeout(timer);
      factory.stop();
      await running;
      await dropLogger?.stop();
      for (const w of waiters.splice(0)) w();
    },
    flush() {
      if (dirtySince === null && !running && !timer) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    lastSnapshot: () => last,
  };
}
