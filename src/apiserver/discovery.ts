import { createHash } from 'node:crypto';
import { apiVersionOf, RESOURCES, type ResourceInfo } from '../api/registry.js';

export const AGGREGATED_CT = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export const VERSION_INFO = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.0-skiff',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-11-24T00:00:00Z',
  goVersion: 'go1.24.2',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** Extra groups that are served by plugins (authorization, authentication, metrics). */
export interface ExtraResource {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

export const EXTRA_RESOURCES: ExtraResource[] = [
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'] },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectrulesreviews', kind: 'SelfSubjectRulesReview', namespaced: false, verbs: ['create'] },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'subjectaccessreviews', kind: 'SubjectAccessReview', namespaced: false, verbs: ['create'] },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'localsubjectaccessreviews', kind: 'LocalSubjectAccessReview', namespaced: true, verbs: ['create'] },
  { group: 'authentication.k8s.io', version: 'v1', resource: 'tokenreviews', kind: 'TokenReview', namespaced: false, verbs: ['create'] },
  { group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', kind: 'SelfSubjectReview', namespaced: false, verbs: ['create'] },
  // served by the kubelet streaming plugin from the kubelets' stats (kubectl top, HPA)
  { group: 'metrics.k8s.io', version: 'v1beta1', resource: 'pods', kind: 'PodMetrics', namespaced: true, verbs: ['get', 'list'] },
  { group: 'metrics.k8s.io', version: 'v1beta1', resource: 'nodes', kind: 'NodeMetrics', namespaced: false, verbs: ['get', 'list'] },
];

function groupsInOrder(): { group: string; versions: string[] }[] {
  const out: { group: string; versions: string[] }[] = [];
  for (const x of [...RESOURCES, ...EXTRA_RESOURCES]) {
    let g = out.find((o) => o.group === x.group);
    if (!g) out.push((g = { group: x.group, versions: [] }));
    if (!g.versions.includes(x.version)) g.versions.push(x.version);
  }
  return out;
}

function subKind(info: ResourceInfo, sub: string): { group: string; version: string; kind: string; verbs: string[] } {
  switch (sub) {
    case 'status':
      return { group: info.group, version: info.version, kind: info.kind, verbs: ['get', 'patch', 'update'] };
    case 'scale':
      return { group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] };
    case 'log':
      return { group: '', version: 'v1', kind: 'Pod', verbs: ['get'] };
    case 'exec':
      return { group: '', version: 'v1', kind: 'PodExecOptions', verbs: ['create', 'get'] };
    case 'attach':
      return { group: '', version: 'v1', kind: 'PodAttachOptions', verbs: ['create', 'get'] };
    case 'portforward':
      return { group: '', version: 'v1', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] };
    case 'binding':
      return { group: '', version: 'v1', kind: 'Binding', verbs: ['create'] };
    case 'eviction':
      return { group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] };
    case 'token':
      return { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] };
    case 'finalize':
      return { group: '', version: 'v1', kind: 'Namespace', verbs: ['update'] };
    default:
      return { group: '', version: 'v1', kind: 'Status', verbs: ['create', 'delete', 'get', 'patch', 'update'] };
  }
}

function aggregatedResource(info: ResourceInfo | ExtraResource): Record<string, unknown> {
  const full = 'listKind' in info ? info : undefined;
  return {
    resource: info.resource,
    responseKind: { group: info.group, version: info.version, kind: info.kind },
    scope: info.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: full?.singular ?? info.kind.toLowerCase(),
    verbs: info.verbs,
    ...(full?.shortNames.length ? { shortNames: full.shortNames } : {}),
    ...(full?.categories.length ? { categories: full.categories } : {}),
    ...(full?.subresources.length
      ? {
          subresources: full.subresources.map((s) => {
            const k = subKind(full, s);
            return { subresource: s, responseKind: { group: k.group, version: k.version, kind: k.kind }, verbs: k.verbs };
          }),
        }
      : {}),
  };
}

function resourcesOf(group: string, version: string): (ResourceInfo | ExtraResource)[] {
  return [...RESOURCES, ...EXTRA_RESOURCES].filter((r) => r.group === group && r.version === version);
}

/** `GET /api` or `GET /apis` in the aggregated v2 form. */
export function aggregatedDiscovery(core: boolean): Record<string, unknown> {
  const groups = groupsInOrder().filter((g) => (core ? g.group === '' : g.group !== ''));
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: 'apidiscovery.k8s.io/v2',
    metadata: {},
    items: groups.map((g) => ({
      metadata: { name: g.group, creationTimestamp: null },
      versions: g.versions.map((v) => ({ version: v, freshness: 'Current', resources: resourcesOf(g.group, v).map(aggregatedResource) })),
    })),
  };
}

export function legacyApiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

export function legacyGroupList(): Record<string, unknown> {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupsInOrder()
      .filter((g) => g.group !== '')
      .map((g) => ({
        name: g.group,
        versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
      })),
  };
}

export function legacyGroup(group: string): Record<string, unknown> | null {
  const g = groupsInOrder().find((x) => x.group === group && group !== '');
  if (!g) return null;
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: g.group,
    versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
  };
}

export function resourceList(group: string, version: string): Record<string, unknown> | null {
  const list = resourcesOf(group, version);
  if (!list.length) return null;
  const resources: Record<string, unknown>[] = [];
  for (const r of list) {
    const full = 'listKind' in r ? r : undefined;
    resources.push({
      name: r.resource,
      singularName: full?.singular ?? r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
      ...(full?.shortNames.length ? { shortNames: full.shortNames } : {}),
      ...(full?.categories.length ? { categories: full.categories } : {}),
      storageVersionHash: createHash('sha256').update(`${group}/${version}/${r.kind}`).digest('base64').slice(0, 11),
    });
    for (const s of full?.subresources ?? []) {
      const k = subKind(full!, s);
      resources.push({ name: `${r.resource}/${s}`, singularName: '', namespaced: r.namespaced, ...(k.group !== group || k.version !== version ? { group: k.group, version: k.version } : {}), kind: k.kind, verbs: k.verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
}
