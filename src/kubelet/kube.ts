import type { KubeObject } from '../api/object.js';

/** A kubernetes-types object as it travels through ApiClient. */
export type Kube<T> = T & KubeObject;
