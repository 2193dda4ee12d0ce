import t from 'tap';
import type { KubeObject } from '../../api/object.js';
import type { RequestAttributes, UserInfo } from '../hooks.js';
import { authorizeRbac, buildIndex, forbiddenMessage, rulesFor, type RbacSnapshot } from './rbac.js';
import { snapshotFromObjects } from './convert.js';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from './bootstrap.js';
import { requestAttributes } from './requestinfo.js';
import { escalationAdmission, nodeRestrictionAdmission, uncoveredRules } from './admission.js';

const rb = (ns: string, name: string, kind: string, role: string, subjects: KubeObject['subjects']): KubeObject => ({
  kind: 'RoleBinding',
  metadata: { name, namespace: ns },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: role },
  subjects,
});

function snapshot(extra: { roles?: KubeObject[]; roleBindings?: KubeObject[]; clusterRoles?: KubeObject[]; clusterRoleBindings?: KubeObject[] } = {}): RbacSnapshot {
  return snapshotFromObjects({
    roles: extra.roles ?? [],
    clusterRoles: [...bootstrapClusterRoles(), ...(extra.clusterRoles ?? [])],
    roleBindings: extra.roleBindings ?? [],
    clusterRoleBindings: [...bootstrapClusterRoleBindings(), ...(extra.clusterRoleBindings ?? [])],
  });
}

const sa = (ns: string, name: string): UserInfo => ({ username: `system:serviceaccount:${ns}:${name}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'] });
const alice: UserInfo = { username: 'alice', groups: ['system:authenticated'] };
const bob: UserInfo = { username: 'bob', groups: ['devs', 'system:authenticated'] };

const idx = buildIndex(
  snapshot({
    roles: [
      { kind: 'Role', metadata: { name: 'cm-one', namespace: 'team' }, rules: [{ verbs: ['get', 'update'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['one'] }] },
      { kind: 'Role', metadata: { name: 'logs', namespace: 'team' }, rules: [{ verbs: ['get'], apiGroups: [''], resources: ['pods/log'] }, { verbs: ['create'], apiGroups: [''], resources: ['*/exec'] }] },
    ],
    roleBindings: [
      rb('team', 'viewer', 'ClusterRole', 'view', [{ kind: 'ServiceAccount', name: 'reader', namespace: 'team' }]),
      rb('team', 'cm', 'Role', 'cm-one', [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }]),
      rb('team', 'logs', 'Role', 'logs', [{ kind: 'Group', name: 'devs', apiGroup: 'rbac.authorization.k8s.io' }]),
      rb('team', 'editor', 'ClusterRole', 'edit', [{ kind: 'User', name: 'eddie' }]),
      rb('team', 'admin', 'ClusterRole', 'admin', [{ kind: 'User', name: 'adam' }]),
      rb('other', 'wrong-ns-role', 'Role', 'logs', [{ kind: 'User', name: 'alice' }]),
    ],
    clusterRoles: [{ kind: 'ClusterRole', metadata: { name: 'healthz', labels: {} }, rules: [{ verbs: ['get'], nonResourceURLs: ['/metrics', '/debug/*'] }] }],
    clusterRoleBindings: [{ kind: 'ClusterRoleBinding', metadata: { name: 'h' }, roleRef: { kind: 'ClusterRole', name: 'healthz' }, subjects: [{ kind: 'User', name: 'bob' }] }],
  }),
);

const req = (user: UserInfo, method: string, url: string): RequestAttributes => requestAttributes(method, url, user);

t.test('RBAC decisions (table)', async (t) => {
  const cases: [string, UserInfo, string, string, boolean][] = [
    ['view SA lists pods in its namespace', sa('team', 'reader'), 'GET', '/api/v1/namespaces/team/pods', true],
    ['view SA watches deployments', sa('team', 'reader'), 'GET', '/apis/apps/v1/namespaces/team/deployments?watch=true', true],
    ['view SA reads pod logs', sa('team', 'reader'), 'GET', '/api/v1/namespaces/team/pods/p/log', true],
    ['view SA may not exec', sa('team', 'reader'), 'POST', '/api/v1/namespaces/team/pods/p/exec', false],
    ['view SA may not read secrets', sa('team', 'reader'), 'GET', '/api/v1/namespaces/team/secrets', false],
    ['view SA may not list elsewhere', sa('team', 'reader'), 'GET', '/api/v1/namespaces/default/pods', false],
    ['view SA may not list cluster-wide', sa('team', 'reader'), 'GET', '/api/v1/pods', false],
    ['view SA may not create', sa('team', 'reader'), 'POST', '/api/v1/namespaces/team/pods', false],
    ['same SA name in other namespace is not bound', sa('default', 'reader'), 'GET', '/api/v1/namespaces/team/pods', false],
    ['resourceNames: named get allowed', alice, 'GET', '/api/v1/namespaces/team/configmaps/one', true],
    ['resourceNames: other name denied', alice, 'GET', '/api/v1/namespaces/team/configmaps/two', false],
    ['resourceNames: list denied', alice, 'GET', '/api/v1/namespaces/team/configmaps', false],
    ['resourceNames: verb not in rule', alice, 'DELETE', '/api/v1/namespaces/team/configmaps/one', false],
    ['RoleBinding to a Role of another namespace grants nothing', alice, 'GET', '/api/v1/namespaces/other/pods/p/log', false],
    ['subresource pods/log via group', bob, 'GET', '/api/v1/namespaces/team/pods/p/log', true],
    ['subresource does not grant the resource', bob, 'GET', '/api/v1/namespaces/team/pods/p', false],
    ['*/exec covers pods/exec', bob, 'POST', '/api/v1/namespaces/team/pods/p/exec', true],
    ['nonResourceURL exact', bob, 'GET', '/metrics', true],
    ['nonResourceURL prefix*', bob, 'GET', '/debug/pprof', true],
    ['nonResourceURL verb', bob, 'POST', '/metrics', false],
    ['discovery for authenticated', alice, 'GET', '/apis/apps/v1', true],
    ['edit (aggregated) creates deployments', { username: 'eddie', groups: ['system:authenticated'] }, 'POST', '/apis/apps/v1/namespaces/team/deployments', true],
    ['edit (aggregated from view) reads pods', { username: 'eddie', groups: ['system:authenticated'] }, 'GET', '/api/v1/namespaces/team/pods', true],
    ['edit may not write rolebindings', { username: 'eddie', groups: ['system:authenticated'] }, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', false],
    ['admin (aggregated from edit and view) writes rolebindings', { username: 'adam', groups: ['system:authenticated'] }, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', true],
    ['admin reads pods via edit→view chain', { username: 'adam', groups: ['system:authenticated'] }, 'GET', '/api/v1/namespaces/team/pods/x', true],
    ['system:masters bypasses', { username: 'root', groups: ['system:masters'] }, 'DELETE', '/api/v1/nodes/n1', true],
    ['node role reads pods', { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] }, 'GET', '/api/v1/pods', true],
    ['proxy component lists endpointslices', { username: 'skiff:proxy', groups: [] }, 'GET', '/apis/discovery.k8s.io/v1/endpointslices', true],
    ['proxy component may not read secrets', { username: 'skiff:proxy', groups: [] }, 'GET', '/api/v1/secrets', false],
    ['anonymous sees healthz only', { username: 'system:anonymous', groups: ['system:unauthenticated'] }, 'GET', '/healthz', true],
    ['anonymous no discovery', { username: 'system:anonymous', groups: ['system:unauthenticated'] }, 'GET', '/api', false],
  ];
  for (const [name, user, method, url, want] of cases) t.equal(authorizeRbac(idx, req(user, method, url)).allowed, want, name);
});

t.test('request attributes and 403 message match Kubernetes', async (t) => {
  const a = req(sa('team', 'reader'), 'GET', '/api/v1/namespaces/default/pods');
  t.match(a, { verb: 'list', resource: 'pods', namespace: 'default', apiGroup: '', isResourceRequest: true });
  t.equal(forbiddenMessage(a), 'pods is forbidden: User "system:serviceaccount:team:reader" cannot list resource "pods" in API group "" in the namespace "default"');
  t.equal(forbiddenMessage(req(alice, 'POST', '/apis/apps/v1/namespaces/x/deployments')), 'deployments.apps is forbidden: User "alice" cannot create resource "deployments" in API group "apps" in the namespace "x"');
  t.equal(forbiddenMessage(req(alice, 'GET', '/api/v1/nodes/n1')), 'nodes "n1" is forbidden: User "alice" cannot get resource "nodes" in API group "" at the cluster scope');
  t.match(req(alice, 'GET', '/api/v1/namespaces/team'), { resource: 'namespaces', name: 'team', namespace: 'team', verb: 'get' });
  t.match(req(alice, 'PUT', '/api/v1/namespaces/team/finalize'), { resource: 'namespaces', name: 'team', subresource: 'finalize', verb: 'update' });
  t.match(req(alice, 'DELETE', '/api/v1/namespaces/team/pods'), { verb: 'deletecollection' });
  t.match(req(alice, 'GET', '/api/v1/watch/namespaces/team/pods'), { verb: 'watch', namespace: 'team', resource: 'pods' });
  t.match(req(alice, 'GET', '/api/v1'), { isResourceRequest: false, path: '/api/v1', verb: 'get' });
});

t.test('rulesFor lists a namespace\'s rules (can-i --list)', async (t) => {
  const rules = rulesFor(idx, alice, 'team');
  t.ok(rules.some((r) => r.resourceNames?.includes('one')), 'role rule with resourceNames');
  t.ok(rules.some((r) => r.resources?.includes('selfsubjectaccessreviews')), 'basic-user rules');
  t.notOk(rulesFor(idx, alice, 'default').some((r) => r.resources?.includes('configmaps')));
});

t.test('escalation: covering rules', async (t) => {
  const held = [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods', 'configmaps'] }];
  t.same(uncoveredRules(held, [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }]), []);
  t.equal(uncoveredRules(held, [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods'] }]).length, 1);
  t.equal(uncoveredRules(held, [{ verbs: ['get'], apiGroups: [''], resources: ['*'] }]).length, 1, 'asking for * needs holding *');
  t.same(uncoveredRules([{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], [{ verbs: ['get'], apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: ['x'] }]), []);
  t.equal(uncoveredRules([{ verbs: ['get'], apiGroups: [''], resources: ['pods'], resourceNames: ['a'] }], [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }]).length, 1);
});

t.test('escalation admission refuses granting what you do not hold', async (t) => {
  const admit = escalationAdmission(() => idx);
  const adam: UserInfo = { username: 'adam', groups: ['system:authenticated'] };
  const bindReq = (user: UserInfo, ns: string, role: string, kind = 'ClusterRole') => ({
    attrs: req(user, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`),
    operation: 'CREATE' as const,
    object: rb(ns, 'b', kind, role, [{ kind: 'User', name: 'mallory' }]),
    dryRun: false,
  });
  await t.rejects(admit(bindReq(adam, 'team', 'cluster-admin')), { errCode: 'ERR_RBAC_ESCALATION', code: 403, reason: 'Forbidden', message: /attempting to grant RBAC permissions not currently held/ });
  await t.resolves(admit(bindReq(adam, 'team', 'view')), 'admin may bind view in its namespace');
  await t.resolves(admit(bindReq(adam, 'team', 'edit')), 'admin may bind edit (holds it via aggregation)');
  await t.rejects(admit(bindReq(adam, 'team', 'no-such-role')), { errCode: 'ERR_RBAC_ESCALATION' });
  const roleReq = (rules: unknown[]) => ({
    attrs: req(adam, 'POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles'),
    operation: 'CREATE' as const,
    object: { kind: 'Role', metadata: { name: 'r', namespace: 'team' }, rules },
    dryRun: false,
  });
  await t.resolves(admit(roleReq([{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }])));
  await t.rejects(admit(roleReq([{ verbs: ['get'], apiGroups: [''], resources: ['nodes'] }])), { errCode: 'ERR_RBAC_ESCALATION' });
  await t.resolves(admit({ ...bindReq({ username: 'x', groups: ['system:masters'] }, 'team', 'cluster-admin') }), 'masters may grant anything');
  // a user granted `bind` on cluster-admin may bind it without holding it
  const withBind = buildIndex(
    snapshot({
      roles: [{ kind: 'Role', metadata: { name: 'binder', namespace: 'team' }, rules: [{ verbs: ['bind'], apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: ['cluster-admin'] }] }],
      roleBindings: [rb('team', 'binder', 'Role', 'binder', [{ kind: 'User', name: 'adam' }])],
    }),
  );
  await t.resolves(escalationAdmission(() => withBind)(bindReq(adam, 'team', 'cluster-admin')));
});

t.test('node restriction', async (t) => {
  const admit = nodeRestrictionAdmission();
  const n1: UserInfo = { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
  const pod = (node?: string): KubeObject => ({ kind: 'Pod', metadata: { name: 'p', namespace: 'd' }, spec: node ? { nodeName: node } : {} });
  const w = (method: string, url: string, operation: 'CREATE' | 'UPDATE' | 'DELETE', object?: KubeObject, oldObject?: KubeObject) => admit({ attrs: req(n1, method, url), operation, object, oldObject, dryRun: false });
  await t.resolves(w('PUT', '/api/v1/nodes/n1/status', 'UPDATE', { metadata: { name: 'n1' } }, { metadata: { name: 'n1' } }));
  await t.rejects(w('PUT', '/api/v1/nodes/n2/status', 'UPDATE', { metadata: { name: 'n2' } }, { metadata: { name: 'n2' } }), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.rejects(w('DELETE', '/api/v1/nodes/n2', 'DELETE', undefined, { metadata: { name: 'n2' } }), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.resolves(w('PUT', '/api/v1/namespaces/d/pods/p/status', 'UPDATE', pod('n1'), pod('n1')));
  await t.rejects(w('PUT', '/api/v1/namespaces/d/pods/p/status', 'UPDATE', pod('n2'), pod('n2')), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.rejects(w('DELETE', '/api/v1/namespaces/d/pods/p', 'DELETE', undefined, pod()), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.rejects(w('POST', '/api/v1/namespaces/d/pods', 'CREATE', pod('n2')), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.resolves(w('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1', 'UPDATE', { metadata: { name: 'n1', namespace: 'kube-node-lease' } }));
  await t.rejects(w('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2', 'UPDATE', { metadata: { name: 'n2', namespace: 'kube-node-lease' } }), { errCode: 'ERR_NODE_RESTRICTION', code: 403 });
  await t.resolves(admit({ attrs: req(alice, 'DELETE', '/api/v1/nodes/n2'), operation: 'DELETE', dryRun: false }), 'non-node users untouched');
});
