import type { KubeObject } from '../api/object.js';
import { apiVersionOf, type ResourceInfo } from '../api/registry.js';
import type { CreateGuard, KV, Store, StoreEvent, StoreWatch } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { errors, StatusError } from './errors.js';

/** Encrypts/decrypts values of some resources (Secrets) on their way to and from the store. */
export interface ValueTransformer {
  toStorage(resource: string, plain: Buffer): Buffer;
  fromStorage(resource: string, stored: Buffer): Buffer;
}

export interface ObjectEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  prevObject?: KubeObject;
  revision: number;
}

/**
 * Objects of one resource in the store: keys `/registry/<group|core>/<resource>/[<ns>/]<name>`,
 * values JSON without resourceVersion (it is the key's modRevision, set on the way out).
 */
export class ResourceStorage {
  constructor(
    readonly info: ResourceInfo,
    private readonly store: Store,
    private readonly transformer?: ValueTransformer,
  ) {}

  prefix(namespace?: string): string {
    const base = `/registry/${this.info.group || 'core'}/${this.info.resource}/`;
    return this.info.namespaced && namespace ? `${base}${namespace}/` : base;
  }

  key(name: string, namespace?: string): string {
    return this.info.namespaced ? `${this.prefix(namespace)}${name}` : `${this.prefix()}${name}`;
  }

  encode(obj: KubeObject): Buffer {
    return this.toStorage(this.serialize(obj).stored);
  }

  private toStorage(json: string): Buffer {
    const plain = Buffer.from(json);
    return this.transformer ? this.transformer.toStorage(this.info.resource, plain) : plain;
  }

  /**
   * The stored JSON of an object (no resourceVersion) and, when the object has no resourceVersion
   * of its own, how to make from the same pieces the JSON of `{...obj, metadata: {...metadata,
   * resourceVersion}}`: what the write answers, so its response is not serialized a second time.
   */
  private serialize(obj: KubeObject): { stored: string; withRevision?: (rev: number) => string } {
    const meta = { ...obj.metadata };
    const hadRv = 'resourceVersion' in meta;
    delete meta.resourceVersion;
    const o: KubeObject = { ...obj, apiVersion: apiVersionOf(this.info), kind: this.info.kind, metadata: meta };
    if (hadRv || obj.apiVersion !== o.apiVersion || obj.kind !== o.kind || !isPlain(obj) || !isPlain(obj.metadata)) return { stored: JSON.stringify(o) };
    // JSON.stringify(o), metadata serialized on its own: '{' + before + "metadata": META + after + '}'
    const before: string[] = [];
    const after: string[] = [];
    let into = before;
    for (const k of Object.keys(o)) {
      if (k === 'metadata') {
        into = after;
        continue;
      }
      const v = JSON.stringify((o as Record<string, unknown>)[k]);
      if (v !== undefined) into.push(`${JSON.stringify(k)}:${v}`);
    }
    const metaJson = JSON.stringify(meta);
    const head = `{${before.join(',')}${before.length ? ',' : ''}"metadata":`;
    const tail = `${after.length ? ',' : ''}${after.join(',')}}`;
    return {
      stored: head + metaJson + tail,
      withRevision: (rev) => head + (metaJson === '{}' ? '{' : `${metaJson.slice(0, -1)},`) + `"resourceVersion":"${rev}"}` + tail,
    };
  }

  decode(value: Buffer, revision: number): KubeObject {
    const plain = this.transformer ? this.transformer.fromStorage(this.info.resource, value) : value;
    const obj = JSON.parse(plain.toString()) as KubeObject;
    // freshly parsed, so ours to change: set the resourceVersion in place (stored values have none)
    if (obj.metadata && typeof obj.metadata === 'object') obj.metadata.resourceVersion = String(revision);
    else obj.metadata = { resourceVersion: String(revision) };
    return obj;
  }

  private fromKV(kv: KV): KubeObject {
    return this.decode(kv.value, kv.modRevision);
  }

  async get(name: string, namespace?: string): Promise<KubeObject> {
    const kv = await this.wrap(() => this.store.get(this.key(name, namespace)));
    if (!kv) throw errors.notFound(this.info.resource, this.info.group, name);
    return this.fromKV(kv);
  }

  async tryGet(name: string, namespace?: string): Promise<KubeObject | null> {
    const kv = await this.wrap(() => this.store.get(this.key(name, namespace)));
    return kv ? this.fromKV(kv) : null;
  }

  async list(namespace: string | undefined, opts: { revision?: number; limit?: number; startAfter?: string } = {}): Promise<{ items: KubeObject[]; revision: number; lastKey?: string; more: boolean }> {
    const res = await this.wrap(() => this.store.list(this.prefix(namespace), opts));
    return { items: res.items.map((kv) => this.fromKV(kv)), revision: res.revision, lastKey: res.items.at(-1)?.key, more: res.more };
  }

  /** Creates the object; with `guard`, only while that key (its namespace) is at that revision (else StoreError Conflict). */
  async create(obj: KubeObject, guard?: CreateGuard): Promise<KubeObject> {
    const m = obj.metadata!;
    try {
      const json = this.serialize(obj);
      const rev = await this.store.create(this.key(m.name!, m.namespace), this.toStorage(json.stored), guard);
      const created = { ...obj, metadata: { ...m, resourceVersion: String(rev) } };
      if (json.withRevision) writtenJson.set(created, () => json.withRevision!(rev));
      return created;
    } catch (err) {
      if (err instanceof StoreError && err.code === 'AlreadyExists') throw errors.alreadyExists(this.info.resource, this.info.group, m.name!);
      if (err instanceof StoreError && err.code === 'Conflict' && guard) throw err;
      throw mapStoreError(err);
    }
  }

  /** The stored revision of an object and the object, or null. */
  async tryGetWithRevision(name: string, namespace?: string): Promise<{ obj: KubeObject; modRevision: number } | null> {
    const kv = await this.wrap(() => this.store.get(this.key(name, namespace)));
    return kv ? { obj: this.fromKV(kv), modRevision: kv.modRevision } : null;
  }

  /** Compare-and-swap on the object's resourceVersion (when given). */
  async update(obj: KubeObject, expectedRevision?: number): Promise<KubeObject> {
    const m = obj.metadata!;
    try {
      const rev = await this.store.update(this.key(m.name!, m.namespace), this.encode(obj), expectedRevision);
      return { ...obj, metadata: { ...m, resourceVersion: String(rev) } };
    } catch (err) {
      if (err instanceof StoreError && err.code === 'Conflict') throw errors.conflict(this.info.resource, this.info.group, m.name!);
      if (err instanceof StoreError && err.code === 'NotFound') throw errors.notFound(this.info.resource, this.info.group, m.name!);
      throw mapStoreError(err);
    }
  }

  async delete(name: string, namespace: string | undefined, expectedRevision?: number): Promise<KubeObject> {
    try {
      const { revision, prev } = await this.store.delete(this.key(name, namespace), expectedRevision);
      return this.decode(prev.value, revision);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'Conflict') throw errors.conflict(this.info.resource, this.info.group, name);
      if (err instanceof StoreError && err.code === 'NotFound') throw errors.notFound(this.info.resource, this.info.group, name);
      throw mapStoreError(err);
    }
  }

  /** Store events already decoded: a store hands the same event to every matching watcher, so each is parsed once. */
  private readonly decoded = new WeakMap<StoreEvent, ObjectEvent>();

  /**
   * Streams decoded events. The event objects are shared by all watchers of the resource:
   * callbacks must treat them as read-only.
   */
  async watch(namespace: string | undefined, fromRevision: number, onEvent: (ev: ObjectEvent) => void, onError: (err: Error) => void): Promise<StoreWatch> {
    const cb = (ev: StoreEvent): void => {
      try {
        let oe = this.decoded.get(ev);
        if (!oe) {
          oe = this.toObjectEvent(ev);
          this.decoded.set(ev, oe);
        }
        onEvent(oe);
      } catch (err) {
        onError(err as Error);
      }
    };
    try {
      return await this.store.watch(this.prefix(namespace), fromRevision, cb, onError);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'Expired') throw errors.gone(`too old resource version: ${fromRevision} (${err.currentRevision ?? ''})`);
      throw mapStoreError(err);
    }
  }

  private toObjectEvent(ev: StoreEvent): ObjectEvent {
    if (ev.type === 'delete') return { type: 'DELETED', object: this.decode(ev.value, ev.modRevision), revision: ev.modRevision };
    const prevObject = ev.prevValue ? this.decode(ev.prevValue, ev.modRevision) : undefined;
    return { type: ev.created ? 'ADDED' : 'MODIFIED', object: this.decode(ev.value, ev.modRevision), prevObject, revision: ev.modRevision };
  }

  private async wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapStoreError(err);
    }
  }
}

/** JSON of objects returned by a write, made from the pieces of their stored JSON. */
const writtenJson = new WeakMap<KubeObject, () => string>();

/**
 * The JSON of an object a write just returned (exactly JSON.stringify of it), when known; the
 * object must not have been changed since.
 */
export function jsonOfWritten(obj: KubeObject): string | undefined {
  return writtenJson.get(obj)?.();
}

/** A plain data object (JSON.stringify needs no toJSON and sees every own key). */
function isPlain(v: unknown): boolean {
  if (!v || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

export function mapStoreError(err: unknown): Error {
  if (err instanceof StatusError) return err;
  if (err instanceof StoreError) {
    if (err.code === 'Expired') return errors.gone(err.message);
    if (err.code === 'Unavailable') return errors.serviceUnavailable(`storage is unavailable: ${err.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
