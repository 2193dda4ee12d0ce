import t from 'tap';
import { decodeKubeProtobuf, MAGIC, protobufTable } from './decode.js';
import { formatDuration } from './convert.js';
import { messageNameFor, splitApiVersion } from './names.js';
import { SkiffError } from '../../util/errors.js';

/** Encodes `obj` as the typed message of apiVersion/kind inside a `k8s\0` runtime.Unknown envelope. */
function encode(apiVersion: string, kind: string, obj: Record<string, unknown>, envelope: Record<string, unknown> = {}): Buffer {
  const { root } = protobufTable();
  const { group, version } = splitApiVersion(apiVersion);
  const type = root.lookupType(messageNameFor(group, version, kind));
  const raw = type.encode(type.fromObject(obj)).finish();
  const unknown = root.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  const env = unknown.encode(unknown.fromObject({ typeMeta: { apiVersion, kind }, raw, contentEncoding: '', contentType: '', ...envelope })).finish();
  return Buffer.concat([MAGIC, env]);
}

/** What Go's generated marshaller always writes for a non-pointer ObjectMeta: every scalar, zero or not. */
const goMeta = (name: string, extra: Record<string, unknown> = {}) => ({
  name, generateName: '', namespace: '', selfLink: '', uid: '', resourceVersion: '', generation: 0, creationTimestamp: {}, ...extra,
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SkiffError ? err.code : `not a SkiffError: ${String(err)}`;
  }
  return undefined;
}

t.test('Deployment: pointer zeros kept, non-pointer zeros dropped, IntOrString, Time', async (t) => {
  const body = encode('apps/v1', 'Deployment', {
    metadata: goMeta('web', { labels: { app: 'web' }, deletionTimestamp: { seconds: 1714557600, nanos: 0 }, deletionGracePeriodSeconds: 0 }),
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: goMeta('', { labels: { app: 'web' } }), spec: { containers: [{ name: 'c', image: 'nginx', stdin: false, tty: false, workingDir: '', resources: {} }], terminationGracePeriodSeconds: 0, hostNetwork: false } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: { type: 1, intVal: 0, strVal: '25%' }, maxUnavailable: { type: 0, intVal: 0, strVal: '' } } },
      minReadySeconds: 0,
      paused: false,
    },
    status: { observedGeneration: 0, replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0, unavailableReplicas: 0 },
  });
  t.strictSame(decodeKubeProtobuf(body), {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', deletionTimestamp: '2024-05-01T10:00:00Z', deletionGracePeriodSeconds: 0, labels: { app: 'web' } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx', resources: {} }], terminationGracePeriodSeconds: 0 } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
    },
    status: {},
  });
});

t.test('Service: IntOrString ports, non-pointer zero targetPort dropped, pointer strings kept', async (t) => {
  const body = encode('v1', 'Service', {
    metadata: goMeta('api', { namespace: 'prod' }),
    spec: {
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: { type: 0, intVal: 8080, strVal: '' }, nodePort: 0 },
        { name: 'grpc', protocol: 'TCP', port: 9000, targetPort: { type: 1, intVal: 0, strVal: 'grpc' }, nodePort: 30001, appProtocol: '' },
        { name: 'x', protocol: 'UDP', port: 53, targetPort: { type: 0, intVal: 0, strVal: '' } },
      ],
      selector: { app: 'api' },
      clusterIP: '',
      type: 'ClusterIP',
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Local',
      publishNotReadyAddresses: false,
    },
    status: { loadBalancer: {} },
  });
  t.strictSame(decodeKubeProtobuf(body), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'api', namespace: 'prod' },
    spec: {
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
        { name: 'grpc', protocol: 'TCP', port: 9000, targetPort: 'grpc', nodePort: 30001, appProtocol: '' },
        { name: 'x', protocol: 'UDP', port: 53 },
      ],
      selector: { app: 'api' },
      type: 'ClusterIP',
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Local',
    },
    status: { loadBalancer: {} },
  });
});

t.test('Pod: Quantity maps, managedFields (FieldsV1 + Time), pointer bool false, int64', async (t) => {
  const fields = { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } } };
  const body = encode('v1', 'Pod', {
    metadata: goMeta('p', {
      managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: { seconds: 1700000000 }, fieldsType: 'FieldsV1', fieldsV1: { Raw: Buffer.from(JSON.stringify(fields)) }, subresource: '' }],
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true, blockOwnerDeletion: false }],
    }),
    spec: {
      containers: [{ name: 'c', image: 'busybox', resources: { limits: { cpu: { string: '500m' }, memory: { string: '64Mi' } }, requests: { cpu: { string: '0' } } }, ports: [{ name: '', containerPort: 80, protocol: 'TCP', hostPort: 0, hostIP: '' }] }],
      automountServiceAccountToken: false,
      activeDeadlineSeconds: 2 ** 40,
      nodeSelector: { disk: 'ssd' },
    },
  });
  t.strictSame(decodeKubeProtobuf(body), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'p',
      ownerReferences: [{ kind: 'ReplicaSet', name: 'rs', uid: 'u1', apiVersion: 'apps/v1', controller: true, blockOwnerDeletion: false }],
      managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: '2023-11-14T22:13:20Z', fieldsType: 'FieldsV1', fieldsV1: fields }],
    },
    spec: {
      containers: [{ name: 'c', image: 'busybox', ports: [{ containerPort: 80, protocol: 'TCP' }], resources: { limits: { cpu: '500m', memory: '64Mi' }, requests: { cpu: '0' } } }],
      activeDeadlineSeconds: 2 ** 40,
      nodeSelector: { disk: 'ssd' },
      automountServiceAccountToken: false,
    },
  });
});

t.test('inline embedded structs (volume sources, probe handlers, key selectors) and JSON renames', async (t) => {
  const body = encode('v1', 'Pod', {
    metadata: goMeta('p'),
    spec: {
      volumes: [
        { name: 'cfg', volumeSource: { configMap: { localObjectReference: { name: 'settings' }, defaultMode: 420, optional: false } } },
        { name: 'tmp', volumeSource: { emptyDir: { medium: '' } } },
      ],
      containers: [{
        name: 'c',
        image: 'busybox',
        env: [{ name: 'PW', value: '', valueFrom: { secretKeyRef: { localObjectReference: { name: 'creds' }, key: 'password' } } }],
        livenessProbe: { handler: { httpGet: { path: '/healthz', port: { type: 0, intVal: 8080 }, host: '', scheme: 'HTTP' } }, initialDelaySeconds: 0, periodSeconds: 10 },
      }],
    },
  });
  t.strictSame(decodeKubeProtobuf(body).spec, {
    volumes: [
      { name: 'cfg', configMap: { name: 'settings', defaultMode: 420, optional: false } },
      { name: 'tmp', emptyDir: {} },
    ],
    containers: [{
      name: 'c',
      image: 'busybox',
      env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }],
      livenessProbe: { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, periodSeconds: 10 },
    }],
  });
  const pv = decodeKubeProtobuf(encode('v1', 'PersistentVolume', { metadata: goMeta('pv'), spec: { capacity: { storage: { string: '1Gi' } }, persistentVolumeSource: { hostPath: { path: '/data', type: '' } }, storageClassName: '' } }));
  t.strictSame(pv.spec, { capacity: { storage: '1Gi' }, hostPath: { path: '/data', type: '' } }, 'hostPath.type is a *string; storageClassName a plain string');
  const ing = decodeKubeProtobuf(encode('networking.k8s.io/v1', 'Ingress', { metadata: goMeta('i'), spec: { rules: [{ host: 'a.example', ingressRuleValue: { http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: '', number: 80 } } } }] } } }] } }));
  t.strictSame(ing.spec, { rules: [{ host: 'a.example', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] });
});

t.test('Secret: bytes map values become base64, empty values and immutable:false are kept', async (t) => {
  const body = encode('v1', 'Secret', { metadata: goMeta('s'), data: { user: Buffer.from('admin'), empty: Buffer.alloc(0), bin: Buffer.from([0, 255, 1]) }, type: 'Opaque', immutable: false });
  t.strictSame(decodeKubeProtobuf(body), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's' },
    data: { user: 'YWRtaW4=', empty: '', bin: 'AP8B' },
    type: 'Opaque',
    immutable: false,
  });
});

t.test('Event and Lease: MicroTime keeps microseconds', async (t) => {
  const ev = decodeKubeProtobuf(encode('v1', 'Event', { metadata: goMeta('e'), involvedObject: { kind: 'Pod', name: 'p' }, reason: 'Pulled', eventTime: { seconds: 1714557600, nanos: 123456789 }, count: 0 }));
  t.match(ev, { eventTime: '2024-05-01T10:00:00.123456Z', reason: 'Pulled' });
  t.notOk('count' in ev, 'count 0 is a non-pointer zero');
  const lease = decodeKubeProtobuf(encode('coordination.k8s.io/v1', 'Lease', { metadata: goMeta('l'), spec: { holderIdentity: '', leaseDurationSeconds: 15, renewTime: { seconds: 1714557600, nanos: 5000 } } }));
  t.strictSame(lease.spec, { holderIdentity: '', leaseDurationSeconds: 15, renewTime: '2024-05-01T10:00:00.000005Z' }, 'holderIdentity is a *string: "" kept');
});

t.test('DeleteOptions under any apiVersion; gracePeriodSeconds 0 kept', async (t) => {
  const body = encode('v1', 'DeleteOptions', { gracePeriodSeconds: 0, propagationPolicy: 'Background', dryRun: ['All'], preconditions: { resourceVersion: '42' } });
  t.strictSame(decodeKubeProtobuf(body), { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { resourceVersion: '42' }, propagationPolicy: 'Background', dryRun: ['All'] });
  t.strictSame(decodeKubeProtobuf(encode('apps/v1', 'DeleteOptions', {})), { apiVersion: 'apps/v1', kind: 'DeleteOptions' }, 'helm sends empty options');
});

t.test('RawExtension: embedded JSON and embedded protobuf objects', async (t) => {
  const inner = encode('v1', 'ConfigMap', { metadata: goMeta('inner'), data: { k: 'v' } });
  const viaJson = decodeKubeProtobuf(encode('apps/v1', 'ControllerRevision', { metadata: goMeta('r'), data: { raw: Buffer.from('{"spec":{"template":{}}}') }, revision: 3 }));
  t.strictSame(viaJson, { apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name: 'r' }, data: { spec: { template: {} } }, revision: 3 });
  const viaProto = decodeKubeProtobuf(encode('apps/v1', 'ControllerRevision', { metadata: goMeta('r'), data: { raw: inner }, revision: 1 }));
  t.strictSame(viaProto.data, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'inner' }, data: { k: 'v' } });
});

t.test('review and subresource kinds decode', async (t) => {
  const sar = decodeKubeProtobuf(encode('authorization.k8s.io/v1', 'SelfSubjectAccessReview', { metadata: goMeta(''), spec: { resourceAttributes: { namespace: 'default', verb: 'get', group: '', resource: 'pods', name: '' } }, status: { allowed: false, denied: false, reason: '' } }));
  t.strictSame(sar, { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', metadata: {}, spec: { resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } }, status: {} });
  const scale = decodeKubeProtobuf(encode('autoscaling/v1', 'Scale', { metadata: goMeta('web'), spec: { replicas: 0 }, status: { replicas: 0, selector: '' } }));
  t.strictSame(scale, { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web' }, spec: {}, status: {} }, 'Scale.spec.replicas is a plain int32');
  const tr = decodeKubeProtobuf(encode('authentication.k8s.io/v1', 'TokenRequest', { metadata: goMeta('sa'), spec: { audiences: ['api'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p', uid: 'u' } } }));
  t.strictSame(tr.spec, { audiences: ['api'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p', uid: 'u' } });
  const ev = decodeKubeProtobuf(encode('policy/v1', 'Eviction', { metadata: goMeta('p', { namespace: 'ns' }), deleteOptions: { gracePeriodSeconds: 0 } }));
  t.strictSame(ev, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'p', namespace: 'ns' }, deleteOptions: { gracePeriodSeconds: 0 } });
  const b = decodeKubeProtobuf(encode('v1', 'Binding', { metadata: goMeta('p'), target: { kind: 'Node', name: 'n1', namespace: '' } }));
  t.strictSame(b, { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p' }, target: { kind: 'Node', name: 'n1' } });
});

t.test('envelope: embedded JSON content type', async (t) => {
  const body = encode('v1', 'ConfigMap', {}, { raw: Buffer.from('{"metadata":{"name":"j"},"data":{"a":"b"}}'), contentType: 'application/json' });
  t.strictSame(decodeKubeProtobuf(body), { metadata: { name: 'j' }, data: { a: 'b' }, apiVersion: 'v1', kind: 'ConfigMap' });
});

t.test('errors carry codes', async (t) => {
  t.equal(codeOf(() => decodeKubeProtobuf(Buffer.from('{"kind":"Pod"}'))), 'ERR_PROTOBUF_DECODE', 'no k8s\\0 prefix');
  t.equal(codeOf(() => decodeKubeProtobuf(Buffer.from('k8s'))), 'ERR_PROTOBUF_DECODE', 'short body');
  t.equal(codeOf(() => decodeKubeProtobuf(encode('v1', 'ConfigMap', {}, { typeMeta: { apiVersion: 'v1', kind: 'Gizmo' } }))), 'ERR_PROTOBUF_KIND', 'unknown kind');
  t.equal(codeOf(() => decodeKubeProtobuf(encode('v1', 'ConfigMap', {}, { typeMeta: { apiVersion: 'v1', kind: '' } }))), 'ERR_PROTOBUF_KIND', 'no kind');
  const good = encode('v1', 'ConfigMap', { metadata: goMeta('cm'), data: { a: 'b' } });
  t.equal(codeOf(() => decodeKubeProtobuf(good.subarray(0, good.length - 3))), 'ERR_PROTOBUF_DECODE', 'truncated');
  t.equal(codeOf(() => decodeKubeProtobuf(encode('v1', 'ConfigMap', {}, { contentEncoding: 'gzip' }))), 'ERR_PROTOBUF_DECODE', 'content encoding');
  const badFields = encode('v1', 'ConfigMap', { metadata: goMeta('cm', { managedFields: [{ fieldsV1: { Raw: Buffer.from('{nope') } }] }) });
  t.equal(codeOf(() => decodeKubeProtobuf(badFields)), 'ERR_PROTOBUF_DECODE', 'FieldsV1 that is not JSON');
});

t.test('Go duration strings', async (t) => {
  const cases: Array<[bigint, string]> = [
    [0n, '0s'],
    [1n, '1ns'],
    [1500n, '1.5µs'],
    [250_000_000n, '250ms'],
    [1_500_000_000n, '1.5s'],
    [90_000_000_000n, '1m30s'],
    [3_600_000_000_000n, '1h0m0s'],
    [3_723_500_000_000n, '1h2m3.5s'],
    [-2_000_000_000n, '-2s'],
  ];
  for (const [ns, want] of cases) t.equal(formatDuration(ns), want, want);
});
