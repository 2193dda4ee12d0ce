import { randomUUID } from 'node:crypto';
import type { KubeObject } from '../api/object.js';
import { apiVersionOf, RESOURCES, type ResourceInfo } from '../api/registry.js';
import { applyDefaults } from '../api/defaults.js';
import { validateObject, validateUpdate } from '../api/validation.js';
import type { CreateGuard, Store } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { errors, StatusError } from './errors.js';
import { ResourceStorage, type ValueTransformer } from './storage.js';
import { ServiceAllocators } from './allocators.js';
import { recordManagedFields } from './managedfields.js';
import { nowIso } from './clock.js';

type Obj = Record<string, unknown>;

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  subresource?: string;
  /** create: the caller hands `body` over (freshly decoded JSON), so it is changed in place, not copied */
  bodyOwned?: boolean;
  /** invoked after defaulting/validation, before persisting (admission) */
  admit?: (op: 'CREATE' | 'UPDATE' | 'DELETE', obj: KubeObject | undefined, old: KubeObject | undefined) => Promise<void>;
}

export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}


/**
 * The API's semantics independent of HTTP: defaulting, validation, metadata bookkeeping,
 * optimistic concurrency, status subresources, finalizers and graceful deletion.
 */
export class ApiCore {
  readonly storages = new Map<string, ResourceStorage>();
  readonly allocators: ServiceAllocators;

  constructor(
    readonly store: Store,
    opts: { serviceCIDR?: string; nodePortRange?: [number, number]; transformer?: ValueTransformer } = {},
  ) {
    for (const info of RESOURCES) {
      const t = info.resource === 'secrets' ? opts.transformer : undefined;
      this.storages.set(`${info.group}/${info.resource}`, new ResourceStorage(info, store, t));
    }
    this.allocators = new ServiceAllocators(store, opts.serviceCIDR ?? '10.96.0.0/12', opts.nodePortRange);
  }

  storage(info: { group: string; resource: string }): ResourceStorage {
    const s = this.storages.get(`${info.group}/${info.resource}`);
    if (!s) throw errors.notFound(info.resource, info.group, '');
    return s;
  }

  /** Reconciles ClusterIP/NodePort records with the stored Services and creates the initial namespaces. */
  async bootstrap(): Promise<void> {
    await this.repairAllocations();
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      const nsInfo = RESOURCES.find((r) => r.resource === 'namespaces')!;
      if (!(await this.storage(nsInfo).tryGet(ns))) {
        await this.create(nsInfo, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, {}).catch((err) => {
          if (!(err instanceof StatusError && err.code === 409)) throw err;
        });
      }
    }
  }

  /** Allocation records vs stored Services (at start, then periodically: see build()). */
  async repairAllocations(): Promise<void> {
    const svc = this.storage({ group: '', resource: 'services' });
    await this.allocators.repair((await svc.list(undefined)).items);
  }

  async ensureNamespace(info: ResourceInfo, namespace: string | undefined, creating: boolean): Promise<void> {
    if (!info.namespaced || !namespace) return;
    const ns = await this.storage({ group: '', resource: 'namespaces' }).tryGet(namespace);
    if (!ns) throw errors.notFound('namespaces', '', namespace);
    if (creating && ns.metadata?.deletionTimestamp) throw terminating(namespace);
  }

  /** Namespaces last read active, by name, with their revision then (bounded: cleared past 10,000). */
  private readonly activeNamespaces = new Map<string, number>();

  /**
   * What a create in `namespace` is guarded by: the namespace at the revision it was last seen
   * active. The store checks it atomically with the write, so no read of the namespace is needed
   * while it is unchanged; `live` (or an unknown namespace) reads it: 404 if absent, 403 if it is
   * being terminated, as ensureNamespace.
   */
  private async namespaceGuard(info: ResourceInfo, namespace: string | undefined, live: boolean): Promise<CreateGuard | undefined> {
    if (!info.namespaced || !namespace) return undefined;
    const nsStorage = this.storage({ group: '', resource: 'namespaces' });
    const key = nsStorage.key(namespace);
    const known = live ? undefined : this.activeNamespaces.get(namespace);
    if (known !== undefined) return { key, modRevision: known };
    const got = await nsStorage.tryGetWithRevision(namespace);
    if (!got || got.obj.metadata?.deletionTimestamp) {
      this.activeNamespaces.delete(namespace);
      throw got ? terminating(namespace) : errors.notFound('namespaces', '', namespace);
    }
    if (this.activeNamespaces.size >= 10_000) this.activeNamespaces.clear();
    this.activeNamespaces.set(namespace, got.modRevision);
    return { key, modRevision: got.modRevision };
  }

  /** Writes a new object guarded by its namespace; a namespace that changed meanwhile is read again. */
  private async createGuarded(info: ResourceInfo, obj: KubeObject, guard: CreateGuard | undefined): Promise<KubeObject> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.storage(info).create(obj, guard);
      } catch (err) {
        if (!(guard && err instanceof StoreError && err.code === 'Conflict')) throw err;
        guard = await this.namespaceGuard(info, obj.metadata!.namespace, true);
        // a namespace changing under every attempt: checked, then written unguarded (read-then-write)
        if (attempt >= 2) return this.storage(info).create(obj);
      }
    }
  }

  /** The object to write from a request body: copied, unless `owned` (the caller hands the body over). */
  prepareNew(info: ResourceInfo, namespace: string | undefined, body: KubeObject, owned = false): KubeObject {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw errors.badRequest('the body of the request must be a JSON object');
    const obj = owned ? body : structuredClone(body);
    const want = apiVersionOf(info);
    if (obj.kind !== undefined && obj.kind !== info.kind) throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${want}) or kind ${obj.kind} is not ${info.kind}`);
    if (obj.apiVersion !== undefined && obj.apiVersion !== want) throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`);
    obj.apiVersion = want;
    obj.kind = info.kind;
    if (obj.metadata !== undefined && (typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) throw errors.badRequest('metadata must be an object');
    obj.metadata = { ...(obj.metadata ?? {}) };
    if (info.namespaced) {
      if (obj.metadata.namespace && namespace && obj.metadata.namespace !== namespace)
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      obj.metadata.namespace = namespace ?? obj.metadata.namespace ?? 'default';
    } else delete obj.metadata.namespace;
    return obj;
  }

  async create(info: ResourceInfo, namespace: string | undefined, body: KubeObject, opts: WriteOptions): Promise<KubeObject> {
    const obj = this.prepareNew(info, namespace, body, opts.bodyOwned);
    const m = obj.metadata!;
    if (!m.name && m.generateName) m.name = `${m.generateName}${randomSuffix()}`;
    const guard = await this.namespaceGuard(info, m.namespace, !!opts.dryRun);
    applyDefaults(obj);
    this.onCreateStrategy(info, obj);
    this.validate(info, obj);
    m.uid = randomUUID();
    m.creationTimestamp = nowIso();
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (info.hasStatus || hasSpec(obj)) m.generation = 1;
    recordManagedFields(obj, undefined, opts.fieldManager, 'Update', opts.subresource);
    await opts.admit?.('CREATE', obj, undefined);
    const got = info.resource === 'services' ? await this.allocators.allocate(obj, undefined, opts.dryRun) : undefined;
    if (opts.dryRun) return obj;
    try {
      return await this.createGuarded(info, obj, guard);
    } catch (err) {
      if (got) await this.allocators.release(got);
      throw err;
    }
  }

  /** PUT semantics for the main resource or a subresource (status, scale handled by callers). */
  async update(info: ResourceInfo, namespace: string | undefined, name: string, body: KubeObject, opts: WriteOptions, old?: KubeObject): Promise<KubeObject> {
    const obj = this.prepareNew(info, namespace, body);
    if (obj.metadata!.name && obj.metadata!.name !== name) throw errors.badRequest(`the name of the object (${obj.metadata!.name}) does not match the name on the URL (${name})`);
    obj.metadata!.name = name;
    const cur = old ?? (await this.storage(info).get(name, namespace));
    const wantRV = obj.metadata!.resourceVersion;
    if (wantRV && wantRV !== cur.metadata?.resourceVersion) throw errors.conflict(info.resource, info.group, name);
    const next = this.mergeForUpdate(info, obj, cur, opts.subresource);
    applyDefaults(next);
    this.validate(info, next);
    const upd = validateUpdate(next, cur);
    if (upd.length) throw errors.invalid(info.kind, info.group, name, upd);
    recordManagedFields(next, cur, opts.fieldManager, 'Update', opts.subresource);
    await opts.admit?.('UPDATE', next, cur);
    const got = info.resource === 'services' && opts.subresource !== 'status' ? await this.allocators.allocate(next, cur, opts.dryRun) : undefined;
    if (opts.dryRun) return next;
    // deletionTimestamp set and the last finalizer removed: the object goes away now.
    if (next.metadata!.deletionTimestamp && (next.metadata!.finalizers ?? []).length === 0 && !(info.resource === 'namespaces' && ((next.spec as Obj)?.finalizers as string[] | undefined)?.length)) {
      if (info.resource === 'pods' && next.metadata!.deletionGracePeriodSeconds !== 0 && (next.spec as Obj)?.nodeName) {
        return this.storage(info).update(next, Number(cur.metadata!.resourceVersion));
      }
      const gone = await this.storage(info).delete(name, namespace, Number(cur.metadata!.resourceVersion));
      if (info.resource === 'services') await this.allocators.releaseService(cur);
      if (got) await this.allocators.release(got);
      return gone;
    }
    try {
      const saved = await this.storage(info).update(next, Number(cur.metadata!.resourceVersion));
      if (info.resource === 'services') await this.allocators.releaseService(cur, saved);
      return saved;
    } catch (err) {
      if (got) await this.allocators.release(got);
      throw err;
    }
  }

  /** Builds the object to store from the request body and the stored object. */
  private mergeForUpdate(info: ResourceInfo, obj: KubeObject, cur: KubeObject, subresource?: string): KubeObject {
    const cm = cur.metadata!;
    let next: KubeObject;
    if (subresource === 'status') {
      next = { ...structuredClone(cur), status: obj.status };
    } else if (subresource === 'finalize' && info.resource === 'namespaces') {
      next = structuredClone(cur);
      (next.spec as Obj) = { ...((cur.spec as Obj) ?? {}), finalizers: ((obj.spec as Obj) ?? {}).finalizers ?? [] };
    } else {
      next = obj;
      if (info.hasStatus && info.resource !== 'namespaces') next.status = cur.status;
      if (info.resource === 'namespaces') next.status = cur.status;
    }
    const m = next.metadata!;
    m.uid = cm.uid;
    m.creationTimestamp = cm.creationTimestamp;
    m.namespace = cm.namespace;
    m.generation = cm.generation;
    if (cm.deletionTimestamp) {
      m.deletionTimestamp = cm.deletionTimestamp;
      m.deletionGracePeriodSeconds = cm.deletionGracePeriodSeconds;
      // once deleting, finalizers may only be removed, never added
      const allowed = new Set(cm.finalizers ?? []);
      m.finalizers = (m.finalizers ?? []).filter((f) => allowed.has(f));
      if (m.finalizers.length === 0) delete m.finalizers;
    }
    if (subresource !== 'status' && (hasSpec(next) || info.hasStatus)) {
      const changed = JSON.stringify(stripForGeneration(next)) !== JSON.stringify(stripForGeneration(cur));
      if (changed) m.generation = (cm.generation ?? 1) + 1;
    }
    if (m.managedFields === undefined) m.managedFields = cm.managedFields;
    return next;
  }

  validate(info: ResourceInfo, obj: KubeObject): void {
    const errs = validateObject(obj, info.namespaced);
    if (errs.length) throw errors.invalid(info.kind, info.group, String(obj.metadata?.name ?? obj.metadata?.generateName ?? ''), errs);
  }

  private onCreateStrategy(info: ResourceInfo, obj: KubeObject): void {
    const o = obj as Obj;
    if (info.resource === 'pods') {
      o.status = { phase: 'Pending', qosClass: qosClass(o.spec as Obj), ...(o.status as Obj | undefined) };
      (o.status as Obj).phase = 'Pending';
      const spec = o.spec as Obj;
      if (spec && spec.serviceAccountName === undefined) spec.serviceAccountName = 'default';
      if (spec && spec.serviceAccount === undefined) spec.serviceAccount = spec.serviceAccountName;
    } else if (info.resource === 'namespaces') {
      o.status = { phase: 'Active' };
    } else if (info.hasStatus && info.resource !== 'services') {
      o.status = o.status ?? {};
    } else if (info.resource === 'services') {
      o.status = { loadBalancer: {} };
    }
    if (info.resource === 'secrets' && o.stringData && typeof o.stringData === 'object') {
      const data = { ...((o.data as Obj) ?? {}) };
      for (const [k, v] of Object.entries(o.stringData as Obj)) data[k] = Buffer.from(String(v)).toString('base64');
      o.data = data;
      delete o.stringData;
    }
  }

  async delete(info: ResourceInfo, namespace: string | undefined, name: string, opts: DeleteOptions): Promise<{ object: KubeObject; deleted: boolean }> {
    const st = this.storage(info);
    for (let attempt = 0; ; attempt++) {
      const cur = await st.get(name, namespace);
      const pre = opts.preconditions;
      if (pre?.uid && pre.uid !== cur.metadata?.uid) throw errors.conflict(info.resource, info.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata?.uid}`);
      if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata?.resourceVersion)
        throw errors.conflict(info.resource, info.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata?.resourceVersion}`);
      await opts.admit?.('DELETE', undefined, cur);
      const next = structuredClone(cur);
      const m = next.metadata!;
      const finalizers = new Set(m.finalizers ?? []);
      if (opts.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
      if (opts.propagationPolicy === 'Orphan') finalizers.add('orphan');
      const nsFinalizers = info.resource === 'namespaces' ? (((next.spec as Obj)?.finalizers as string[] | undefined) ?? []) : [];
      let graceful = false;
      const pod = next as Obj;
      if (info.resource === 'pods' && (pod.spec as Obj)?.nodeName && !['Succeeded', 'Failed'].includes(String((pod.status as Obj)?.phase))) {
        // Graceful deletion: the kubelet stops the containers, then deletes with grace 0.
        const grace = opts.gracePeriodSeconds ?? ((pod.spec as Obj)?.terminationGracePeriodSeconds as number | undefined) ?? 30;
        if (grace > 0) {
          graceful = true;
          m.deletionGracePeriodSeconds = Math.min(grace, m.deletionGracePeriodSeconds ?? grace);
        }
      }
      if (finalizers.size === 0 && nsFinalizers.length === 0 && !graceful) {
        if (opts.dryRun) return { object: cur, deleted: true };
        try {
          const gone = await st.delete(name, namespace, Number(cur.metadata!.resourceVersion));
          if (info.resource === 'services') await this.allocators.releaseService(cur);
          return { object: gone, deleted: true };
        } catch (err) {
          if (err instanceof StatusError && err.code === 409 && attempt < 5) continue;
          throw err;
        }
      }
      if (!m.deletionTimestamp) m.deletionTimestamp = info.resource === 'pods' && m.deletionGracePeriodSeconds ? new Date(Date.now() + m.deletionGracePeriodSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : nowIso();
      if (m.deletionGracePeriodSeconds === undefined) m.deletionGracePeriodSeconds = 0;
      m.finalizers = [...finalizers];
      if (m.finalizers.length === 0) delete m.finalizers;
      if (info.resource === 'namespaces') (next.status as Obj) = { ...((next.status as Obj) ?? {}), phase: 'Terminating' };
      if (opts.dryRun) return { object: next, deleted: false };
      if (JSON.stringify(next) === JSON.stringify(cur)) return { object: cur, deleted: false };
      try {
        return { object: await st.update(next, Number(cur.metadata!.resourceVersion)), deleted: false };
      } catch (err) {
        if (err instanceof StatusError && err.code === 409 && attempt < 5) continue;
        throw err;
      }
    }
  }
}

function terminating(namespace: string): StatusError {
  return new StatusError(403, 'Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`, { name: namespace, kind: 'namespaces' });
}

function hasSpec(obj: KubeObject): boolean {
  return obj.spec !== undefined;
}

function stripForGeneration(o: KubeObject): unknown {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function randomSuffix(): string {
  const chars = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}

function qosClass(spec: Obj | undefined): string {
  const containers = ((spec?.containers as Obj[]) ?? []).map((c) => (c.resources ?? {}) as Obj);
  if (containers.every((r) => !r.requests && !r.limits)) return 'BestEffort';
  const guaranteed = containers.every((r) => {
    const lim = (r.limits ?? {}) as Obj;
    const req = (r.requests ?? lim) as Obj;
    return lim.cpu && lim.memory && String(req.cpu ?? lim.cpu) === String(lim.cpu) && String(req.memory ?? lim.memory) === String(lim.memory);
  });
  return guaranteed ? 'Guaranteed' : 'Burstable';
}
