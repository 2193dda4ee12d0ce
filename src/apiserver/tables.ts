import type { KubeObject } from '../api/object.js';
import type { ResourceInfo } from '../api/registry.js';
import { selectorToString } from '../api/labels.js';

type Obj = Record<string, unknown>;
type Col = { name: string; type?: string; priority?: number; format?: string; cell: (o: Obj) => unknown };

const g = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Obj)[k] : undefined), o);
const str = (v: unknown, dflt = '<none>'): string => (v === undefined || v === null || v === '' ? dflt : String(v));

/** Human age as kubectl prints it: 45s, 5m, 3h, 2d, 1y. */
export function age(ts: unknown, now = Date.now()): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(String(ts))) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 365 * 2 ? `${d}d` : `${Math.floor(d / 365)}y`;
}

const NAME: Col = { name: 'Name', format: 'name', cell: (o) => g(o, 'metadata.name') };
const AGE: Col = { name: 'Age', cell: (o) => age(g(o, 'metadata.creationTimestamp')) };

function podStatus(o: Obj): string {
  if (g(o, 'metadata.deletionTimestamp')) return 'Terminating';
  const statuses = [...((g(o, 'status.initContainerStatuses') as Obj[]) ?? [])];
  for (const [i, cs] of statuses.entries()) {
    const st = cs.state as Obj | undefined;
    if (st?.terminated && (st.terminated as Obj).exitCode !== 0) return `Init:${(st.terminated as Obj).reason ?? 'Error'}`;
    if (st?.waiting && (st.waiting as Obj).reason && (st.waiting as Obj).reason !== 'PodInitializing') return `Init:${(st.waiting as Obj).reason}`;
    if (!st?.terminated) return `Init:${i}/${statuses.length}`;
  }
  let reason = str(g(o, 'status.reason'), '') || str(g(o, 'status.phase'), 'Pending');
  for (const cs of ((g(o, 'status.containerStatuses') as Obj[]) ?? []).slice().reverse()) {
    const st = cs.state as Obj | undefined;
    if (st?.waiting && (st.waiting as Obj).reason) reason = String((st.waiting as Obj).reason);
    else if (st?.terminated) reason = String((st.terminated as Obj).reason ?? ((st.terminated as Obj).signal ? `Signal:${(st.terminated as Obj).signal}` : `ExitCode:${(st.terminated as Obj).exitCode}`));
  }
  return reason;
}

function readyCount(o: Obj): string {
  const cs = (g(o, 'status.containerStatuses') as Obj[]) ?? [];
  const total = ((g(o, 'spec.containers') as unknown[]) ?? []).length;
  return `${cs.filter((c) => c.ready).length}/${total}`;
}

function restarts(o: Obj): string {
  const cs = (g(o, 'status.containerStatuses') as Obj[]) ?? [];
  return String(cs.reduce((a, c) => a + Number(c.restartCount ?? 0), 0));
}

function svcPorts(o: Obj): string {
  const ports = (g(o, 'spec.ports') as Obj[]) ?? [];
  if (!ports.length) return '<none>';
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
}

function externalIP(o: Obj): string {
  const type = g(o, 'spec.type');
  const ext = (g(o, 'spec.externalIPs') as string[]) ?? [];
  const lb = ((g(o, 'status.loadBalancer.ingress') as Obj[]) ?? []).map((i) => String(i.ip ?? i.hostname));
  if (type === 'ExternalName') return str(g(o, 'spec.externalName'));
  if (type === 'LoadBalancer') return [...lb, ...ext].join(',') || '<pending>';
  return ext.join(',') || '<none>';
}

function containersCols(path: string): Col[] {
  return [
    { name: 'Containers', priority: 1, cell: (o) => ((g(o, `${path}.containers`) as Obj[]) ?? []).map((c) => c.name).join(',') },
    { name: 'Images', priority: 1, cell: (o) => ((g(o, `${path}.containers`) as Obj[]) ?? []).map((c) => c.image).join(',') },
  ];
}

function nodeRoles(o: Obj): string {
  const roles = Object.keys((g(o, 'metadata.labels') as Obj) ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length));
  return roles.join(',') || '<none>';
}

function nodeStatus(o: Obj): string {
  const ready = ((g(o, 'status.conditions') as Obj[]) ?? []).find((c) => c.type === 'Ready');
  let s = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
  if (g(o, 'spec.unschedulable')) s += ',SchedulingDisabled';
  return s;
}

function condStatus(o: Obj, type: string): string {
  return str(((g(o, 'status.conditions') as Obj[]) ?? []).find((c) => c.type === type)?.status, 'Unknown');
}

const COLUMNS: Record<string, Col[]> = {
  Pod: [
    NAME,
    { name: 'Ready', cell: readyCount },
    { name: 'Status', cell: podStatus },
    { name: 'Restarts', cell: restarts },
    AGE,
    { name: 'IP', priority: 1, cell: (o) => str(g(o, 'status.podIP')) },
    { name: 'Node', priority: 1, cell: (o) => str(g(o, 'spec.nodeName')) },
    { name: 'Nominated Node', priority: 1, cell: (o) => str(g(o, 'status.nominatedNodeName')) },
    { name: 'Readiness Gates', priority: 1, cell: () => '<none>' },
  ],
  Service: [
    NAME,
    { name: 'Type', cell: (o) => str(g(o, 'spec.type'), 'ClusterIP') },
    { name: 'Cluster-IP', cell: (o) => str(g(o, 'spec.clusterIP')) },
    { name: 'External-IP', cell: externalIP },
    { name: 'Port(s)', cell: svcPorts },
    AGE,
    { name: 'Selector', priority: 1, cell: (o) => Object.entries((g(o, 'spec.selector') as Obj) ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
  ],
  Deployment: [
    NAME,
    { name: 'Ready', cell: (o) => `${g(o, 'status.readyReplicas') ?? 0}/${g(o, 'spec.replicas') ?? 0}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => g(o, 'status.updatedReplicas') ?? 0 },
    { name: 'Available', type: 'integer', cell: (o) => g(o, 'status.availableReplicas') ?? 0 },
    AGE,
    ...containersCols('spec.template.spec'),
    { name: 'Selector', priority: 1, cell: (o) => selectorToString(g(o, 'spec.selector') as never) || '<none>' },
  ],
  ReplicaSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (o) => g(o, 'spec.replicas') ?? 0 },
    { name: 'Current', type: 'integer', cell: (o) => g(o, 'status.replicas') ?? 0 },
    { name: 'Ready', type: 'integer', cell: (o) => g(o, 'status.readyReplicas') ?? 0 },
    AGE,
    ...containersCols('spec.template.spec'),
    { name: 'Selector', priority: 1, cell: (o) => selectorToString(g(o, 'spec.selector') as never) || '<none>' },
  ],
  StatefulSet: [NAME, { name: 'Ready', cell: (o) => `${g(o, 'status.readyReplicas') ?? 0}/${g(o, 'spec.replicas') ?? 0}` }, AGE, ...containersCols('spec.template.spec')],
  DaemonSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (o) => g(o, 'status.desiredNumberScheduled') ?? 0 },
    { name: 'Current', type: 'integer', cell: (o) => g(o, 'status.currentNumberScheduled') ?? 0 },
    { name: 'Ready', type: 'integer', cell: (o) => g(o, 'status.numberReady') ?? 0 },
    { name: 'Up-to-date', type: 'integer', cell: (o) => g(o, 'status.updatedNumberScheduled') ?? 0 },
    { name: 'Available', type: 'integer', cell: (o) => g(o, 'status.numberAvailable') ?? 0 },
    { name: 'Node Selector', cell: (o) => Object.entries((g(o, 'spec.template.spec.nodeSelector') as Obj) ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
    AGE,
  ],
  Job: [
    NAME,
    { name: 'Status', cell: (o) => (condStatus(o, 'Complete') === 'True' ? 'Complete' : condStatus(o, 'Failed') === 'True' ? 'Failed' : g(o, 'spec.suspend') ? 'Suspended' : 'Running') },
    { name: 'Completions', cell: (o) => `${g(o, 'status.succeeded') ?? 0}/${g(o, 'spec.completions') ?? 1}` },
    { name: 'Duration', cell: (o) => (g(o, 'status.startTime') ? age(g(o, 'status.startTime'), g(o, 'status.completionTime') ? Date.parse(String(g(o, 'status.completionTime'))) : Date.now()) : '') },
    AGE,
  ],
  CronJob: [
    NAME,
    { name: 'Schedule', cell: (o) => g(o, 'spec.schedule') },
    { name: 'Timezone', cell: (o) => str(g(o, 'spec.timeZone')) },
    { name: 'Suspend', cell: (o) => (g(o, 'spec.suspend') ? 'True' : 'False') },
    { name: 'Active', type: 'integer', cell: (o) => ((g(o, 'status.active') as unknown[]) ?? []).length },
    { name: 'Last Schedule', cell: (o) => (g(o, 'status.lastScheduleTime') ? age(g(o, 'status.lastScheduleTime')) : '<none>') },
    AGE,
  ],
  Namespace: [NAME, { name: 'Status', cell: (o) => str(g(o, 'status.phase'), 'Active') }, AGE],
  Node: [
    NAME,
    { name: 'Status', cell: nodeStatus },
    { name: 'Roles', cell: nodeRoles },
    AGE,
    { name: 'Version', cell: (o) => str(g(o, 'status.nodeInfo.kubeletVersion'), '') },
    { name: 'Internal-IP', priority: 1, cell: (o) => str(((g(o, 'status.addresses') as Obj[]) ?? []).find((a) => a.type === 'InternalIP')?.address) },
    { name: 'External-IP', priority: 1, cell: (o) => str(((g(o, 'status.addresses') as Obj[]) ?? []).find((a) => a.type === 'ExternalIP')?.address) },
    { name: 'OS-Image', priority: 1, cell: (o) => str(g(o, 'status.nodeInfo.osImage'), '<unknown>') },
    { name: 'Kernel-Version', priority: 1, cell: (o) => str(g(o, 'status.nodeInfo.kernelVersion'), '<unknown>') },
    { name: 'Container-Runtime', priority: 1, cell: (o) => str(g(o, 'status.nodeInfo.containerRuntimeVersion'), '<unknown>') },
  ],
  Secret: [NAME, { name: 'Type', cell: (o) => g(o, 'type') ?? 'Opaque' }, { name: 'Data', type: 'integer', cell: (o) => Object.keys((g(o, 'data') as Obj) ?? {}).length }, AGE],
  ConfigMap: [NAME, { name: 'Data', type: 'integer', cell: (o) => Object.keys((g(o, 'data') as Obj) ?? {}).length + Object.keys((g(o, 'binaryData') as Obj) ?? {}).length }, AGE],
  ServiceAccount: [NAME, { name: 'Secrets', type: 'integer', cell: (o) => ((g(o, 'secrets') as unknown[]) ?? []).length }, AGE],
  Endpoints: [
    NAME,
    {
      name: 'Endpoints',
      cell: (o) => {
        const out: string[] = [];
        for (const s of (g(o, 'subsets') as Obj[]) ?? []) for (const a of (s.addresses as Obj[]) ?? []) for (const p of (s.ports as Obj[]) ?? [{ port: '' }]) out.push(`${a.ip}${p.port ? `:${p.port}` : ''}`);
        return out.length ? (out.length > 3 ? `${out.slice(0, 3).join(',')} + ${out.length - 3} more...` : out.join(',')) : '<none>';
      },
    },
    AGE,
  ],
  EndpointSlice: [
    NAME,
    { name: 'AddressType', cell: (o) => g(o, 'addressType') },
    { name: 'Ports', cell: (o) => ((g(o, 'ports') as Obj[]) ?? []).map((p) => p.port).join(',') || '<unset>' },
    { name: 'Endpoints', cell: (o) => ((g(o, 'endpoints') as Obj[]) ?? []).flatMap((e) => (e.addresses as string[]) ?? []).join(',') || '<unset>' },
    AGE,
  ],
  Ingress: [
    NAME,
    { name: 'Class', cell: (o) => str(g(o, 'spec.ingressClassName')) },
    { name: 'Hosts', cell: (o) => ((g(o, 'spec.rules') as Obj[]) ?? []).map((r) => r.host ?? '*').join(',') || '*' },
    { name: 'Address', cell: (o) => ((g(o, 'status.loadBalancer.ingress') as Obj[]) ?? []).map((i) => i.ip ?? i.hostname).join(',') },
    { name: 'Ports', cell: (o) => (((g(o, 'spec.tls') as unknown[]) ?? []).length ? '80, 443' : '80') },
    AGE,
  ],
  IngressClass: [NAME, { name: 'Controller', cell: (o) => g(o, 'spec.controller') }, { name: 'Parameters', cell: () => '<none>' }, AGE],
  NetworkPolicy: [NAME, { name: 'Pod-Selector', cell: (o) => selectorToString(g(o, 'spec.podSelector') as never) || '<none>' }, AGE],
  PersistentVolume: [
    NAME,
    { name: 'Capacity', cell: (o) => g(o, 'spec.capacity.storage') },
    { name: 'Access Modes', cell: (o) => accessModes(g(o, 'spec.accessModes')) },
    { name: 'Reclaim Policy', cell: (o) => g(o, 'spec.persistentVolumeReclaimPolicy') },
    { name: 'Status', cell: (o) => str(g(o, 'status.phase'), '') },
    { name: 'Claim', cell: (o) => (g(o, 'spec.claimRef.name') ? `${g(o, 'spec.claimRef.namespace')}/${g(o, 'spec.claimRef.name')}` : '') },
    { name: 'StorageClass', cell: (o) => str(g(o, 'spec.storageClassName'), '') },
    { name: 'Reason', cell: (o) => str(g(o, 'status.reason'), '') },
    AGE,
  ],
  PersistentVolumeClaim: [
    NAME,
    { name: 'Status', cell: (o) => str(g(o, 'status.phase'), 'Pending') },
    { name: 'Volume', cell: (o) => str(g(o, 'spec.volumeName'), '') },
    { name: 'Capacity', cell: (o) => str(g(o, 'status.capacity.storage'), '') },
    { name: 'Access Modes', cell: (o) => accessModes(g(o, 'status.accessModes')) },
    { name: 'StorageClass', cell: (o) => str(g(o, 'spec.storageClassName'), '') },
    AGE,
  ],
  StorageClass: [
    { ...NAME, cell: (o) => `${g(o, 'metadata.name')}${g(o, 'metadata.annotations')?.toString() && (g(o, 'metadata.annotations') as Obj)['storageclass.kubernetes.io/is-default-class'] === 'true' ? ' (default)' : ''}` },
    { name: 'Provisioner', cell: (o) => g(o, 'provisioner') },
    { name: 'ReclaimPolicy', cell: (o) => g(o, 'reclaimPolicy') ?? 'Delete' },
    { name: 'VolumeBindingMode', cell: (o) => g(o, 'volumeBindingMode') ?? 'Immediate' },
    { name: 'AllowVolumeExpansion', cell: (o) => String(g(o, 'allowVolumeExpansion') ?? false) },
    AGE,
  ],
  HorizontalPodAutoscaler: [
    NAME,
    { name: 'Reference', cell: (o) => `${g(o, 'spec.scaleTargetRef.kind')}/${g(o, 'spec.scaleTargetRef.name')}` },
    {
      name: 'Targets',
      cell: (o) => {
        const cur = ((g(o, 'status.currentMetrics') as Obj[]) ?? [])[0];
        const want = ((g(o, 'spec.metrics') as Obj[]) ?? [])[0];
        const c = g(cur, 'resource.current.averageUtilization');
        const w = g(want, 'resource.target.averageUtilization');
        return `cpu: ${c === undefined ? '<unknown>' : `${c}%`}/${w ?? '?'}%`;
      },
    },
    { name: 'MinPods', type: 'integer', cell: (o) => g(o, 'spec.minReplicas') ?? 1 },
    { name: 'MaxPods', type: 'integer', cell: (o) => g(o, 'spec.maxReplicas') },
    { name: 'Replicas', type: 'integer', cell: (o) => g(o, 'status.currentReplicas') ?? 0 },
    AGE,
  ],
  PodDisruptionBudget: [
    NAME,
    { name: 'Min Available', cell: (o) => str(g(o, 'spec.minAvailable'), 'N/A') },
    { name: 'Max Unavailable', cell: (o) => str(g(o, 'spec.maxUnavailable'), 'N/A') },
    { name: 'Allowed Disruptions', type: 'integer', cell: (o) => g(o, 'status.disruptionsAllowed') ?? 0 },
    AGE,
  ],
  Event: [
    { name: 'Last Seen', cell: (o) => age(g(o, 'lastTimestamp') ?? g(o, 'eventTime') ?? g(o, 'metadata.creationTimestamp')) },
    { name: 'Type', cell: (o) => g(o, 'type') },
    { name: 'Reason', cell: (o) => g(o, 'reason') },
    { name: 'Object', cell: (o) => `${String(g(o, 'involvedObject.kind') ?? '').toLowerCase()}/${g(o, 'involvedObject.name')}` },
    { name: 'Message', cell: (o) => g(o, 'message') },
  ],
  Lease: [NAME, { name: 'Holder', cell: (o) => str(g(o, 'spec.holderIdentity'), '') }, AGE],
  Role: [NAME, { name: 'Created At', type: 'date', cell: (o) => g(o, 'metadata.creationTimestamp') }],
  ClusterRole: [NAME, { name: 'Created At', type: 'date', cell: (o) => g(o, 'metadata.creationTimestamp') }],
  RoleBinding: [NAME, { name: 'Role', cell: (o) => `${g(o, 'roleRef.kind')}/${g(o, 'roleRef.name')}` }, AGE],
  ClusterRoleBinding: [NAME, { name: 'Role', cell: (o) => `${g(o, 'roleRef.kind')}/${g(o, 'roleRef.name')}` }, AGE],
  ControllerRevision: [NAME, { name: 'Controller', cell: (o) => { const r = ((g(o, 'metadata.ownerReferences') as Obj[]) ?? []).find((x) => x.controller); return r ? `${String(r.kind).toLowerCase()}.apps/${r.name}` : '<none>'; } }, { name: 'Revision', type: 'integer', cell: (o) => g(o, 'revision') }, AGE],
};

function accessModes(v: unknown): string {
  const short: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };
  return ((v as string[]) ?? []).map((m) => short[m] ?? m).join(',');
}

const DEFAULT: Col[] = [NAME, { name: 'Created At', type: 'date', cell: (o) => g(o, 'metadata.creationTimestamp') }];

function partial(o: KubeObject): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

/** A meta.k8s.io/v1 Table for objects of one kind. */
export function toTable(info: ResourceInfo, items: KubeObject[], opts: { resourceVersion?: string; continue?: string; includeObject?: string; withColumns?: boolean }): Record<string, unknown> {
  const cols = COLUMNS[info.kind] ?? DEFAULT;
  const include = opts.includeObject ?? 'Metadata';
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: opts.resourceVersion, ...(opts.continue ? { continue: opts.continue } : {}) },
    ...(opts.withColumns === false
      ? {}
      : {
          columnDefinitions: cols.map((c) => ({
            name: c.name,
            type: c.type ?? 'string',
            format: c.format ?? '',
            description: c.name === 'Name' ? 'Name must be unique within a namespace.' : c.name,
            priority: c.priority ?? 0,
          })),
        }),
    rows: items.map((o) => ({
      cells: cols.map((c) => {
        const v = c.cell(o as Obj);
        return v === undefined || v === null ? '' : v;
      }),
      object: include === 'None' ? undefined : include === 'Object' ? o : partial(o),
    })),
  };
}
