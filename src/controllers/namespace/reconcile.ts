import type { Namespace } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../api/object.js';
import type { ResourceInfo } from '../../api/registry.js';

export const NS_FINALIZER = 'kubernetes';

export interface NamespaceContent {
  info: ResourceInfo;
  items: KubeObject[];
}

export interface NamespacePlan {
  /** objects to delete (not yet being deleted) */
  delete: { info: ResourceInfo; name: string }[];
  /** objects still present (deleting or not): the namespace waits for them */
  remaining: Record<string, number>;
  /** drop the `kubernetes` finalizer and delete the namespace */
  finalize: boolean;
  /** status conditions/phase to write while terminating */
  status?: Namespace['status'];
}

/**
 * A namespace being deleted: delete every namespaced object in it, and once nothing is left,
 * finalize (remove the `kubernetes` finalizer from spec.finalizers / metadata.finalizers).
 */
export function reconcileNamespace(ns: Namespace, content: NamespaceContent[], now: number): NamespacePlan {
  const plan: NamespacePlan = { delete: [], remaining: {}, finalize: false };
  if (!ns.metadata?.deletionTimestamp) return plan;
  for (const { info, items } of content) {
    if (items.length === 0) continue;
    plan.remaining[info.resource] = items.length;
    for (const o of items) if (!o.metadata?.deletionTimestamp) plan.delete.push({ info, name: o.metadata!.name! });
  }
  const left = Object.keys(plan.remaining).length;
  plan.finalize = left === 0;
  const ts = new Date(now).toISOString();
  const cond = left
    ? { type: 'NamespaceContentRemaining', status: 'True', reason: 'SomeResourcesRemain', message: `Some resources are remaining: ${Object.entries(plan.remaining).map(([r, n]) => `${r} has ${n} resource instances`).join(', ')}`, lastTransitionTime: ts }
    : { type: 'NamespaceContentRemaining', status: 'False', reason: 'ContentRemoved', message: 'All content successfully removed', lastTransitionTime: ts };
  const old = ns.status?.conditions?.find((c) => c.type === cond.type);
  if (ns.status?.phase !== 'Terminating' || !old || old.status !== cond.status || old.message !== cond.message) {
    plan.status = { phase: 'Terminating', conditions: [...(ns.status?.conditions ?? []).filter((c) => c.type !== cond.type), cond] };
  }
  return plan;
}

/** Whether the namespace still carries the `kubernetes` finalizer anywhere. */
export function hasNamespaceFinalizer(ns: Namespace): boolean {
  return (ns.spec?.finalizers ?? []).includes(NS_FINALIZER) || (ns.metadata?.finalizers ?? []).includes(NS_FINALIZER);
}
