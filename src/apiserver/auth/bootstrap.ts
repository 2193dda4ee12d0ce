import type { KubeObject } from '../../api/object.js';
import { R } from '../../api/registry.js';
import type { ApiClient } from '../../client/types.js';
import type { PolicyRule } from './rbac.js';

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const AUTOUPDATE = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };
const BOOTSTRAP_LABEL = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };

const rule = (verbs: string[], apiGroups: string[], resources: string[], resourceNames?: string[]): PolicyRule =>
  resourceNames ? { verbs, apiGroups, resources, resourceNames } : { verbs, apiGroups, resources };
const nonResource = (verbs: string[], urls: string[]): PolicyRule => ({ verbs, nonResourceURLs: urls });

function clusterRole(name: string, rules: PolicyRule[], labels: Record<string, string> = {}, aggregateFrom?: string): KubeObject {
  const o: KubeObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: { ...BOOTSTRAP_LABEL, ...labels }, annotations: { ...AUTOUPDATE } },
    rules,
  };
  if (aggregateFrom) o.aggregationRule = { clusterRoleSelectors: [{ matchLabels: { [aggregateFrom]: 'true' } }] };
  return o;
}

function clusterRoleBinding(name: string, role: string, subjects: { kind: string; name: string; namespace?: string }[]): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: { ...BOOTSTRAP_LABEL }, annotations: { ...AUTOUPDATE } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: subjects.map((s) => ({ ...(s.kind === 'ServiceAccount' ? {} : { apiGroup: 'rbac.authorization.k8s.io' }), ...s })),
  };
}

const user = (name: string) => ({ kind: 'User', name });
const group = (name: string) => ({ kind: 'Group', name });

const AGG_ADMIN = 'rbac.authorization.k8s.io/aggregate-to-admin';
const AGG_EDIT = 'rbac.authorization.k8s.io/aggregate-to-edit';
const AGG_VIEW = 'rbac.authorization.k8s.io/aggregate-to-view';

const viewRules: PolicyRule[] = [
  rule(READ, [''], ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'pods/log', 'pods/status', 'replicationcontrollers', 'services', 'services/status', 'serviceaccounts', 'events', 'limitranges', 'resourcequotas', 'bindings']),
  rule(READ, [''], ['namespaces', 'namespaces/status']),
  rule(READ, ['apps'], ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status']),
  rule(READ, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
  rule(READ, ['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status']),
  rule(READ, ['discovery.k8s.io'], ['endpointslices']),
  rule(READ, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
  rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
];

const editRules: PolicyRule[] = [
  rule(['create'], [''], ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'pods/eviction', 'serviceaccounts/token']),
  rule(['get'], [''], ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'services/proxy']),
  rule(WRITE, [''], ['pods', 'configmaps', 'endpoints', 'persistentvolumeclaims', 'replicationcontrollers', 'secrets', 'serviceaccounts', 'services', 'services/proxy']),
  rule(READ, [''], ['secrets']),
  rule(['impersonate'], [''], ['serviceaccounts']),
  rule(WRITE, ['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale']),
  rule(WRITE, ['autoscaling'], ['horizontalpodautoscalers']),
  rule(WRITE, ['batch'], ['cronjobs', 'jobs']),
  rule(WRITE, ['networking.k8s.io'], ['ingresses', 'networkpolicies']),
  rule(WRITE, ['policy'], ['poddisruptionbudgets']),
  rule(WRITE, ['discovery.k8s.io'], ['endpointslices']),
  rule(['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], ['coordination.k8s.io'], ['leases']),
];

const adminRules: PolicyRule[] = [
  rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
  rule([...READ, ...WRITE], ['rbac.authorization.k8s.io'], ['rolebindings', 'roles']),
];

const READ_CORE = (resources: string[]) => rule(READ, [''], resources);
const EVENTS = rule(['create', 'patch', 'update'], ['', 'events.k8s.io'], ['events']);

/**
 * skiff's own components, each with only what it uses (bound to the user name in its client cert).
 * controller-manager needs wide write access to drive every workload kind.
 */
const componentRoles: Record<string, PolicyRule[]> = {
  'system:kube-scheduler': [
    READ_CORE(['pods', 'nodes', 'namespaces', 'persistentvolumeclaims', 'persistentvolumes', 'services']),
    rule(['create'], [''], ['pods/binding', 'bindings']),
    rule(['patch', 'update'], [''], ['pods/status']),
    rule(READ, ['apps'], ['replicasets', 'statefulsets']),
    rule(READ, ['policy'], ['poddisruptionbudgets']),
    rule(READ, ['storage.k8s.io'], ['storageclasses']),
    rule(['create', 'get', 'update'], ['coordination.k8s.io'], ['leases']),
    EVENTS,
  ],
  'system:kube-controller-manager': [
    rule(['*'], ['', 'apps', 'batch', 'autoscaling', 'policy', 'discovery.k8s.io', 'networking.k8s.io', 'coordination.k8s.io', 'storage.k8s.io'], ['*']),
    rule(READ, ['rbac.authorization.k8s.io'], ['*']),
    rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
    rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
  ],
  'skiff:proxy': [READ_CORE(['services', 'endpoints', 'nodes']), rule(READ, ['discovery.k8s.io'], ['endpointslices']), EVENTS],
  'skiff:netpol': [READ_CORE(['pods', 'namespaces', 'nodes']), rule(READ, ['networking.k8s.io'], ['networkpolicies']), EVENTS],
  'skiff:dns': [READ_CORE(['services', 'endpoints', 'namespaces', 'pods']), rule(READ, ['discovery.k8s.io'], ['endpointslices'])],
  'skiff:ingress': [
    READ_CORE(['services', 'endpoints', 'secrets']),
    rule(READ, ['discovery.k8s.io'], ['endpointslices']),
    rule(READ, ['networking.k8s.io'], ['ingresses', 'ingressclasses']),
    rule(['update', 'patch'], ['networking.k8s.io'], ['ingresses/status']),
    EVENTS,
  ],
};

/** What a kubelet uses; the NodeRestriction admission narrows writes to its own objects. */
const nodeRules: PolicyRule[] = [
  rule(['create', 'get', 'list', 'watch', 'patch', 'update', 'delete'], [''], ['nodes']),
  rule(['patch', 'update'], [''], ['nodes/status']),
  rule(READ, [''], ['pods', 'services', 'endpoints', 'persistentvolumes', 'namespaces', 'serviceaccounts']),
  // narrowed further by the Node authorizer: only objects used by pods bound to the node
  rule(['get'], [''], ['configmaps', 'secrets', 'persistentvolumeclaims']),
  rule(['create', 'delete'], [''], ['pods']),
  rule(['patch', 'update'], [''], ['pods/status']),
  rule(['create'], [''], ['pods/eviction', 'serviceaccounts/token']),
  rule(['create', 'delete', 'get', 'patch', 'update', 'list', 'watch'], ['coordination.k8s.io'], ['leases']),
  rule(READ, ['discovery.k8s.io'], ['endpointslices']),
  rule(READ, ['storage.k8s.io'], ['storageclasses']),
  rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
  rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
  EVENTS,
];

/** The bootstrap ClusterRoles, as Kubernetes ships them (trimmed to the kinds skiff serves). */
export function bootstrapClusterRoles(): KubeObject[] {
  const roles = [
    clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), nonResource(['*'], ['*'])]),
    clusterRole('admin', [], {}, AGG_ADMIN),
    clusterRole('edit', [], { [AGG_ADMIN]: 'true' }, AGG_EDIT),
    clusterRole('view', [], { [AGG_EDIT]: 'true' }, AGG_VIEW),
    clusterRole('system:aggregate-to-admin', adminRules, { [AGG_ADMIN]: 'true' }),
    clusterRole('system:aggregate-to-edit', editRules, { [AGG_EDIT]: 'true' }),
    clusterRole('system:aggregate-to-view', viewRules, { [AGG_VIEW]: 'true' }),
    clusterRole('system:discovery', [nonResource(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/readyz', '/openapi', '/openapi/*', '/version', '/version/'])]),
    clusterRole('system:public-info-viewer', [nonResource(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])]),
    clusterRole('system:basic-user', [
      rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
      rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
    ]),
    clusterRole('system:auth-delegator', [rule(['create'], ['authentication.k8s.io'], ['tokenreviews']), rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews'])]),
    clusterRole('system:node', nodeRules),
  ];
  for (const [name, rules] of Object.entries(componentRoles)) roles.push(clusterRole(name, rules));
  return roles;
}

export function bootstrapClusterRoleBindings(): KubeObject[] {
  const bindings = [
    clusterRoleBinding('cluster-admin', 'cluster-admin', [group('system:masters')]),
    clusterRoleBinding('system:discovery', 'system:discovery', [group('system:authenticated')]),
    clusterRoleBinding('system:basic-user', 'system:basic-user', [group('system:authenticated')]),
    clusterRoleBinding('system:public-info-viewer', 'system:public-info-viewer', [group('system:authenticated'), group('system:unauthenticated')]),
    clusterRoleBinding('system:node', 'system:node', [group('system:nodes')]),
  ];
  // The node agent (`skiff agent`, node credentials) runs the proxy and netpol next to the kubelet.
  const agentComponents = new Set(['skiff:proxy', 'skiff:netpol']);
  for (const name of Object.keys(componentRoles)) bindings.push(clusterRoleBinding(name, name, agentComponents.has(name) ? [user(name), group('system:nodes')] : [user(name)]));
  return bindings;
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown; reason?: unknown };
  return e?.code === 404 || e?.statusCode === 404 || e?.status === 404 || e?.reason === 'NotFound';
}

/**
 * Creates missing bootstrap roles and bindings; ones still annotated autoupdate=true are brought
 * back to the shipped rules (an operator opts out by setting it to "false"). Idempotent.
 */
export async function ensureBootstrapPolicy(client: ApiClient): Promise<{ created: number; updated: number }> {
  let created = 0;
  let updated = 0;
  const sets: [typeof R.clusterroles, KubeObject[], string[]][] = [
    [R.clusterroles, bootstrapClusterRoles(), ['rules', 'aggregationRule']],
    [R.clusterrolebindings, bootstrapClusterRoleBindings(), ['roleRef', 'subjects']],
  ];
  for (const [ref, objs, fields] of sets) {
    for (const want of objs) {
      const name = want.metadata!.name!;
      let have: KubeObject | undefined;
      try {
        have = await client.get(ref, name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!have) {
        await client.create(ref, want);
        created++;
        continue;
      }
      if (have.metadata?.annotations?.['rbac.authorization.kubernetes.io/autoupdate'] !== 'true') continue;
      const drift = fields.some((f) => f !== 'rules' || !want.aggregationRule ? JSON.stringify(have![f] ?? null) !== JSON.stringify(want[f] ?? null) : false);
      if (drift) {
        const next: KubeObject = { ...have };
        for (const f of fields) next[f] = want[f];
        await client.update(ref, next);
        updated++;
      }
    }
  }
  return { created, updated };
}
