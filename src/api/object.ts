import type { ObjectMeta as K8sObjectMeta, OwnerReference, ManagedFieldsEntry } from 'kubernetes-types/meta/v1.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** metav1.ObjectMeta, writable (the server and controllers fill it in). */
export type ObjectMeta = Mutable<Omit<K8sObjectMeta, 'labels' | 'annotations' | 'finalizers' | 'ownerReferences' | 'managedFields'>> & {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: ManagedFieldsEntry[];
};

/** Any Kubernetes object as it travels over the API (typed per kind via kubernetes-types). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}


/** `ns/name` for namespaced objects, `name` for cluster-scoped ones (the cache and workqueue key). */
export function objectKey(obj: { metadata?: { name?: string; namespace?: string } }): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : `${m.name ?? ''}`;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Deep clone for cached objects: never mutate what an informer handed you. */
export function clone<T>(obj: T): T {
  return structuredClone(obj);
}
