/** Proto packages skiff's table covers, with the short alias the table uses for each. */
export const PACKAGE_ALIASES: ReadonlyArray<readonly [alias: string, pkg: string]> = [
  ['metav1', 'k8s.io.apimachinery.pkg.apis.meta.v1'],
  ['resource', 'k8s.io.apimachinery.pkg.api.resource'],
  ['intstr', 'k8s.io.apimachinery.pkg.util.intstr'],
  ['runtime', 'k8s.io.apimachinery.pkg.runtime'],
  ['corev1', 'k8s.io.api.core.v1'],
  ['appsv1', 'k8s.io.api.apps.v1'],
  ['batchv1', 'k8s.io.api.batch.v1'],
  ['autoscalingv1', 'k8s.io.api.autoscaling.v1'],
  ['autoscalingv2', 'k8s.io.api.autoscaling.v2'],
  ['networkingv1', 'k8s.io.api.networking.v1'],
  ['discoveryv1', 'k8s.io.api.discovery.v1'],
  ['rbacv1', 'k8s.io.api.rbac.v1'],
  ['policyv1', 'k8s.io.api.policy.v1'],
  ['storagev1', 'k8s.io.api.storage.v1'],
  ['coordinationv1', 'k8s.io.api.coordination.v1'],
  ['authenticationv1', 'k8s.io.api.authentication.v1'],
  ['authorizationv1', 'k8s.io.api.authorization.v1'],
];

/** runtime.Unknown: the envelope after the `k8s\\0` magic (typeMeta, raw, contentEncoding, contentType). */
export const ENVELOPE_MESSAGE = 'k8s.io.apimachinery.pkg.runtime.Unknown';

/** Request-body kinds that are not stored resources (options, reviews, subresource bodies). */
export const EXTRA_KINDS: ReadonlyArray<{ group: string; version: string; kind: string }> = [
  { group: '', version: 'v1', kind: 'DeleteOptions' },
  { group: '', version: 'v1', kind: 'Binding' },
  { group: 'policy', version: 'v1', kind: 'Eviction' },
  { group: 'autoscaling', version: 'v1', kind: 'Scale' },
  { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' },
  { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenReview' },
  { group: 'authentication.k8s.io', version: 'v1', kind: 'SelfSubjectReview' },
  { group: 'authorization.k8s.io', version: 'v1', kind: 'SubjectAccessReview' },
  { group: 'authorization.k8s.io', version: 'v1', kind: 'LocalSubjectAccessReview' },
  { group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectAccessReview' },
  { group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectRulesReview' },
];

/** Kinds of meta/v1 that every group version registers (clients send them under any apiVersion). */
const META_KINDS = new Set(['DeleteOptions']);

/**
 * The proto message of a Kubernetes kind: `apps`/v1 Deployment → k8s.io.api.apps.v1.Deployment,
 * core (group "") → k8s.io.api.core.v1, `rbac.authorization.k8s.io` → k8s.io.api.rbac.v1.
 */
export function messageNameFor(group: string, version: string, kind: string): string {
  if (META_KINDS.has(kind)) return `k8s.io.apimachinery.pkg.apis.meta.v1.${kind}`;
  const pkg = group === '' ? 'core' : group.split('.')[0];
  return `k8s.io.api.${pkg}.${version}.${kind}`;
}

/** Splits an apiVersion (`apps/v1`, `v1`) into group and version. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}
