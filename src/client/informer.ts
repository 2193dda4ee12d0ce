import type { KubeObject } from '../api/object.js';
import { objectKey } from '../api/object.js';
import type { ApiClient, EventHandlers, Informer, ListOptions, ResourceRef, Watch, WatchEvent } from './types.js';
import { componentLogger } from '../util/log.js';

const log = componentLogger('informer');

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Watch timeout asked of the server; the informer re-watches when it ends. */
  watchTimeoutSeconds?: number;
  /** Max reconnect backoff. */
  maxBackoffMs?: number;
}

/**
 * List, then watch from the list's resourceVersion; relist on 410 Gone; reconnect with backoff.
 * Handlers run after the cache is updated. The cache holds the server's objects as they came.
 */
export class SharedInformer<T extends KubeObject = KubeObject> implements Informer<T> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly indexers = new Map<string, (obj: T) => string[]>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private synced_ = false;
  private syncWaiters: (() => void)[] = [];
  private watch?: Watch;
  private stopped = true;
  private rv = '';
  private backoffMs = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: ApiClient,
    readonly ref: ResourceRef,
    private readonly opts: InformerOptions = {},
  ) {}

  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
    if (this.synced_) for (const obj of this.cache.values()) h.add?.(obj);
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  addIndex(index: string, fn: (obj: T) => string[]): void {
    this.indexers.set(index, fn);
    const idx = new Map<string, Set<string>>();
    this.indices.set(index, idx);
    for (const [key, obj] of this.cache) for (const v of fn(obj)) addTo(idx, v, key);
  }

  byIndex(index: string, value: string): T[] {
    const keys = this.indices.get(index)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.cache.get(k)).filter((o): o is T => o !== undefined);
  }

  hasSynced(): boolean {
    return this.synced_;
  }

  synced(): Promise<void> {
    if (this.synced_) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.watch?.stop();
  }

  private listOpts(): ListOptions {
    return { namespace: this.opts.namespace, labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.client.list<T>(this.ref, this.listOpts());
      if (this.stopped) return;
      this.replace(list.items);
      this.rv = list.metadata.resourceVersion ?? '';
      this.backoffMs = 0;
      this.startWatch();
    } catch (err) {
      this.retry('list', err);
    }
  }

  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.cache.get(key);
      this.store(key, obj);
      if (!old) this.emit('add', undefined, obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', old, obj);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.remove(key);
        this.emit('delete', undefined, old);
      }
    }
    if (!this.synced_) {
      this.synced_ = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private startWatch(): void {
    if (this.stopped) return;
    const w = this.client.watch<T>(
      this.ref,
      { ...this.listOpts(), resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300 },
      (ev) => this.onEvent(ev),
    );
    this.watch = w;
    void w.done.then(({ error }) => {
      if (this.stopped || this.watch !== w) return;
      if (error) this.retry('watch', error);
      else this.startWatch();
    });
  }

  private onEvent(ev: WatchEvent<T>): void {
    if (ev.type === 'ERROR') {
      const code = (ev.object as { code?: number }).code;
      log.debug({ resource: this.ref.resource, code }, 'watch error event, relisting');
      this.watch?.stop();
      this.watch = undefined;
      void this.relist();
      return;
    }
    const rv = ev.object.metadata?.resourceVersion;
    if (rv) this.rv = rv;
    if (ev.type === 'BOOKMARK') return;
    const key = objectKey(ev.object);
    const old = this.cache.get(key);
    if (ev.type === 'DELETED') {
      if (!old) return;
      this.remove(key);
      this.emit('delete', undefined, ev.object);
      return;
    }
    this.store(key, ev.object);
    if (old) this.emit('update', old, ev.object);
    else this.emit('add', undefined, ev.object);
  }

  private retry(what: string, err: unknown): void {
    if (this.stopped) return;
    this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 200), this.opts.maxBackoffMs ?? 10_000);
    log.debug({ resource: this.ref.resource, what, err: String(err), backoffMs: this.backoffMs }, 'informer retry');
    this.timer = setTimeout(() => void this.relist(), this.backoffMs);
  }

  private store(key: string, obj: T): void {
    const old = this.cache.get(key);
    if (old) this.unindex(key, old);
    this.cache.set(key, obj);
    for (const [name, fn] of this.indexers) for (const v of fn(obj)) addTo(this.indices.get(name)!, v, key);
  }

  private remove(key: string): void {
    const old = this.cache.get(key);
    if (old) this.unindex(key, old);
    this.cache.delete(key);
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const set = idx.get(v);
        set?.delete(key);
        if (set && set.size === 0) idx.delete(v);
      }
    }
  }

  private emit(kind: 'add' | 'update' | 'delete', old: T | undefined, obj: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(obj);
        else if (kind === 'update') h.update?.(old!, obj);
        else h.delete?.(obj);
      } catch (err) {
        log.error({ err, resource: this.ref.resource }, 'informer handler threw');
      }
    }
  }
}

function addTo(idx: Map<string, Set<string>>, value: string, key: string): void {
  let set = idx.get(value);
  if (!set) idx.set(value, (set = new Set()));
  set.add(key);
}

/** Namespace index used by many controllers. */
export const byNamespace = (obj: KubeObject): string[] => [obj.metadata?.namespace ?? ''];
