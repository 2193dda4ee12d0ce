import type { KubeObject } from '../../api/object.js';
import { objectKey } from '../../api/object.js';
import { RESOURCES, findKind, type ResourceInfo } from '../../api/registry.js';
import type { Informer } from '../../client/types.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import type { ControllerContext } from '../context.js';
import { ignoreNotFound, isNotFound, releasePatch } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { FOREGROUND, ORPHAN, planDeletingOwner, planDependent, type GcAction, type OwnerLookup } from './reconcile.js';

const log = componentLogger('garbage-collector');
const deletions = counter({ name: 'skiff_gc_deletions_total', help: 'Objects the garbage collector deleted or orphaned', labelNames: ['resource', 'action'] as const });

/** Resources the collector watches: every served kind but Events (never owners, very many). */
export const GC_RESOURCES = RESOURCES.filter((r) => r.resource !== 'events' && r.verbs.includes('watch'));

const OWNER_INDEX = 'gc-owner-uid';
const qkey = (info: ResourceInfo, key: string): string => `${info.group}|${info.resource}|${key}`;
const deletingWithGcFinalizer = (o: KubeObject): boolean => !!(o.metadata?.deletionTimestamp && o.metadata.finalizers?.some((f) => f === ORPHAN || f === FOREGROUND));

/**
 * The dependency graph is the informers' caches: an owner-uid index per resource finds dependents,
 * a uid map finds owners. Keys are `group|resource|ns/name`.
 */
class GarbageCollector {
  private readonly infs = new Map<string, { info: ResourceInfo; inf: Informer }>();
  private readonly uids = new Map<string, { info: ResourceInfo; key: string }>();
  readonly controller = new Controller({ name: 'garbagecollector', log });
  private readonly queue = this.controller.queue;

  constructor(private readonly ctx: ControllerContext) {}

  informers(): Informer[] {
    return [...this.infs.values()].map((e) => e.inf);
  }

  watch(info: ResourceInfo): void {
    const inf = this.ctx.informers.get(info);
    inf.addIndex(OWNER_INDEX, (o) => (o.metadata?.ownerReferences ?? []).map((r) => r.uid));
    this.infs.set(`${info.group}/${info.resource}`, { info, inf });
    const interesting = (o: KubeObject): boolean => (o.metadata?.ownerReferences?.length ?? 0) > 0 || deletingWithGcFinalizer(o);
    inf.addHandlers({
      add: (o) => {
        if (o.metadata?.uid) this.uids.set(o.metadata.uid, { info, key: objectKey(o) });
        if (interesting(o)) this.queue.add(qkey(info, objectKey(o)));
      },
      update: (old, o) => {
        if (!interesting(o)) return;
        const m = (x: KubeObject): string => JSON.stringify([x.metadata?.ownerReferences, x.metadata?.deletionTimestamp, x.metadata?.finalizers]);
        if (m(old) !== m(o)) this.queue.add(qkey(info, objectKey(o)));
        if (o.metadata?.deletionTimestamp) this.enqueueOwners(o);
      },
      delete: (o) => {
        const uid = o.metadata?.uid;
        if (uid) {
          this.uids.delete(uid);
          for (const d of this.dependentsOf(uid)) this.queue.add(qkey(d.info, objectKey(d.obj)));
        }
        this.enqueueOwners(o);
      },
    });
  }

  /** Owners re-check when a dependent changes (a foreground owner waits for its dependents). */
  private enqueueOwners(obj: KubeObject): void {
    for (const r of obj.metadata?.ownerReferences ?? []) {
      const o = this.uids.get(r.uid);
      if (o) this.queue.add(qkey(o.info, o.key));
    }
  }

  private dependentsOf(uid: string): { info: ResourceInfo; obj: KubeObject }[] {
    const out: { info: ResourceInfo; obj: KubeObject }[] = [];
    for (const { info, inf } of this.infs.values()) for (const obj of inf.byIndex(OWNER_INDEX, uid)) out.push({ info, obj });
    return out;
  }

  private infoOf(o: KubeObject): ResourceInfo | undefined {
    return (o.apiVersion && o.kind ? findKind(o.apiVersion, o.kind) : undefined) ?? (o.metadata?.uid ? this.uids.get(o.metadata.uid)?.info : undefined);
  }

  /** Present, absent or waiting for its dependents: the cache first, then a GET (uid compared). */
  private async lookupOwner(obj: KubeObject, ref: OwnerLookup['ref']): Promise<OwnerLookup> {
    const known = this.uids.get(ref.uid);
    let owner: KubeObject | undefined = known ? this.infs.get(`${known.info.group}/${known.info.resource}`)?.inf.get(known.key) : undefined;
    if (!owner) {
      const info = findKind(ref.apiVersion, ref.kind);
      if (!info) return { ref, state: 'present' }; // unknown kinds are never treated as gone
      try {
        owner = await this.ctx.client.get(info, ref.name, info.namespaced ? obj.metadata?.namespace : undefined);
      } catch (err) {
        if (isNotFound(err)) return { ref, state: 'absent' };
        throw err;
      }
    }
    if (owner.metadata?.uid !== ref.uid) return { ref, state: 'absent' };
    if (owner.metadata?.deletionTimestamp && owner.metadata.finalizers?.includes(FOREGROUND)) return { ref, state: 'deleting-foreground' };
    return { ref, state: 'present' };
  }

  async sync(key: string): Promise<void> {
    const [group, resource, ...rest] = key.split('|');
    const entry = this.infs.get(`${group}/${resource}`);
    if (!entry) return;
    const obj = entry.inf.get(rest.join('|'));
    if (!obj) return;
    if (deletingWithGcFinalizer(obj)) {
      await this.apply(entry.info, obj, planDeletingOwner(obj, this.dependentsOf(obj.metadata!.uid!).map((d) => d.obj)));
      return;
    }
    const refs = obj.metadata?.ownerReferences ?? [];
    if (refs.length === 0) return;
    const owners = await Promise.all(refs.map((r) => this.lookupOwner(obj, r)));
    await this.apply(entry.info, obj, planDependent(obj, owners));
  }

  private async apply(info: ResourceInfo, obj: KubeObject, actions: GcAction[]): Promise<void> {
    const name = obj.metadata!.name!;
    const ns = obj.metadata?.namespace;
    for (const a of actions) {
      if (a.kind === 'delete') {
        await this.deleteObject(info, obj, a.propagationPolicy);
        log.info({ resource: info.resource, key: objectKey(obj), policy: a.propagationPolicy }, 'deleted dependent');
      } else if (a.kind === 'removeOwners') {
        const keep = (obj.metadata?.ownerReferences ?? []).filter((r) => !a.uids.includes(r.uid));
        await ignoreNotFound(() => this.ctx.client.patch(info, name, { metadata: { ownerReferences: keep.length ? keep : null } }, { namespace: ns, type: 'merge' }));
      } else if (a.kind === 'orphanDependents') {
        for (const dep of a.dependents) await this.orphan(dep, obj.metadata!.uid!);
      } else if (a.kind === 'deleteDependents') {
        for (const d of a.dependents) {
          const depInfo = this.infoOf(d.obj);
          if (depInfo) await this.deleteObject(depInfo, d.obj, d.propagationPolicy);
        }
      } else {
        await this.removeFinalizer(info, obj, a.finalizer);
      }
    }
  }

  private async deleteObject(info: ResourceInfo, obj: KubeObject, propagationPolicy: string): Promise<void> {
    await ignoreNotFound(() => this.ctx.client.delete(info, obj.metadata!.name!, obj.metadata?.namespace, { propagationPolicy, preconditions: { uid: obj.metadata?.uid } }));
    deletions.inc({ resource: info.resource, action: 'delete' });
  }

  private async orphan(dep: KubeObject, ownerUid: string): Promise<void> {
    const info = this.infoOf(dep);
    if (!info) return;
    await ignoreNotFound(() => this.ctx.client.patch(info, dep.metadata!.name!, releasePatch(dep, ownerUid), { namespace: dep.metadata?.namespace, type: 'merge' }));
    deletions.inc({ resource: info.resource, action: 'orphan' });
  }

  /** Read-modify-write with the resourceVersion: a conflict re-queues the key. */
  private async removeFinalizer(info: ResourceInfo, obj: KubeObject, finalizer: string): Promise<void> {
    const cur = await ignoreNotFound(() => this.ctx.client.get(info, obj.metadata!.name!, obj.metadata?.namespace));
    if (!cur || cur.metadata?.uid !== obj.metadata?.uid || !cur.metadata?.finalizers?.includes(finalizer)) return;
    cur.metadata.finalizers = cur.metadata.finalizers.filter((f) => f !== finalizer);
    await ignoreNotFound(() => this.ctx.client.update(info, cur));
  }
}

export function startGarbageCollector(ctx: ControllerContext): { stop(): void } {
  const gc = new GarbageCollector(ctx);
  for (const info of GC_RESOURCES) gc.watch(info);
  // workers start once every watched cache has synced: never act on a partial graph
  return gc.controller.run({ informers: gc.informers(), workers: ctx.options.workers, sync: (key) => gc.sync(key) });
}
