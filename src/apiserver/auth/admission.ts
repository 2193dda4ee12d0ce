import type { KubeObject } from '../../api/object.js';
import { StatusError } from '../errors.js';
import { counter } from '../../util/metrics.js';
import type { AdmissionHook, AdmissionRequest, UserInfo } from '../hooks.js';
import { authorizeRbac, rulesFor, SUPERUSER_GROUP, type PolicyRule, type RbacIndex } from './rbac.js';
import { fromRoleObject, fromBindingObject } from './convert.js';

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const FULL_AUTHORITY: PolicyRule[] = [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];
const denied = counter({ name: 'skiff_admission_denied_total', help: 'Writes refused by security admission', labelNames: ['plugin'] as const });

/** A refused write: carries the HTTP status and Kubernetes reason the apiserver puts in its Status. */
export class AdmissionDenied extends StatusError {
  readonly statusCode = 403;
  constructor(readonly errCode: string, message: string) {
    super(403, 'Forbidden', message);
  }
}

/** One rule per (verb, group, resource, name) or (verb, url): what "covering" is checked on. */
export function breakdownRule(rule: PolicyRule): PolicyRule[] {
  const out: PolicyRule[] = [];
  for (const verb of rule.verbs) {
    for (const url of rule.nonResourceURLs ?? []) out.push({ verbs: [verb], nonResourceURLs: [url] });
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        if (rule.resourceNames?.length) for (const n of rule.resourceNames) out.push({ verbs: [verb], apiGroups: [group], resources: [resource], resourceNames: [n] });
        else out.push({ verbs: [verb], apiGroups: [group], resources: [resource] });
      }
    }
  }
  return out;
}

function covers1(owner: string[] | undefined, wanted: string, opts: { prefix?: boolean; sub?: boolean } = {}): boolean {
  for (const o of owner ?? []) {
    if (o === '*' || o === wanted) return true;
    if (opts.prefix && o.endsWith('*') && wanted.startsWith(o.slice(0, -1))) return true;
    if (opts.sub && o.startsWith('*/') && wanted.endsWith(o.slice(1)) && wanted.includes('/')) return true;
  }
  return false;
}

/** rbac validation.ruleCovers for one broken-down rule. A wildcard asked for is only covered by a wildcard held. */
export function ruleCovers(owner: PolicyRule, atom: PolicyRule): boolean {
  if (!covers1(owner.verbs, atom.verbs[0])) return false;
  if (atom.nonResourceURLs?.length) return covers1(owner.nonResourceURLs, atom.nonResourceURLs[0], { prefix: true });
  if (!atom.apiGroups?.length || !atom.resources?.length) return true;
  if (!covers1(owner.apiGroups, atom.apiGroups[0])) return false;
  if (!covers1(owner.resources, atom.resources[0], { sub: true })) return false;
  if (!owner.resourceNames?.length) return true;
  return !!atom.resourceNames?.length && owner.resourceNames.includes(atom.resourceNames[0]);
}

/** The parts of `wanted` that `held` does not cover (empty = no escalation). */
export function uncoveredRules(held: PolicyRule[], wanted: PolicyRule[]): PolicyRule[] {
  return wanted.flatMap(breakdownRule).filter((atom) => !held.some((h) => ruleCovers(h, atom)));
}

function fmtRule(r: PolicyRule): string {
  const parts = [];
  if (r.apiGroups) parts.push(`APIGroups:[${r.apiGroups.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resources) parts.push(`Resources:[${r.resources.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.resourceNames) parts.push(`ResourceNames:[${r.resourceNames.map((g) => JSON.stringify(g)).join(' ')}]`);
  if (r.nonResourceURLs) parts.push(`NonResourceURLs:[${r.nonResourceURLs.map((g) => JSON.stringify(g)).join(' ')}]`);
  parts.push(`Verbs:[${r.verbs.map((g) => JSON.stringify(g)).join(' ')}]`);
  return `{${parts.join(', ')}}`;
}

function escalationError(req: AdmissionRequest, missing: PolicyRule[]): AdmissionDenied {
  const a = req.attrs;
  const u = a.user;
  const shown = missing.slice(0, 20).map(fmtRule).join('\n');
  const more = missing.length > 20 ? `\n... and ${missing.length - 20} more` : '';
  return new AdmissionDenied(
    'ERR_RBAC_ESCALATION',
    `${a.resource}.${RBAC_GROUP} "${req.object?.metadata?.name ?? a.name ?? ''}" is forbidden: user "${u.username}" (groups=${JSON.stringify(u.groups)}) is attempting to grant RBAC permissions not currently held:\n${shown}${more}`,
  );
}

function can(idx: RbacIndex, user: UserInfo, verb: string, resource: string, name: string, namespace?: string): boolean {
  return authorizeRbac(idx, { user, verb, isResourceRequest: true, path: '', apiGroup: RBAC_GROUP, apiVersion: 'v1', resource, name, namespace }).allowed;
}

/** The rules a role reference grants, as the binding would see them. */
function referencedRules(idx: RbacIndex, roleRef: { kind: string; name: string }, namespace?: string): PolicyRule[] | undefined {
  if (roleRef.kind === 'ClusterRole') return idx.clusterRoleRules.get(roleRef.name);
  if (roleRef.kind === 'Role' && namespace) return idx.roleRules.get(`${namespace}/${roleRef.name}`);
  return undefined;
}

/**
 * Escalation prevention (Kubernetes' RBAC REST strategy): you may only create or change a Role,
 * ClusterRole or binding if you already hold every permission it grants, unless you hold the
 * `escalate` (roles) or `bind` (bindings) verb on it.
 */
export function escalationAdmission(index: () => RbacIndex): AdmissionHook {
  return async (req) => {
    const a = req.attrs;
    if (a.apiGroup !== RBAC_GROUP || req.operation === 'DELETE' || !req.object) return;
    if (a.user.groups.includes(SUPERUSER_GROUP)) return;
    const idx = index();
    const ns = a.resource === 'roles' || a.resource === 'rolebindings' ? (req.object.metadata?.namespace ?? a.namespace) : undefined;
    const name = req.object.metadata?.name ?? '';
    if (a.resource === 'roles' || a.resource === 'clusterroles') {
      if (can(idx, a.user, 'escalate', a.resource, name, ns)) return;
      const role = fromRoleObject(req.object);
      // As in Kubernetes: an aggregationRule can pull in anything, so it needs full authority.
      const wanted = role.aggregationRule?.clusterRoleSelectors?.length ? FULL_AUTHORITY : role.rules;
      const missing = uncoveredRules(rulesFor(idx, a.user, ns), wanted);
      if (missing.length) {
        denied.inc({ plugin: 'escalation' });
        throw escalationError(req, missing);
      }
      return;
    }
    if (a.resource === 'rolebindings' || a.resource === 'clusterrolebindings') {
      const b = fromBindingObject(req.object);
      const refResource = b.roleRef.kind === 'ClusterRole' ? 'clusterroles' : 'roles';
      if (can(idx, a.user, 'bind', refResource, b.roleRef.name, ns)) return;
      const wanted = referencedRules(idx, b.roleRef, ns);
      if (!wanted) {
        denied.inc({ plugin: 'escalation' });
        throw new AdmissionDenied('ERR_RBAC_ESCALATION', `${a.resource}.${RBAC_GROUP} "${name}" is forbidden: ${b.roleRef.kind.toLowerCase()}s.${RBAC_GROUP} "${b.roleRef.name}" not found, and user "${a.user.username}" cannot bind it`);
      }
      const missing = uncoveredRules(rulesFor(idx, a.user, ns), wanted);
      if (missing.length) {
        denied.inc({ plugin: 'escalation' });
        throw escalationError(req, missing);
      }
    }
  };
}

const NODE_PREFIX = 'system:node:';

export function nodeNameOf(user: UserInfo): string | undefined {
  if (!user.groups.includes('system:nodes') || !user.username.startsWith(NODE_PREFIX)) return undefined;
  return user.username.slice(NODE_PREFIX.length);
}

function podNode(obj: KubeObject | undefined): string | undefined {
  return (obj?.spec as { nodeName?: string } | undefined)?.nodeName;
}

/**
 * NodeRestriction: a node's credentials may only write its own Node (and status), its own Lease
 * in kube-node-lease, and pods bound to it (status, delete; creating only pods bound to itself).
 */
export function nodeRestrictionAdmission(): AdmissionHook {
  return async (req) => {
    const node = nodeNameOf(req.attrs.user);
    if (node === undefined) return;
    const a = req.attrs;
    const deny = (msg: string) => {
      denied.inc({ plugin: 'node_restriction' });
      throw new AdmissionDenied('ERR_NODE_RESTRICTION', `node "${node}" is not allowed to ${msg}`);
    };
    if (a.apiGroup === '' && a.resource === 'nodes') {
      const target = req.object?.metadata?.name ?? req.oldObject?.metadata?.name ?? a.name;
      if (target !== node) deny(`modify node "${target}"`);
      return;
    }
    if (a.apiGroup === '' && a.resource === 'pods') {
      const target = `${a.namespace}/${req.object?.metadata?.name ?? a.name ?? ''}`;
      if (req.operation === 'CREATE' && !a.subresource) {
        if (podNode(req.object) !== node) deny(`create pod "${target}" that is not bound to it`);
        return;
      }
      const bound = podNode(req.oldObject) ?? podNode(req.object);
      if (bound !== node) deny(`${req.operation.toLowerCase()} pod "${target}" bound to ${bound ? `node "${bound}"` : 'no node'}`);
      if (req.operation === 'UPDATE' && podNode(req.object) !== node) deny(`rebind pod "${target}"`);
      return;
    }
    if (a.apiGroup === 'coordination.k8s.io' && a.resource === 'leases') {
      const name = req.object?.metadata?.name ?? req.oldObject?.metadata?.name ?? a.name;
      if (a.namespace !== 'kube-node-lease' || name !== node) deny(`modify lease "${a.namespace}/${name}"`);
    }
  };
}
