import type { Namespace, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../api/object.js';

export type NamespaceObj = KubeObject & Namespace;
export type ServiceAccountObj = KubeObject & ServiceAccount;

/** Service accounts every active namespace must hold. */
export const REQUIRED_SERVICE_ACCOUNTS = ['default'];

/** Which required ServiceAccounts to create in a namespace (none while it is terminating or gone). */
export function missingServiceAccounts(ns: NamespaceObj | undefined, existing: readonly string[]): ServiceAccountObj[] {
  if (!ns || ns.metadata?.deletionTimestamp || ns.status?.phase === 'Terminating') return [];
  return REQUIRED_SERVICE_ACCOUNTS.filter((n) => !existing.includes(n)).map((name) => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace: ns.metadata!.name },
  }));
}
