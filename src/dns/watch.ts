/**
 * Informers over Services, EndpointSlices and Namespaces (and Pods for `pods: 'verified'`),
 * with a coalesced, rate-limited rebuild: the first change arms one timer (`delayMs`, and no
 * sooner than `minIntervalMs` after the previous rebuild); when it fires the whole zone is
 * rebuilt from the caches (level-triggered, converting only the objects that changed) and
 * handed to `onZone`. A rebuild runs on the thread that serves DNS, so under constant churn
 * the interval bounds how much of that thread rebuilds take.
 */
import type { Namespace, Pod, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { SharedInformer } from '../client/informer.js';
import type { ApiClient, Informer } from '../client/types.js';
import { metrics } from './metrics.js';
import { buildSnapshot, SnapshotMemo } from './model.js';
import { ClusterZone, type ZoneConfig } from './records.js';

export class ClusterWatch {
  private readonly services: SharedInformer<Service & KubeObject>;
  private readonly slices: SharedInformer<EndpointSlice & KubeObject>;
  private readonly namespaces: SharedInformer<Namespace & KubeObject>;
  private readonly pods?: SharedInformer<Pod & KubeObject>;
  private readonly informers: Informer[];
  private zone: ClusterZone;
  private readonly memo = new SnapshotMemo();
  private firstChange?: number;
  private lastRebuild = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    client: ApiClient,
    private readonly cfg: ZoneConfig,
    private readonly onZone: (zone: ClusterZone) => void,
    private readonly delayMs = 20,
    private readonly minIntervalMs = 200,
  ) {
    this.services = new SharedInformer(client, R.services);
    this.slices = new SharedInformer(client, R.endpointslices);
    this.namespaces = new SharedInformer(client, R.namespaces);
    if (cfg.pods === 'verified') this.pods = new SharedInformer(client, R.pods);
    this.informers = [this.services, this.slices, this.namespaces, ...(this.pods ? [this.pods] : [])] as Informer[];
    const changed = () => this.changed();
    for (const inf of this.informers) inf.addHandlers({ add: changed, update: changed, delete: changed });
    this.zone = this.build();
  }

  current(): ClusterZone {
    return this.zone;
  }

  /** Starts the informers; resolves once all have synced and the synced zone is live. */
  async start(): Promise<void> {
    for (const inf of this.informers) inf.start();
    await Promise.all(this.informers.map((i) => i.synced()));
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.rebuild();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const inf of this.informers) inf.stop();
  }

  private build(): ClusterZone {
    const snap = buildSnapshot({
      services: this.services.list(),
      slices: this.slices.list(),
      namespaces: this.namespaces.list(),
      pods: this.pods?.list(),
      synced: this.informers.every((i) => i.hasSynced()),
      serial: Math.floor(Date.now() / 1000),
    }, this.memo);
    return new ClusterZone(snap, this.cfg);
  }

  private changed(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.firstChange ??= now;
    this.timer ??= setTimeout(() => this.rebuild(), Math.max(this.delayMs, this.lastRebuild + this.minIntervalMs - now));
  }

  private rebuild(): void {
    this.timer = undefined;
    this.lastRebuild = Date.now();
    const started = this.firstChange ?? this.lastRebuild;
    this.firstChange = undefined;
    this.zone = this.build();
    this.onZone(this.zone);
    metrics.programming.observe((Date.now() - started) / 1000);
  }
}
