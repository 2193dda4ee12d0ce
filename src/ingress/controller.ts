import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Ingress, IngressClass } from 'kubernetes-types/networking/v1.js';
import type { Secret, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { R } from '../api/registry.js';
import { splitKey, type KubeObject } from '../api/object.js';
import { InformerFactory } from '../client/factory.js';
import type { ApiClient, Informer } from '../client/types.js';
import type { EventRecorder } from '../client/events.js';
import { runWorkers, WorkQueue } from '../client/workqueue.js';
import { componentLogger } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import {
  SERVICE_NAME_LABEL, toClassInfo, toIngressInfo, toSecretInfo, toServiceInfo, toSliceInfo,
  type ClassInfo, type IngressInfo, type IngressSnapshot, type SecretInfo, type SliceInfo,
} from './model.js';
import { claimedIngresses, renderRoutes, type RouteTable } from './routes.js';

const log = componentLogger('ingress');

export interface ControllerOptions {
  client: ApiClient;
  controllerName: string;
  /** addresses written to status.loadBalancer.ingress */
  publishAddresses: string[];
  recorder: EventRecorder;
  /** installs a new route table everywhere; returns secrets whose certificates failed to load */
  apply(table: RouteTable): { failedSecrets: string[] };
  /** minimum time between two route-table renders (coalescing), default 50ms */
  minSyncIntervalMs?: number;
  /** whether this instance writes status (the holder of the status Lease); default always */
  isStatusWriter?: () => boolean;
  statusWorkers?: number;
}

const SYNC = 'sync';

/**
 * Watches Ingresses, IngressClasses, Services, EndpointSlices and Secrets; every change enqueues one
 * coalesced `sync` that renders the whole route table and swaps it if it changed. Status updates and
 * Events are separate, idempotent steps.
 */
export class IngressController {
  private readonly factory: InformerFactory;
  private readonly ingresses: Informer<Ingress & KubeObject>;
  private readonly classes: Informer<IngressClass & KubeObject>;
  private readonly services: Informer<Service & KubeObject>;
  private readonly slices: Informer<EndpointSlice & KubeObject>;
  private readonly secrets: Informer<Secret & KubeObject>;
  private readonly queue = new WorkQueue({ baseDelayMs: 50, maxDelayMs: 10_000 });
  private stopWorkers?: () => void;
  private lastHash = '';
  private lastSyncAt = 0;
  private claimed = new Set<string>();
  private readonly secretCache = new Map<string, { rv: string; info: SecretInfo }>();
  private readonly emitted = new Map<string, Set<string>>();
  /** status writes whose watch event has not reached the cache yet: key -> {rv written over, addresses} */
  private readonly pendingStatus = new Map<string, { rv: string; want: string }>();
  /** status writes done by this controller (tests, metrics) */
  statusWrites = 0;
  private resync?: NodeJS.Timeout;
  /** resolves the next time a sync has applied (tests, startup) */
  private syncWaiters: (() => void)[] = [];
  syncCount = 0;

  constructor(private readonly opts: ControllerOptions) {
    this.factory = new InformerFactory(opts.client);
    this.ingresses = this.factory.get(R.ingresses);
    this.classes = this.factory.get(R.ingressclasses);
    this.services = this.factory.get(R.services);
    this.slices = this.factory.get(R.endpointslices);
    this.secrets = this.factory.get(R.secrets);
    this.slices.addIndex('service', (s) => {
      const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      return svc ? [`${s.metadata?.namespace}/${svc}`] : [];
    });
    const enqueue = { add: () => this.queue.add(SYNC), update: () => this.queue.add(SYNC), delete: () => this.queue.add(SYNC) };
    for (const inf of [this.ingresses, this.classes, this.services, this.slices, this.secrets] as Informer<KubeObject>[]) inf.addHandlers(enqueue);
  }

  async start(): Promise<void> {
    this.factory.start();
    await this.factory.waitForSync();
    this.stopWorkers = runWorkers(this.queue, this.opts.statusWorkers ?? 2, (key) => this.process(key), (key, err) => log.warn({ key, err: errorMessage(err) }, 'ingress sync failed'));
    const first = this.nextSync();
    this.queue.add(SYNC);
    await first;
    this.resync = setInterval(() => this.queue.add(SYNC), 30_000);
    this.resync.unref();
  }

  stop(): void {
    if (this.resync) clearInterval(this.resync);
    this.stopWorkers?.();
    this.factory.stop();
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** Re-evaluates everything now (e.g. after becoming the status writer). */
  resyncNow(): void {
    this.queue.add(SYNC);
  }

  /** Resolves after the next route-table sync completes. */
  nextSync(): Promise<void> {
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private async process(key: string): Promise<void> {
    if (key === SYNC) return this.syncRoutes();
    if (key.startsWith('status/')) return this.syncStatus(key.slice('status/'.length));
  }

  private secretInfo(key: string): SecretInfo | undefined {
    const s = this.secrets.get(key);
    if (!s) return undefined;
    const rv = s.metadata?.resourceVersion ?? '';
    const hit = this.secretCache.get(key);
    if (hit && hit.rv === rv) return hit.info;
    const info = toSecretInfo(s);
    this.secretCache.set(key, { rv, info });
    return info;
  }

  /** Converts the caches into a snapshot of what the claimed Ingresses reference. */
  snapshot(): { snap: IngressSnapshot; all: IngressInfo[] } {
    const all = this.ingresses.list().map(toIngressInfo);
    const classes = this.classes.list().map(toClassInfo);
    const claimed = claimedIngresses(all, classes, this.opts.controllerName);
    const svcKeys = new Set<string>();
    const secretKeys = new Set<string>();
    for (const ing of claimed) {
      const refs = [ing.defaultBackend, ...ing.rules.flatMap((r) => r.paths.map((p) => p.backend))];
      for (const b of refs) if (b) svcKeys.add(`${ing.namespace}/${b.service}`);
      for (const t of ing.tls) if (t.secretName) secretKeys.add(`${ing.namespace}/${t.secretName}`);
    }
    for (const k of this.secretCache.keys()) if (!secretKeys.has(k)) this.secretCache.delete(k);
    const services = [...svcKeys].map((k) => this.services.get(k)).filter((s) => s !== undefined).map(toServiceInfo);
    const slices = [...svcKeys].flatMap((k) => this.slices.byIndex('service', k)).map(toSliceInfo).filter((s): s is SliceInfo => s !== undefined);
    const secrets = [...secretKeys].map((k) => this.secretInfo(k)).filter((s) => s !== undefined);
    return { snap: { ingresses: claimed, classes, services, slices, secrets }, all };
  }

  private async syncRoutes(): Promise<void> {
    const wait = (this.opts.minSyncIntervalMs ?? 50) - (Date.now() - this.lastSyncAt);
    if (wait > 0 && this.lastSyncAt > 0) {
      this.queue.addAfter(SYNC, wait);
      return;
    }
    this.lastSyncAt = Date.now();
    const { snap, all } = this.snapshot();
    const { table, claimed, problems } = renderRoutes(snap, this.opts.controllerName);
    const hash = createHash('sha256').update(JSON.stringify(table)).digest('hex');
    if (hash !== this.lastHash) {
      const { failedSecrets } = this.opts.apply(table);
      this.lastHash = hash;
      for (const s of failedSecrets) log.warn({ secret: s }, 'certificate could not be loaded; serving the default certificate');
      log.info({ ingresses: claimed.length, hash: hash.slice(0, 12) }, 'route table swapped');
    }
    this.recordProblems(all, problems);
    this.claimed = new Set(claimed);
    for (const k of this.pendingStatus.keys()) if (!all.some((i) => i.key === k)) this.pendingStatus.delete(k);
    if (this.opts.isStatusWriter?.() ?? true) {
      for (const ing of all) if (this.wantedStatus(ing, snap.classes) !== undefined) this.queue.add(`status/${ing.key}`);
    }
    this.syncCount++;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** One Warning Event per new (Ingress, problem); repeats are not re-sent while they persist. */
  private recordProblems(all: IngressInfo[], problems: { ingress: string; reason: string; message: string }[]): void {
    const byIngress = new Map<string, Set<string>>();
    for (const p of problems) {
      const set = byIngress.get(p.ingress) ?? new Set<string>();
      set.add(`${p.reason}\n${p.message}`);
      byIngress.set(p.ingress, set);
    }
    for (const [key, set] of byIngress) {
      const prev = this.emitted.get(key) ?? new Set<string>();
      const obj = this.ingresses.get(key);
      if (obj) for (const p of set) if (!prev.has(p)) {
        const [reason, message] = p.split('\n');
        this.opts.recorder.event(obj, 'Warning', reason, message);
      }
    }
    this.emitted.clear();
    for (const [k, v] of byIngress) if (all.some((i) => i.key === k)) this.emitted.set(k, v);
  }

  /** The addresses status should have, or undefined when it is right already or not ours to touch. */
  private wantedStatus(ing: IngressInfo, classes: ClassInfo[]): string[] | undefined {
    const want = statusAddressesFor(ing, this.claimed.has(ing.key), classes, this.opts.controllerName, this.opts.publishAddresses);
    if (!want || sameList(ing.statusAddresses, want)) return undefined;
    // written already, the watch event is on its way
    const pending = this.pendingStatus.get(ing.key);
    if (pending && pending.rv === (ing.resourceVersion ?? '') && pending.want === [...want].sort().join(',')) return undefined;
    return want;
  }

  private async syncStatus(key: string): Promise<void> {
    const obj = this.ingresses.get(key);
    if (!obj || !(this.opts.isStatusWriter?.() ?? true)) return;
    const ing = toIngressInfo(obj);
    const want = this.wantedStatus(ing, this.classes.list().map(toClassInfo));
    if (!want) return;
    const { namespace, name } = splitKey(key);
    const lb = want.map((a) => (isIP(a) ? { ip: a } : { hostname: a }));
    await this.opts.client.patch(R.ingresses, name, { status: { loadBalancer: { ingress: lb } } }, { namespace, type: 'merge', subresource: 'status' });
    this.statusWrites++;
    this.pendingStatus.set(key, { rv: ing.resourceVersion ?? '', want: [...want].sort().join(',') });
  }
}

/**
 * What status.loadBalancer.ingress of an Ingress should be, from this controller's point of view:
 * our addresses when we claim it; empty when it carries our addresses but is no longer ours and no
 * other controller's class claims it (so two controllers sharing an address never undo each other);
 * undefined when it is not ours to touch.
 */
export function statusAddressesFor(ing: IngressInfo, claimed: boolean, classes: ClassInfo[], controller: string, ours: string[]): string[] | undefined {
  if (claimed) return ours;
  if (ing.statusAddresses.length === 0 || !sameList(ing.statusAddresses, ours)) return undefined;
  const named = ing.className ?? ing.legacyClass;
  const owner = named !== undefined ? classes.filter((c) => c.name === named) : classes.filter((c) => c.isDefault);
  return owner.some((c) => c.controller !== controller) ? undefined : [];
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}
