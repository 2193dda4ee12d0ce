import { randomUUID } from 'node:crypto';
import type { KubeObject } from '../api/object.js';
import { clone, objectKey } from '../api/object.js';
import { apiVersionOf, findResource } from '../api/registry.js';
import { matches, parseSelector } from '../api/labels.js';
import type { ApiClient, ListOptions, ObjectList, ResourceRef, Watch, WatchEvent } from './types.js';

type Watcher = { ref: ResourceRef; opts: ListOptions; cb: (ev: WatchEvent) => void; resolve: (r: { error?: Error }) => void };

export class FakeApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message);
  }
}

/**
 * An in-memory API for unit tests of controllers and agents: objects per resource, a revision
 * counter, label selectors, merge patches and watches. It models behaviour (conflicts, 404s,
 * resourceVersions) rather than recording calls; `writes` lists mutations for assertions.
 */
export class FakeApiClient implements ApiClient {
  private rev = 0;
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<Watcher>();
  readonly writes: { verb: string; resource: string; key: string; obj?: KubeObject }[] = [];

  private k(ref: ResourceRef, key: string): string {
    return `${ref.group}/${ref.resource}|${key}`;
  }

  /** Seeds an object without recording a write. */
  seed(ref: ResourceRef, obj: KubeObject): KubeObject {
    return this.put(ref, obj, 'ADDED');
  }

  async get<T extends KubeObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T> {
    const o = this.objects.get(this.k(ref, ref.namespaced ? `${namespace}/${name}` : name));
    if (!o) throw new FakeApiError(404, 'NotFound', `${ref.resource} "${name}" not found`);
    return clone(o) as T;
  }

  async list<T extends KubeObject>(ref: ResourceRef, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const prefix = `${ref.group}/${ref.resource}|`;
    const sel = parseSelector(opts.labelSelector);
    const items = [...this.objects.entries()]
      .filter(([k, o]) => k.startsWith(prefix) && (!opts.namespace || o.metadata?.namespace === opts.namespace) && matches(sel, o.metadata?.labels))
      .map(([, o]) => clone(o) as T);
    return { metadata: { resourceVersion: String(this.rev) }, items };
  }

  async create<T extends KubeObject>(ref: ResourceRef, obj: T, namespace?: string): Promise<T> {
    const o = clone(obj);
    o.metadata = { ...(o.metadata ?? {}) };
    if (ref.namespaced) o.metadata.namespace = namespace ?? o.metadata.namespace ?? 'default';
    if (!o.metadata.name && o.metadata.generateName) o.metadata.name = o.metadata.generateName + Math.random().toString(36).slice(2, 7);
    if (this.objects.has(this.k(ref, objectKey(o)))) throw new FakeApiError(409, 'AlreadyExists', `${ref.resource} "${o.metadata.name}" already exists`);
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = new Date().toISOString();
    o.metadata.generation = 1;
    this.writes.push({ verb: 'create', resource: ref.resource, key: objectKey(o), obj: clone(o) });
    return clone(this.put(ref, o, 'ADDED')) as T;
  }

  async update<T extends KubeObject>(ref: ResourceRef, obj: T, opts: { subresource?: string } = {}): Promise<T> {
    const key = objectKey(obj);
    const cur = this.objects.get(this.k(ref, key));
    if (!cur) throw new FakeApiError(404, 'NotFound', `${ref.resource} "${obj.metadata?.name}" not found`);
    const rv = obj.metadata?.resourceVersion;
    if (rv && rv !== cur.metadata?.resourceVersion) throw new FakeApiError(409, 'Conflict', `the object has been modified`);
    const o = clone(obj) as KubeObject;
    o.metadata = { ...o.metadata, uid: cur.metadata?.uid, creationTimestamp: cur.metadata?.creationTimestamp, generation: cur.metadata?.generation };
    if (opts.subresource === 'status') o.spec = cur.spec;
    else if (JSON.stringify(o.spec) !== JSON.stringify(cur.spec)) o.metadata.generation = (cur.metadata?.generation ?? 1) + 1;
    this.writes.push({ verb: opts.subresource ? `update/${opts.subresource}` : 'update', resource: ref.resource, key, obj: clone(o) });
    if (o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).length === 0) {
      this.objects.delete(this.k(ref, key));
      this.notify(ref, 'DELETED', o);
      return o as T;
    }
    return clone(this.put(ref, o, 'MODIFIED')) as T;
  }

  async patch<T extends KubeObject>(ref: ResourceRef, name: string, patch: unknown, opts: { namespace?: string; subresource?: string } = {}): Promise<T> {
    const cur = await this.get<T>(ref, name, opts.namespace);
    const merged = mergePatch(cur, patch) as T;
    if (merged.metadata) delete merged.metadata.resourceVersion;
    return this.update(ref, merged, { subresource: opts.subresource });
  }

  async delete(ref: ResourceRef, name: string, namespace?: string): Promise<KubeObject> {
    const key = ref.namespaced ? `${namespace}/${name}` : name;
    const cur = this.objects.get(this.k(ref, key));
    if (!cur) throw new FakeApiError(404, 'NotFound', `${ref.resource} "${name}" not found`);
    this.writes.push({ verb: 'delete', resource: ref.resource, key });
    if ((cur.metadata?.finalizers ?? []).length > 0) {
      const o = clone(cur);
      o.metadata!.deletionTimestamp ??= new Date().toISOString();
      return this.put(ref, o, 'MODIFIED');
    }
    this.objects.delete(this.k(ref, key));
    this.rev++;
    const gone = clone(cur);
    gone.metadata!.resourceVersion = String(this.rev);
    this.notify(ref, 'DELETED', gone);
    return gone;
  }

  watch<T extends KubeObject>(ref: ResourceRef, opts: ListOptions, onEvent: (ev: WatchEvent<T>) => void): Watch {
    let resolve!: (r: { error?: Error }) => void;
    const done = new Promise<{ error?: Error }>((r) => (resolve = r));
    const w: Watcher = { ref, opts, cb: onEvent as (ev: WatchEvent) => void, resolve };
    this.watchers.add(w);
    return {
      stop: () => {
        if (this.watchers.delete(w)) resolve({});
      },
      done,
    };
  }

  async request(method: string, path: string): Promise<{ status: number; body: unknown }> {
    throw new FakeApiError(404, 'NotFound', `FakeApiClient does not serve ${method} ${path}`);
  }

  private put(ref: ResourceRef, obj: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    const o = clone(obj);
    const info = findResource(ref.group, ref.resource);
    if (info) {
      o.apiVersion ??= apiVersionOf(info);
      o.kind ??= info.kind;
    }
    o.metadata = { ...(o.metadata ?? {}), resourceVersion: String(++this.rev) };
    o.metadata.uid ??= randomUUID();
    o.metadata.creationTimestamp ??= new Date().toISOString();
    const existed = this.objects.has(this.k(ref, objectKey(o)));
    this.objects.set(this.k(ref, objectKey(o)), o);
    this.notify(ref, existed ? 'MODIFIED' : type, o);
    return o;
  }

  private notify(ref: ResourceRef, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject): void {
    for (const w of this.watchers) {
      if (w.ref.group !== ref.group || w.ref.resource !== ref.resource) continue;
      if (w.opts.namespace && obj.metadata?.namespace !== w.opts.namespace) continue;
      if (!matches(parseSelector(w.opts.labelSelector), obj.metadata?.labels)) continue;
      w.cb({ type, object: clone(obj) });
    }
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
