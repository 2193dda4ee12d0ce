import type { KubeObject } from '../../api/object.js';
import { objectKey } from '../../api/object.js';
import { RESOURCES, findKind, type ResourceInfo } from '../../api/registry.js';
import type { Informer } from '../../client/types.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import type { ControllerContext } from '../context.js';
import { ignoreNotFound, isNotFound, releasePatch, startWorkers } from '../replicaset/common.js';
import { FOREGROUND, ORPHAN, planDeletingOwner, planDependent, type GcAction, type OwnerLookup } from './reconcile.js';

const log = componentLogger('garbage-collector');
const deletions = counter({ name: 'skiff_gc_deletions_total', help: 'Objects the garbage collector deleted or orphaned', labelNames: ['resource', 'action'] as const });

/** Resources the collector watches: every served kind but Events (never owners, very many). */
export const GC_RESOURCES = RESOURCES.filter((r) => r.resource !== 'events' && r.verbs.includes('watch'));

const OWNER_INDEX = 'gc-owner-uid';

export function startGarbageCollector(ctx: ControllerContext): { stop(): void } {
  const infs = new Map<string, { info: ResourceInfo; inf: Informer }>();
  const uids = new Map<string, { info: ResourceInfo; key: string }>();
  const qkey = (info: ResourceInfo, key: string): string => `${info.group}|${info.resource}|${key}`;

  const dependentsOf = (uid: string): { info: ResourceInfo; obj: KubeObject }[] => {
    const out: { info: ResourceInfo; obj: KubeObject }[] = [];
    for (const { info, inf } of infs.values()) for (const obj of inf.byIndex(OWNER_INDEX, uid)) out.push({ info, obj });
    return out;
  };

  const lookupOwner = async (obj: KubeObject, ref: OwnerLookup['ref']): Promise<OwnerLookup> => {
    const known = uids.get(ref.uid);
    const cached = known ? infs.get(`${known.info.group}/${known.info.resource}`)?.inf.get(known.key) : undefined;
    let owner: KubeObject | undefined = cached;
    if (!owner) {
      const info = findKind(ref.apiVersion, ref.kind);
      if (!info) return { ref, state: 'present' }; // unknown kinds are never treated as gone
      try {
        owner = await ctx.client.get(info, ref.name, info.namespaced ? obj.metadata?.namespace : undefined);
      } catch (err) {
        if (isNotFound(err)) return { ref, state: 'absent' };
        throw err;
      }
    }
    if (owner.metadata?.uid !== ref.uid) return { ref, state: 'absent' };
    if (owner.metadata?.deletionTimestamp && owner.metadata.finalizers?.includes(FOREGROUND)) return { ref, state: 'deleting-foreground' };
    return { ref, state: 'present' };
  };

  const apply = async (info: ResourceInfo, obj: KubeObject, actions: GcAction[]): Promise<void> => {
    const name = obj.metadata!.name!;
    const ns = obj.metadata?.namespace;
    for (const a of actions) {
      if (a.kind === 'delete') {
        await ignoreNotFound(() => ctx.client.delete(info, name, ns, { propagationPolicy: a.propagationPolicy, preconditions: { uid: obj.metadata?.uid } }));
        deletions.inc({ resource: info.resource, action: 'delete' });
        log.info({ resource: info.resource, key: objectKey(obj), policy: a.propagationPolicy }, 'deleted dependent of a gone owner');
      } else if (a.kind === 'removeOwners') {
        const keep = (obj.metadata?.ownerReferences ?? []).filter((r) => !a.uids.includes(r.uid));
        await ignoreNotFound(() => ctx.client.patch(info, name, { metadata: { ownerReferences: keep.length ? keep : null } }, { namespace: ns, type: 'merge' }));
      } else if (a.kind === 'orphanDependents') {
        for (const dep of a.dependents) {
          const depInfo = infoOf(dep);
          if (!depInfo) continue;
          await ignoreNotFound(() => ctx.client.patch(depInfo, dep.metadata!.name!, releasePatch(dep, obj.metadata!.uid!), { namespace: dep.metadata?.namespace, type: 'merge' }));
          deletions.inc({ resource: depInfo.resource, action: 'orphan' });
        }
      } else if (a.kind === 'deleteDependents') {
        for (const { obj: dep, propagationPolicy } of a.dependents) {
          const depInfo = infoOf(dep);
          if (!depInfo) continue;
          await ignoreNotFound(() => ctx.client.delete(depInfo, dep.metadata!.name!, dep.metadata?.namespace, { propagationPolicy, preconditions: { uid: dep.metadata?.uid } }));
          deletions.inc({ resource: depInfo.resource, action: 'delete' });
        }
      } else {
        await removeFinalizer(info, obj, a.finalizer);
      }
    }
  };

  const infoOf = (o: KubeObject): ResourceInfo | undefined => (o.apiVersion && o.kind ? findKind(o.apiVersion, o.kind) : undefined) ?? (o.metadata?.uid ? uids.get(o.metadata.uid)?.info : undefined);

  /** Read-modify-write with the resourceVersion: a conflict re-queues the key. */
  const removeFinalizer = async (info: ResourceInfo, obj: KubeObject, finalizer: string): Promise<void> => {
    const cur = await ignoreNotFound(() => ctx.client.get(info, obj.metadata!.name!, obj.metadata?.namespace));
    if (!cur || cur.metadata?.uid !== obj.metadata?.uid || !cur.metadata?.finalizers?.includes(finalizer)) return;
    cur.metadata.finalizers = cur.metadata.finalizers.filter((f) => f !== finalizer);
    await ignoreNotFound(() => ctx.client.update(info, cur));
  };

  const sync = async (key: string): Promise<void> => {
    const [group, resource, ...rest] = key.split('|');
    const entry = infs.get(`${group}/${resource}`);
    if (!entry) return;
    if (![...infs.values()].every((e) => e.inf.hasSynced())) {
      queue.addAfter(key, 200);
      return;
    }
    const obj = entry.inf.get(rest.join('|'));
    if (!obj) return;
    if (obj.metadata?.deletionTimestamp && (obj.metadata.finalizers ?? []).some((f) => f === ORPHAN || f === FOREGROUND)) {
      const deps = dependentsOf(obj.metadata.uid!).map((d) => d.obj);
      await apply(entry.info, obj, planDeletingOwner(obj, deps));
      return;
    }
    const refs = obj.metadata?.ownerReferences ?? [];
    if (refs.length === 0) return;
    const owners = await Promise.all(refs.map((r) => lookupOwner(obj, r)));
    await apply(entry.info, obj, planDependent(obj, owners));
  };

  const { queue, stop } = startWorkers('garbagecollector', ctx.options.workers, log, sync);
  const enqueueOwnersWaiting = (obj: KubeObject): void => {
    for (const r of obj.metadata?.ownerReferences ?? []) {
      const o = uids.get(r.uid);
      if (o) queue.add(qkey(o.info, o.key));
    }
  };
  for (const info of GC_RESOURCES) {
    const inf = ctx.informers.get(info);
    inf.addIndex(OWNER_INDEX, (o) => (o.metadata?.ownerReferences ?? []).map((r) => r.uid));
    infs.set(`${info.group}/${info.resource}`, { info, inf });
    const interesting = (o: KubeObject): boolean => (o.metadata?.ownerReferences?.length ?? 0) > 0 || !!(o.metadata?.deletionTimestamp && o.metadata.finalizers?.some((f) => f === ORPHAN || f === FOREGROUND));
    inf.addHandlers({
      add: (o) => {
        if (o.metadata?.uid) uids.set(o.metadata.uid, { info, key: objectKey(o) });
        if (interesting(o)) queue.add(qkey(info, objectKey(o)));
      },
      update: (old, o) => {
        if (!interesting(o)) return;
        const changed =
          JSON.stringify(old.metadata?.ownerReferences) !== JSON.stringify(o.metadata?.ownerReferences) ||
          old.metadata?.deletionTimestamp !== o.metadata?.deletionTimestamp ||
          JSON.stringify(old.metadata?.finalizers) !== JSON.stringify(o.metadata?.finalizers);
        if (changed) queue.add(qkey(info, objectKey(o)));
        if (o.metadata?.deletionTimestamp) enqueueOwnersWaiting(o);
      },
      delete: (o) => {
        const uid = o.metadata?.uid;
        if (uid) uids.delete(uid);
        if (uid) for (const d of dependentsOf(uid)) queue.add(qkey(d.info, objectKey(d.obj)));
        enqueueOwnersWaiting(o);
      },
    });
  }
  return { stop };
}
