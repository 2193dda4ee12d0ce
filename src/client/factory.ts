import type { KubeObject } from '../api/object.js';
import { SharedInformer, type InformerOptions } from './informer.js';
import type { ApiClient, Informer, ResourceRef } from './types.js';

/** One shared informer per resource (and options), so components in one process share caches. */
export class InformerFactory {
  private readonly informers = new Map<string, SharedInformer>();
  constructor(readonly client: ApiClient, private readonly defaults: InformerOptions = {}) {}

  get<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: InformerOptions = {}): Informer<T> {
    const key = `${ref.group}/${ref.resource}?${JSON.stringify(opts)}`;
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new SharedInformer(this.client, ref, { ...this.defaults, ...opts });
      this.informers.set(key, inf);
      if (this.started) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  private started = false;

  start(): void {
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.synced()));
  }

  stop(): void {
    for (const inf of this.informers.values()) inf.stop();
  }
}
