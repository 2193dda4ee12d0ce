import type { ResourceRef } from '../client/types.js';

/** One served resource: what discovery, RBAC, the REST handlers and the clients know about it. */
export interface ResourceInfo extends ResourceRef {
  kind: string;
  listKind: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** subresources served: status, scale, log, exec, attach, portforward, binding, eviction, proxy */
  subresources: string[];
  /** status is a subresource: main-resource writes keep the stored status, status writes keep spec */
  hasStatus: boolean;
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function r(
  group: string,
  version: string,
  kind: string,
  resource: string,
  namespaced: boolean,
  opts: { short?: string[]; cats?: string[]; sub?: string[]; status?: boolean; verbs?: string[] } = {},
): ResourceInfo {
  const sub = opts.sub ?? [];
  const hasStatus = opts.status ?? false;
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    resource,
    namespaced,
    singular: kind.toLowerCase(),
    shortNames: opts.short ?? [],
    categories: opts.cats ?? [],
    verbs: opts.verbs ?? RW,
    subresources: hasStatus ? ['status', ...sub] : sub,
    hasStatus,
  };
}

const ALL = ['all'];

/** Every kind skiff serves, in discovery order (kubectl `get all` follows it). */
export const RESOURCES: readonly ResourceInfo[] = [
  r('', 'v1', 'Pod', 'pods', true, { short: ['po'], cats: ALL, status: true, sub: ['log', 'exec', 'attach', 'portforward', 'binding', 'eviction', 'proxy'] }),
  r('', 'v1', 'Service', 'services', true, { short: ['svc'], cats: ALL, status: true, sub: ['proxy'] }),
  r('', 'v1', 'Namespace', 'namespaces', false, { short: ['ns'], status: true, sub: ['finalize'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }),
  r('', 'v1', 'Endpoints', 'endpoints', true, { short: ['ep'] }),
  r('', 'v1', 'Node', 'nodes', false, { short: ['no'], status: true, sub: ['proxy'] }),
  r('', 'v1', 'ConfigMap', 'configmaps', true, { short: ['cm'] }),
  r('', 'v1', 'Secret', 'secrets', true),
  r('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { short: ['sa'], sub: ['token'] }),
  r('', 'v1', 'PersistentVolume', 'persistentvolumes', false, { short: ['pv'], status: true }),
  r('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, { short: ['pvc'], status: true }),
  r('', 'v1', 'Event', 'events', true, { short: ['ev'] }),
  r('apps', 'v1', 'Deployment', 'deployments', true, { short: ['deploy'], cats: ALL, status: true, sub: ['scale'] }),
  r('apps', 'v1', 'ReplicaSet', 'replicasets', true, { short: ['rs'], cats: ALL, status: true, sub: ['scale'] }),
  r('apps', 'v1', 'StatefulSet', 'statefulsets', true, { short: ['sts'], cats: ALL, status: true, sub: ['scale'] }),
  r('apps', 'v1', 'DaemonSet', 'daemonsets', true, { short: ['ds'], cats: ALL, status: true }),
  r('apps', 'v1', 'ControllerRevision', 'controllerrevisions', true),
  r('batch', 'v1', 'Job', 'jobs', true, { cats: ALL, status: true }),
  r('batch', 'v1', 'CronJob', 'cronjobs', true, { short: ['cj'], cats: ALL, status: true }),
  r('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, { short: ['hpa'], cats: ALL, status: true }),
  r('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, { short: ['ing'], status: true }),
  r('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false),
  r('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, { short: ['netpol'] }),
  r('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  r('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  r('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  r('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  r('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  r('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, { short: ['pdb'], status: true }),
  r('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, { short: ['sc'] }),
  r('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
];

export function apiVersionOf(ref: { group: string; version: string }): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

const byResource = new Map(RESOURCES.map((x) => [`${x.group}/${x.resource}`, x]));
const byKind = new Map(RESOURCES.map((x) => [`${apiVersionOf(x)}/${x.kind}`, x]));

export function findResource(group: string, resource: string): ResourceInfo | undefined {
  return byResource.get(`${group}/${resource}`);
}

export function findKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return byKind.get(`${apiVersion}/${kind}`);
}

function must(group: string, resource: string): ResourceInfo {
  const info = findResource(group, resource);
  if (!info) throw new Error(`unknown resource ${group}/${resource}`);
  return info;
}

/** Well-known refs for clients and informers: `R.pods`, `R.endpointslices`, ... */
export const R = {
  pods: must('', 'pods'),
  services: must('', 'services'),
  namespaces: must('', 'namespaces'),
  endpoints: must('', 'endpoints'),
  nodes: must('', 'nodes'),
  configmaps: must('', 'configmaps'),
  secrets: must('', 'secrets'),
  serviceaccounts: must('', 'serviceaccounts'),
  persistentvolumes: must('', 'persistentvolumes'),
  persistentvolumeclaims: must('', 'persistentvolumeclaims'),
  events: must('', 'events'),
  deployments: must('apps', 'deployments'),
  replicasets: must('apps', 'replicasets'),
  statefulsets: must('apps', 'statefulsets'),
  daemonsets: must('apps', 'daemonsets'),
  controllerrevisions: must('apps', 'controllerrevisions'),
  jobs: must('batch', 'jobs'),
  cronjobs: must('batch', 'cronjobs'),
  horizontalpodautoscalers: must('autoscaling', 'horizontalpodautoscalers'),
  ingresses: must('networking.k8s.io', 'ingresses'),
  ingressclasses: must('networking.k8s.io', 'ingressclasses'),
  networkpolicies: must('networking.k8s.io', 'networkpolicies'),
  endpointslices: must('discovery.k8s.io', 'endpointslices'),
  roles: must('rbac.authorization.k8s.io', 'roles'),
  clusterroles: must('rbac.authorization.k8s.io', 'clusterroles'),
  rolebindings: must('rbac.authorization.k8s.io', 'rolebindings'),
  clusterrolebindings: must('rbac.authorization.k8s.io', 'clusterrolebindings'),
  poddisruptionbudgets: must('policy', 'poddisruptionbudgets'),
  storageclasses: must('storage.k8s.io', 'storageclasses'),
  leases: must('coordination.k8s.io', 'leases'),
} as const;
