import type { KubeObject } from '../api/object.js';

/** Identifies a resource on the API: group '' is core. */
export interface ResourceRef {
  group: string;
  version: string;
  /** plural resource name, e.g. 'pods', 'endpointslices' */
  resource: string;
  namespaced: boolean;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: WatchEventType;
  object: T;
}

export interface Watch {
  /** Ends the watch; the callback gets no further events. */
  stop(): void;
  /** Resolves when the server or stop() ends the stream (error set if it failed). */
  done: Promise<{ error?: Error }>;
}

/** The API as every component sees it (REST client over HTTPS, or a fake in unit tests). */
export interface ApiClient {
  get<T extends KubeObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T>;
  list<T extends KubeObject>(ref: ResourceRef, opts?: ListOptions): Promise<ObjectList<T>>;
  create<T extends KubeObject>(ref: ResourceRef, obj: T, namespace?: string): Promise<T>;
  update<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: { subresource?: string }): Promise<T>;
  patch<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    opts?: { namespace?: string; type?: 'merge' | 'strategic' | 'json' | 'apply'; subresource?: string; fieldManager?: string; force?: boolean },
  ): Promise<T>;
  delete(ref: ResourceRef, name: string, namespace?: string, opts?: { propagationPolicy?: string; gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } }): Promise<KubeObject>;
  watch<T extends KubeObject>(ref: ResourceRef, opts: ListOptions & { allowWatchBookmarks?: boolean; timeoutSeconds?: number }, onEvent: (ev: WatchEvent<T>) => void): Watch;
  /** Raw request for subresources and non-resource paths (/version, pods/log, bindings...). */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: unknown }>;
}

export interface EventHandlers<T extends KubeObject> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

/** A cache kept in sync by list + watch. Objects it hands out are shared: clone before changing. */
export interface Informer<T extends KubeObject = KubeObject> {
  readonly ref: ResourceRef;
  addHandlers(h: EventHandlers<T>): void;
  /** Cached objects, optionally only one namespace's. */
  list(namespace?: string): T[];
  /** By key: `ns/name` or `name`. */
  get(key: string): T | undefined;
  /** Objects an index function mapped to `value` (see addIndex). */
  byIndex(index: string, value: string): T[];
  addIndex(index: string, fn: (obj: T) => string[]): void;
  hasSynced(): boolean;
  /** Resolves once the first list is in the cache. */
  synced(): Promise<void>;
  start(): void;
  stop(): void;
}
