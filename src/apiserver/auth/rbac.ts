import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import { labelSelectorMatches } from '../../api/labels.js';
import type { Decision, RequestAttributes, UserInfo } from '../hooks.js';

/** Slim RBAC structs: API objects are converted at the edge (see fromObjects). */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface RoleDef {
  name: string;
  /** set for Roles, unset for ClusterRoles */
  namespace?: string;
  labels?: Record<string, string>;
  rules: PolicyRule[];
  aggregationRule?: { clusterRoleSelectors?: LabelSelector[] };
}

export interface Subject {
  kind: 'User' | 'Group' | 'ServiceAccount' | string;
  name: string;
  namespace?: string;
}

export interface BindingDef {
  name: string;
  /** set for RoleBindings, unset for ClusterRoleBindings */
  namespace?: string;
  roleRef: { kind: 'Role' | 'ClusterRole' | string; name: string };
  subjects: Subject[];
}

export interface RbacSnapshot {
  roles: RoleDef[];
  clusterRoles: RoleDef[];
  roleBindings: BindingDef[];
  clusterRoleBindings: BindingDef[];
}

/** Groups that bypass RBAC, as in Kubernetes. */
export const SUPERUSER_GROUP = 'system:masters';

/** An index over a snapshot: roles by key, bindings by namespace, aggregated ClusterRoles resolved once. */
export interface RbacIndex {
  clusterRoleRules: Map<string, PolicyRule[]>;
  roleRules: Map<string, PolicyRule[]>;
  clusterRoleBindings: BindingDef[];
  roleBindingsByNs: Map<string, BindingDef[]>;
}

const has = (list: string[] | undefined, v: string) => !!list && list.includes(v);

/** The effective rules of every ClusterRole: own rules, or for aggregated ones the union of the selected roles' rules. */
export function resolveClusterRoles(clusterRoles: RoleDef[]): Map<string, PolicyRule[]> {
  const byName = new Map(clusterRoles.map((r) => [r.name, r]));
  const out = new Map<string, PolicyRule[]>();
  const resolve = (role: RoleDef, visiting: Set<string>): PolicyRule[] => {
    const done = out.get(role.name);
    if (done) return done;
    const selectors = role.aggregationRule?.clusterRoleSelectors;
    if (!selectors?.length) return role.rules;
    if (visiting.has(role.name)) return role.rules;
    visiting.add(role.name);
    const rules: PolicyRule[] = [];
    const seen = new Set<string>();
    const sources = [...byName.values()].filter((r) => r.name !== role.name && selectors.some((s) => labelSelectorMatches(s, r.labels ?? {})));
    sources.sort((a, b) => a.name.localeCompare(b.name));
    for (const src of sources) {
      for (const rule of resolve(src, visiting)) {
        const k = JSON.stringify(rule);
        if (!seen.has(k)) {
          seen.add(k);
          rules.push(rule);
        }
      }
    }
    visiting.delete(role.name);
    out.set(role.name, rules);
    return rules;
  };
  for (const r of clusterRoles) out.set(r.name, resolve(r, new Set()));
  return out;
}

export function buildIndex(s: RbacSnapshot): RbacIndex {
  const roleBindingsByNs = new Map<string, BindingDef[]>();
  for (const b of s.roleBindings) {
    const list = roleBindingsByNs.get(b.namespace ?? '') ?? [];
    list.push(b);
    roleBindingsByNs.set(b.namespace ?? '', list);
  }
  return {
    clusterRoleRules: resolveClusterRoles(s.clusterRoles),
    roleRules: new Map(s.roles.map((r) => [`${r.namespace}/${r.name}`, r.rules])),
    clusterRoleBindings: s.clusterRoleBindings,
    roleBindingsByNs,
  };
}

export function subjectMatches(subject: Subject, user: UserInfo, bindingNamespace?: string): boolean {
  switch (subject.kind) {
    case 'User':
      return subject.name === user.username;
    case 'Group':
      return user.groups.includes(subject.name);
    case 'ServiceAccount': {
      const ns = subject.namespace || bindingNamespace;
      return !!ns && user.username === `system:serviceaccount:${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

function verbMatches(rule: PolicyRule, verb: string): boolean {
  return has(rule.verbs, '*') || has(rule.verbs, verb);
}

function resourceMatches(rule: PolicyRule, resource: string, subresource?: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** rbac.RuleAllows: does one rule allow these attributes. */
export function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  if (!verbMatches(rule, a.verb)) return false;
  if (!a.isResourceRequest) return nonResourceURLMatches(rule, a.path);
  if (!(has(rule.apiGroups, '*') || has(rule.apiGroups, a.apiGroup))) return false;
  if (!resourceMatches(rule, a.resource ?? '', a.subresource)) return false;
  return !rule.resourceNames?.length || (!!a.name && rule.resourceNames.includes(a.name));
}

interface Grant {
  binding: BindingDef;
  rules: PolicyRule[];
}

function rulesOfBinding(idx: RbacIndex, b: BindingDef): PolicyRule[] {
  if (b.roleRef.kind === 'ClusterRole') return idx.clusterRoleRules.get(b.roleRef.name) ?? [];
  if (b.roleRef.kind === 'Role' && b.namespace) return idx.roleRules.get(`${b.namespace}/${b.roleRef.name}`) ?? [];
  return [];
}

/** Every binding that applies to the user in `namespace` (cluster-wide bindings always; role bindings of that namespace). */
function grantsFor(idx: RbacIndex, user: UserInfo, namespace?: string): Grant[] {
  const out: Grant[] = [];
  for (const b of idx.clusterRoleBindings) {
    if (b.subjects.some((s) => subjectMatches(s, user))) out.push({ binding: b, rules: rulesOfBinding(idx, b) });
  }
  if (namespace) {
    for (const b of idx.roleBindingsByNs.get(namespace) ?? []) {
      if (b.subjects.some((s) => subjectMatches(s, user, b.namespace))) out.push({ binding: b, rules: rulesOfBinding(idx, b) });
    }
  }
  return out;
}

function describeSubject(user: UserInfo): string {
  return user.username.startsWith('system:serviceaccount:') ? `ServiceAccount "${user.username.split(':').slice(2).join('/')}"` : `User "${user.username}"`;
}

/** The RBAC decision, a pure function of the index and the attributes (system:masters always allowed). */
export function authorizeRbac(idx: RbacIndex, a: RequestAttributes): Decision {
  if (a.user.groups.includes(SUPERUSER_GROUP)) return { allowed: true, reason: `member of ${SUPERUSER_GROUP}` };
  const ns = a.isResourceRequest ? a.namespace : undefined;
  for (const g of grantsFor(idx, a.user, ns)) {
    if (g.rules.some((r) => ruleAllows(r, a))) {
      const kind = g.binding.namespace ? 'RoleBinding' : 'ClusterRoleBinding';
      const where = g.binding.namespace ? ` in namespace "${g.binding.namespace}"` : '';
      return { allowed: true, reason: `RBAC: allowed by ${kind} "${g.binding.name}/${g.binding.namespace ?? ''}" of ${g.binding.roleRef.kind} "${g.binding.roleRef.name}" to ${describeSubject(a.user)}${where}` };
    }
  }
  return { allowed: false, reason: '' };
}

/** The rules a user holds in a namespace (cluster-wide ones included): SelfSubjectRulesReview and escalation checks. */
export function rulesFor(idx: RbacIndex, user: UserInfo, namespace?: string): PolicyRule[] {
  if (user.groups.includes(SUPERUSER_GROUP)) return [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];
  const out: PolicyRule[] = [];
  const seen = new Set<string>();
  for (const g of grantsFor(idx, user, namespace)) {
    for (const r of g.rules) {
      const k = JSON.stringify(r);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(r);
      }
    }
  }
  return out;
}

/**
 * The Kubernetes 403 message: `pods is forbidden: User "u" cannot list resource "pods" in API group ""
 * in the namespace "ns"` (for the lead's error handler and our own routes).
 */
export function forbiddenMessage(a: RequestAttributes, reason = ''): string {
  const who = `User "${a.user.username}"`;
  const tail = reason ? `: ${reason}` : '';
  if (!a.isResourceRequest) return `forbidden: ${who} cannot ${a.verb} path "${a.path}"${tail}`;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : (a.resource ?? '');
  const gr = a.apiGroup ? `${a.resource}.${a.apiGroup}` : (a.resource ?? '');
  const grs = a.subresource ? `${gr}/${a.subresource}` : gr;
  const subject = a.name ? `${grs} "${a.name}"` : grs;
  const scope = a.namespace ? ` in the namespace "${a.namespace}"` : a.resource === 'namespaces' ? '' : ' at the cluster scope';
  return `${subject} is forbidden: ${who} cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}"${scope}${tail}`;
}
