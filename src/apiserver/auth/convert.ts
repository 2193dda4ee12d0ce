import type { KubeObject } from '../../api/object.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { BindingDef, PolicyRule, RbacSnapshot, RoleDef, Subject } from './rbac.js';

const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);

function rule(r: Record<string, unknown>): PolicyRule {
  const out: PolicyRule = { verbs: strs(r.verbs) ?? [] };
  for (const k of ['apiGroups', 'resources', 'resourceNames', 'nonResourceURLs'] as const) {
    const v = strs(r[k]);
    if (v) out[k] = v;
  }
  return out;
}

/** Role or ClusterRole object → slim RoleDef (the cached object is not kept). */
export function fromRoleObject(o: KubeObject): RoleDef {
  const rules = Array.isArray(o.rules) ? (o.rules as Record<string, unknown>[]).map(rule) : [];
  const def: RoleDef = { name: o.metadata?.name ?? '', rules };
  if (o.metadata?.namespace) def.namespace = o.metadata.namespace;
  if (o.metadata?.labels) def.labels = { ...o.metadata.labels };
  const agg = o.aggregationRule as { clusterRoleSelectors?: LabelSelector[] } | undefined;
  if (agg?.clusterRoleSelectors) def.aggregationRule = { clusterRoleSelectors: structuredClone(agg.clusterRoleSelectors) };
  return def;
}

/** RoleBinding or ClusterRoleBinding object → slim BindingDef. */
export function fromBindingObject(o: KubeObject): BindingDef {
  const ref = (o.roleRef ?? {}) as { kind?: string; name?: string };
  const subjects = Array.isArray(o.subjects) ? (o.subjects as Subject[]).map((s) => ({ kind: s.kind, name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}) })) : [];
  const def: BindingDef = { name: o.metadata?.name ?? '', roleRef: { kind: ref.kind ?? '', name: ref.name ?? '' }, subjects };
  if (o.metadata?.namespace) def.namespace = o.metadata.namespace;
  return def;
}

export function snapshotFromObjects(objs: { roles: KubeObject[]; clusterRoles: KubeObject[]; roleBindings: KubeObject[]; clusterRoleBindings: KubeObject[] }): RbacSnapshot {
  return {
    roles: objs.roles.map(fromRoleObject),
    clusterRoles: objs.clusterRoles.map(fromRoleObject),
    roleBindings: objs.roleBindings.map(fromBindingObject),
    clusterRoleBindings: objs.clusterRoleBindings.map(fromBindingObject),
  };
}
