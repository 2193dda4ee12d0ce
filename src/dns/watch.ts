/**
 * Informers over Services, EndpointSlices and Namespaces (and Pods for `pods: 'verified'`),
 * with a coalesced rebuild: the first change arms one timer; when it fires the whole zone is
 * rebuilt from the caches (level-triggered) and handed to `onZone`.
 */
import type { Namespace, Pod, Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { SharedInformer } from '../client/informer.js';
import type { ApiClient, Informer } from '../client/types.js';
import { metrics } from './metrics.js';
import { buildSnapshot } from './model.js';
import { ClusterZone, type ZoneConfig } from './records.js';

export class ClusterWatch {
  private readonly services: SharedInformer<Service & KubeObject>;
  private readonly slices: SharedInformer<EndpointSlice & KubeObject>;
  private readonly namespaces: SharedInformer<Namespace & KubeObject>;
  private readonly pods?: SharedInformer<Pod & KubeObject>;
  private readonly informers: Informer[];
  private zone: ClusterZone;
  private firstChange?: number;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    client: ApiClient,
    private readonly cfg: ZoneConfig,
    private readonly onZone: (zone: ClusterZone) => void,
    private readonly delayMs = 20,
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
    });
    return new ClusterZone(snap, this.cfg);
  }

  private changed(): void {
    if (this.stopped) return;
    this.firstChange ??= Date.now();
    this.timer ??= setTimeout(() => this.rebuild(), this.delayMs);
  }

  private rebuild(): void {
    this.timer = undefined;
    const started = this.firstChange ?? Date.now();
    this.firstChange = undefined;
    this.zone = this.build();
    this.onZone(this.zone);
    metrics.programming.observe((Date.now() - started) / 1000);
  }
}
