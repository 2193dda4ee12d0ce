import type { KubeObject } from './object.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
function obj(parent: Obj, key: string): Obj {
  if (!isObj(parent[key])) parent[key] = {};
  return parent[key] as Obj;
}
function def(o: Obj, key: string, value: unknown): void {
  if (o[key] === undefined || o[key] === null) o[key] = value;
}

function defaultContainer(c: Obj): void {
  def(c, 'terminationMessagePath', '/dev/termination-log');
  def(c, 'terminationMessagePolicy', 'File');
  const image = String(c.image ?? '');
  const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).includes(':') ? image.split(':').pop() : 'latest';
  def(c, 'imagePullPolicy', tag === 'latest' ? 'Always' : 'IfNotPresent');
  def(c, 'resources', {});
  for (const p of (c.ports as Obj[] | undefined) ?? []) def(p, 'protocol', 'TCP');
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const pr = c[probe];
    if (!isObj(pr)) continue;
    def(pr, 'timeoutSeconds', 1);
    def(pr, 'periodSeconds', 10);
    def(pr, 'successThreshold', 1);
    def(pr, 'failureThreshold', 3);
    if (isObj(pr.httpGet)) {
      def(pr.httpGet, 'path', '/');
      def(pr.httpGet, 'scheme', 'HTTP');
    }
  }
}

/** Pod spec defaults (also inside templates). */
export function defaultPodSpec(spec: Obj): void {
  def(spec, 'restartPolicy', 'Always');
  def(spec, 'dnsPolicy', 'ClusterFirst');
  def(spec, 'terminationGracePeriodSeconds', 30);
  def(spec, 'schedulerName', 'default-scheduler');
  def(spec, 'securityContext', {});
  def(spec, 'enableServiceLinks', true);
  for (const c of [...((spec.containers as Obj[]) ?? []), ...((spec.initContainers as Obj[]) ?? [])]) if (isObj(c)) defaultContainer(c);
  for (const v of (spec.volumes as Obj[] | undefined) ?? []) {
    for (const k of ['configMap', 'secret']) if (isObj(v[k])) def(v[k] as Obj, 'defaultMode', 420);
    if (isObj(v.hostPath)) def(v.hostPath as Obj, 'type', '');
  }
  const tolerations = (spec.tolerations as Obj[] | undefined) ?? [];
  spec.tolerations = tolerations;
  if (tolerations.length === 0) delete spec.tolerations;
}

function defaultTemplate(spec: Obj): void {
  const tpl = obj(spec, 'template');
  // `creationTimestamp: null` (kubectl rollout undo sends it) is Go's zero Time: absent.
  if (isObj(tpl.metadata) && tpl.metadata.creationTimestamp === null) delete tpl.metadata.creationTimestamp;
  const tspec = obj(tpl, 'spec');
  defaultPodSpec(tspec);
}

function defaultWorkloadSelector(spec: Obj): void {
  // apps/v1 requires an explicit selector; nothing to default.
  def(spec, 'revisionHistoryLimit', 10);
}

const defaulters: Record<string, (o: Obj) => void> = {
  Pod(o) {
    defaultPodSpec(obj(o, 'spec'));
  },
  Service(o) {
    const spec = obj(o, 'spec');
    def(spec, 'type', 'ClusterIP');
    if (spec.type !== 'ExternalName') {
      def(spec, 'sessionAffinity', 'None');
      def(spec, 'internalTrafficPolicy', 'Cluster');
      def(spec, 'ipFamilies', ['IPv4']);
      def(spec, 'ipFamilyPolicy', 'SingleStack');
    }
    if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') def(spec, 'externalTrafficPolicy', 'Cluster');
    if (spec.type === 'LoadBalancer') def(spec, 'allocateLoadBalancerNodePorts', true);
    if (spec.sessionAffinity === 'ClientIP') def(spec, 'sessionAffinityConfig', { clientIP: { timeoutSeconds: 10800 } });
    for (const p of (spec.ports as Obj[] | undefined) ?? []) {
      def(p, 'protocol', 'TCP');
      if (spec.clusterIP !== 'None') def(p, 'targetPort', p.port);
    }
  },
  Deployment(o) {
    const spec = obj(o, 'spec');
    def(spec, 'replicas', 1);
    const strategy = obj(spec, 'strategy');
    def(strategy, 'type', 'RollingUpdate');
    if (strategy.type === 'RollingUpdate') {
      const ru = obj(strategy, 'rollingUpdate');
      def(ru, 'maxUnavailable', '25%');
      def(ru, 'maxSurge', '25%');
    }
    defaultWorkloadSelector(spec);
    def(spec, 'progressDeadlineSeconds', 600);
    defaultTemplate(spec);
  },
  ReplicaSet(o) {
    const spec = obj(o, 'spec');
    def(spec, 'replicas', 1);
    defaultTemplate(spec);
  },
  StatefulSet(o) {
    const spec = obj(o, 'spec');
    def(spec, 'replicas', 1);
    def(spec, 'podManagementPolicy', 'OrderedReady');
    const us = obj(spec, 'updateStrategy');
    def(us, 'type', 'RollingUpdate');
    if (us.type === 'RollingUpdate') def(obj(us, 'rollingUpdate'), 'partition', 0);
    def(spec, 'revisionHistoryLimit', 10);
    def(spec, 'persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' });
    defaultTemplate(spec);
  },
  DaemonSet(o) {
    const spec = obj(o, 'spec');
    const us = obj(spec, 'updateStrategy');
    def(us, 'type', 'RollingUpdate');
    if (us.type === 'RollingUpdate') {
      const ru = obj(us, 'rollingUpdate');
      def(ru, 'maxUnavailable', 1);
      def(ru, 'maxSurge', 0);
    }
    def(spec, 'revisionHistoryLimit', 10);
    defaultTemplate(spec);
  },
  Job(o) {
    const spec = obj(o, 'spec');
    def(spec, 'parallelism', 1);
    def(spec, 'backoffLimit', 6);
    def(spec, 'completionMode', 'NonIndexed');
    def(spec, 'suspend', false);
    if (spec.completions === undefined && spec.parallelism !== undefined) def(spec, 'completions', spec.completions ?? 1);
    defaultTemplate(spec);
  },
  CronJob(o) {
    const spec = obj(o, 'spec');
    def(spec, 'concurrencyPolicy', 'Allow');
    def(spec, 'suspend', false);
    def(spec, 'successfulJobsHistoryLimit', 3);
    def(spec, 'failedJobsHistoryLimit', 1);
    const jt = obj(obj(spec, 'jobTemplate'), 'spec');
    def(jt, 'backoffLimit', 6);
    defaultTemplate(jt);
  },
  Secret(o) {
    def(o, 'type', 'Opaque');
  },
  Namespace(o) {
    const spec = obj(o, 'spec');
    def(spec, 'finalizers', ['kubernetes']);
  },
  PersistentVolumeClaim(o) {
    const spec = obj(o, 'spec');
    def(spec, 'volumeMode', 'Filesystem');
  },
  PersistentVolume(o) {
    const spec = obj(o, 'spec');
    def(spec, 'persistentVolumeReclaimPolicy', 'Retain');
    def(spec, 'volumeMode', 'Filesystem');
  },
  HorizontalPodAutoscaler(o) {
    const spec = obj(o, 'spec');
    def(spec, 'minReplicas', 1);
    if (!Array.isArray(spec.metrics) || spec.metrics.length === 0) {
      spec.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }];
    }
  },
  NetworkPolicy(o) {
    const spec = obj(o, 'spec');
    def(spec, 'podSelector', {});
    if (!Array.isArray(spec.policyTypes) || spec.policyTypes.length === 0) {
      spec.policyTypes = Array.isArray(spec.egress) && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
    }
    for (const dir of ['ingress', 'egress']) for (const rule of (spec[dir] as Obj[] | undefined) ?? []) for (const p of (rule.ports as Obj[] | undefined) ?? []) def(p, 'protocol', 'TCP');
  },
  Ingress(o) {
    const spec = obj(o, 'spec');
    for (const rule of (spec.rules as Obj[] | undefined) ?? []) {
      if (!isObj(rule.http)) continue;
      for (const p of (rule.http.paths as Obj[] | undefined) ?? []) def(p, 'path', '/');
    }
  },
  EndpointSlice(o) {
    for (const p of (o.ports as Obj[] | undefined) ?? []) def(p, 'protocol', 'TCP');
  },
  StorageClass(o) {
    def(o, 'reclaimPolicy', 'Delete');
    def(o, 'volumeBindingMode', 'Immediate');
  },
  PodDisruptionBudget(o) {
    const spec = obj(o, 'spec');
    if (spec.minAvailable === undefined && spec.maxUnavailable === undefined) spec.minAvailable = 1;
  },
};

/** Applies Kubernetes' defaults for the kind in place (returns the same object). */
export function applyDefaults<T extends KubeObject>(o: T): T {
  const fn = o.kind ? defaulters[o.kind] : undefined;
  if (fn) fn(o as unknown as Obj);
  return o;
}
