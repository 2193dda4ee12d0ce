import type { OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { KubeObject } from '../../api/object.js';

export const FOREGROUND = 'foregroundDeletion';
export const ORPHAN = 'orphan';

/** What the collector knows about one owner reference. */
export type OwnerState = 'present' | 'absent' | 'deleting-foreground';

export interface OwnerLookup {
  ref: OwnerReference;
  state: OwnerState;
}

export type GcAction =
  | { kind: 'delete'; propagationPolicy: 'Background' | 'Foreground' }
  | { kind: 'removeOwners'; uids: string[] }
  | { kind: 'orphanDependents'; dependents: KubeObject[] }
  | { kind: 'deleteDependents'; dependents: { obj: KubeObject; propagationPolicy: 'Background' | 'Foreground' }[] }
  | { kind: 'removeFinalizer'; finalizer: string };

const hasFinalizer = (o: KubeObject, f: string): boolean => (o.metadata?.finalizers ?? []).includes(f);

/** Dependents of `owner`: objects with an ownerReference to its uid. */
function refTo(dep: KubeObject, uid: string | undefined): OwnerReference | undefined {
  return dep.metadata?.ownerReferences?.find((r) => r.uid === uid);
}

/**
 * An owner being deleted with propagation `orphan` or `foreground` (the apiserver put the
 * finalizer): orphan strips the owner from its dependents, then drops the finalizer; foreground
 * deletes dependents and drops the finalizer once no dependent with blockOwnerDeletion remains.
 */
export function planDeletingOwner(owner: KubeObject, dependents: KubeObject[]): GcAction[] {
  const uid = owner.metadata?.uid;
  const deps = dependents.filter((d) => refTo(d, uid));
  if (!owner.metadata?.deletionTimestamp) return [];
  if (hasFinalizer(owner, ORPHAN)) {
    const actions: GcAction[] = [];
    if (deps.length) actions.push({ kind: 'orphanDependents', dependents: deps });
    actions.push({ kind: 'removeFinalizer', finalizer: ORPHAN });
    return actions;
  }
  if (hasFinalizer(owner, FOREGROUND)) {
    const toDelete = deps.filter((d) => !d.metadata?.deletionTimestamp);
    const blocking = deps.filter((d) => refTo(d, uid)?.blockOwnerDeletion === true);
    const actions: GcAction[] = [];
    if (toDelete.length) actions.push({ kind: 'deleteDependents', dependents: toDelete.map((obj) => ({ obj, propagationPolicy: refTo(obj, uid)?.blockOwnerDeletion ? 'Foreground' : 'Background' })) });
    if (blocking.length === 0) actions.push({ kind: 'removeFinalizer', finalizer: FOREGROUND });
    return actions;
  }
  return [];
}

/**
 * A dependent whose owners were looked up: all owners gone → delete it; some gone → remove the
 * dangling references; an owner waiting for its dependents in foreground → delete it (foreground
 * when it blocks the owner, so its own dependents go first).
 */
export function planDependent(obj: KubeObject, owners: OwnerLookup[]): GcAction[] {
  if (owners.length === 0 || obj.metadata?.deletionTimestamp) return [];
  const absent = owners.filter((o) => o.state === 'absent');
  const solid = owners.filter((o) => o.state === 'present');
  const waiting = owners.filter((o) => o.state === 'deleting-foreground');
  if (absent.length === owners.length) return [{ kind: 'delete', propagationPolicy: 'Background' }];
  if (solid.length === 0 && waiting.length > 0) {
    const blocks = waiting.some((o) => o.ref.blockOwnerDeletion === true);
    return [{ kind: 'delete', propagationPolicy: blocks ? 'Foreground' : 'Background' }];
  }
  if (absent.length > 0) return [{ kind: 'removeOwners', uids: absent.map((o) => o.ref.uid) }];
  return [];
}
