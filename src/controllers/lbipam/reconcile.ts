import type { LoadBalancerIngress } from 'kubernetes-types/core/v1.js';
import type { SvcObj } from '../endpointslice/reconcile.js';

/** The loadBalancerClass the built-in pool serves (Services without a class are ours too). */
export const POOL_LB_CLASS = 'skiff.io/pool';

/** Is this a LoadBalancer Service this controller should give an address? */
export function wantsLoadBalancer(svc: SvcObj | undefined): boolean {
  if (!svc || svc.metadata?.deletionTimestamp || svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return !cls || cls === POOL_LB_CLASS;
}

/** The status patch that publishes `ingress` (null when the status already says so). */
export function statusPatch(svc: SvcObj, ingress: readonly LoadBalancerIngress[]): { status: { loadBalancer: { ingress: LoadBalancerIngress[] | null } } } | null {
  const cur = svc.status?.loadBalancer?.ingress ?? [];
  if (JSON.stringify(cur) === JSON.stringify(ingress)) return null;
  return { status: { loadBalancer: { ingress: ingress.length ? [...ingress] : null } } };
}
