import type { KubeObject } from '../../api/object.js';
import type { Decision, RequestAttributes } from '../hooks.js';
import { nodeNameOf } from './admission.js';

/** Kinds a node may only read when a pod bound to it uses them (Kubernetes' Node authorizer). */
const GATED = new Set(['secrets', 'configmaps', 'persistentvolumeclaims']);

type Refs = { secrets: Set<string>; configmaps: Set<string>; persistentvolumeclaims: Set<string>; serviceaccounts: Set<string> };

interface PodSpecLike {
  nodeName?: string;
  serviceAccountName?: string;
  imagePullSecrets?: { name?: string }[];
  volumes?: {
    secret?: { secretName?: string };
    configMap?: { name?: string };
    persistentVolumeClaim?: { claimName?: string };
    projected?: { sources?: { secret?: { name?: string }; configMap?: { name?: string } }[] };
  }[];
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  ephemeralContainers?: ContainerLike[];
}
interface ContainerLike {
  env?: { valueFrom?: { secretKeyRef?: { name?: string }; configMapKeyRef?: { name?: string } } }[];
  envFrom?: { secretRef?: { name?: string }; configMapRef?: { name?: string } }[];
}

/** Every Secret, ConfigMap, PVC and ServiceAccount a pod uses (names in the pod's namespace). */
export function podReferences(pod: KubeObject): Refs {
  const spec = (pod.spec ?? {}) as PodSpecLike;
  const r: Refs = { secrets: new Set(), configmaps: new Set(), persistentvolumeclaims: new Set(), serviceaccounts: new Set([spec.serviceAccountName || 'default']) };
  const add = (set: Set<string>, n?: string) => n && set.add(n);
  for (const s of spec.imagePullSecrets ?? []) add(r.secrets, s.name);
  for (const v of spec.volumes ?? []) {
    add(r.secrets, v.secret?.secretName);
    add(r.configmaps, v.configMap?.name);
    add(r.persistentvolumeclaims, v.persistentVolumeClaim?.claimName);
    for (const src of v.projected?.sources ?? []) {
      add(r.secrets, src.secret?.name);
      add(r.configmaps, src.configMap?.name);
    }
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])]) {
    for (const e of c.env ?? []) {
      add(r.secrets, e.valueFrom?.secretKeyRef?.name);
      add(r.configmaps, e.valueFrom?.configMapKeyRef?.name);
    }
    for (const e of c.envFrom ?? []) {
      add(r.secrets, e.secretRef?.name);
      add(r.configmaps, e.configMapRef?.name);
    }
  }
  return r;
}

/**
 * The Node authorizer, pure: for a node's credentials, reading a Secret, ConfigMap or PVC, or
 * requesting a ServiceAccount token, is allowed only through a pod bound to that node.
 * Returns undefined when the request is not one it rules on (RBAC decides).
 */
export function authorizeNode(a: RequestAttributes, podsOnNode: (node: string) => KubeObject[]): Decision | undefined {
  const node = nodeNameOf(a.user);
  if (node === undefined || !a.isResourceRequest || a.apiGroup !== '') return undefined;
  const resource = a.resource ?? '';
  const tokenRequest = resource === 'serviceaccounts' && a.subresource === 'token';
  if (!tokenRequest && !(GATED.has(resource) && !a.subresource)) return undefined;
  const deny = (why: string): Decision => ({ allowed: false, reason: `node '${node}' ${why}` });
  if (tokenRequest ? a.verb !== 'create' : a.verb !== 'get') return deny(`may only ${tokenRequest ? 'create' : 'get'} individual ${resource}${tokenRequest ? '/token' : ''}`);
  if (!a.name || !a.namespace) return deny('may only access namespaced objects by name');
  const kind = tokenRequest ? 'serviceaccounts' : (resource as keyof Refs);
  for (const pod of podsOnNode(node)) {
    if (pod.metadata?.namespace === a.namespace && podReferences(pod)[kind].has(a.name)) return { allowed: true, reason: `used by pod ${a.namespace}/${pod.metadata?.name} on node '${node}'` };
  }
  return deny(`has no relationship with ${resource} ${a.namespace}/${a.name}`);
}
