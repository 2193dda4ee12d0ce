import { R } from '../api/registry.js';
import type { KubeObject } from '../api/object.js';
import type { ApiClient } from './types.js';
import { componentLogger } from '../util/log.js';
import { gauge } from '../util/metrics.js';

const log = componentLogger('leaderelection');
const leader = gauge({ name: 'skiff_leader_election_master_status', help: '1 while this process holds the lease', labelNames: ['name'] as const });

export interface LeaderElectionOptions {
  client: ApiClient;
  /** Lease name in `namespace` (default kube-system) */
  name: string;
  namespace?: string;
  identity: string;
  leaseDurationSeconds?: number; // 15
  renewDeadlineMs?: number; // 10 s
  retryPeriodMs?: number; // 2 s
  onStartedLeading: () => Promise<{ stop(): Promise<void> | void }>;
}

type Lease = KubeObject & { spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string; leaseTransitions?: number } };

const micro = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

/**
 * client-go style leader election on a coordination.k8s.io Lease: acquire when free or expired,
 * renew every retry period, give up (and stop the work) when a renewal misses the deadline.
 * Writes are compare-and-swap on resourceVersion, so two candidates never both lead.
 */
export function runLeaderElection(o: LeaderElectionOptions): { stop(): Promise<void>; isLeader(): boolean } {
  const ns = o.namespace ?? 'kube-system';
  const duration = o.leaseDurationSeconds ?? 15;
  const retry = o.retryPeriodMs ?? 2000;
  const deadline = o.renewDeadlineMs ?? 10_000;
  let stopped = false;
  let leading: { stop(): Promise<void> | void } | undefined;
  let lastRenew = 0;
  let timer: NodeJS.Timeout | undefined;

  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = Date.now();
    let cur: Lease | undefined;
    try {
      cur = await o.client.get<Lease>(R.leases, o.name, ns);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    const spec = { holderIdentity: o.identity, leaseDurationSeconds: duration, renewTime: micro(now) };
    if (!cur) {
      await o.client.create(R.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: o.name, namespace: ns }, spec: { ...spec, acquireTime: micro(now), leaseTransitions: 0 } }, ns);
      return true;
    }
    const s = cur.spec ?? {};
    const renewed = s.renewTime ? Date.parse(s.renewTime) : 0;
    const expired = renewed + (s.leaseDurationSeconds ?? duration) * 1000 < now;
    if (s.holderIdentity && s.holderIdentity !== o.identity && !expired) return false;
    const mine = s.holderIdentity === o.identity;
    await o.client.update(R.leases, {
      ...cur,
      spec: { ...s, ...spec, acquireTime: mine ? s.acquireTime : micro(now), leaseTransitions: (s.leaseTransitions ?? 0) + (mine ? 0 : 1) },
    });
    return true;
  };

  const loop = async (): Promise<void> => {
    if (stopped) return;
    let ok = false;
    try {
      ok = await tryAcquireOrRenew();
    } catch (err) {
      log.debug({ name: o.name, err: String(err) }, 'lease attempt failed');
    }
    if (ok) {
      lastRenew = Date.now();
      if (!leading && !stopped) {
        log.info({ name: o.name, identity: o.identity }, 'became leader');
        leader.set({ name: o.name }, 1);
        leading = await o.onStartedLeading();
      }
    } else if (leading && Date.now() - lastRenew > deadline) {
      log.warn({ name: o.name, identity: o.identity }, 'lost the lease, stopping');
      leader.set({ name: o.name }, 0);
      const l = leading;
      leading = undefined;
      await l.stop();
    }
    if (!stopped) timer = setTimeout(() => void loop(), retry);
  };
  void loop();
  return {
    isLeader: () => !!leading,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (leading) {
        await leading.stop();
        leading = undefined;
        leader.set({ name: o.name }, 0);
        // release: let another server take over at once
        const cur = await o.client.get<Lease>(R.leases, o.name, ns).catch(() => undefined);
        if (cur?.spec?.holderIdentity === o.identity) await o.client.update(R.leases, { ...cur, spec: { ...cur.spec, holderIdentity: undefined, renewTime: micro(0) } }).catch(() => undefined);
      }
    },
  };
}
