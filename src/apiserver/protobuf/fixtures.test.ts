// Real request bodies captured from kubectl v1.33.9 (src/apiserver/protobuf/capture.ts), decoded
// with skiff's table, and the apiserver seam (decodeBody) that hands them to the REST handlers.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeKubeProtobuf, protobufTable } from './decode.js';
import { EXTRA_KINDS, messageNameFor } from './names.js';
import { CAPTURES } from './capture.js';
import { RESOURCES } from '../../api/registry.js';
import { decodeBody } from '../body.js';
import { installProtobufDecoder } from '../protobuf-decode.js';
import { StatusError } from '../errors.js';
import { registry } from '../../util/metrics.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/protobuf');
const fixture = (name: string) => readFileSync(join(DIR, `${name}.bin`));

const EXPECTED: Record<string, unknown> = {
  'create-deployment': {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hello', labels: { app: 'hello' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'hello' } },
      template: { metadata: { labels: { app: 'hello' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27', resources: {} }] } },
      strategy: {},
    },
    status: {},
  },
  'create-secret-generic': { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, data: { empty: '', user: 'YWRtaW4=' } },
  'create-configmap': { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: '1', mode: 'fast' } },
  'create-namespace': { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' }, spec: {}, status: {} },
  'create-job': {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'once' },
    spec: { template: { metadata: {}, spec: { containers: [{ name: 'once', image: 'busybox:1.36', command: ['echo', 'hi'], resources: {} }], restartPolicy: 'Never' } } },
    status: {},
  },
  autoscale: {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'hello' },
    spec: {
      scaleTargetRef: { kind: 'Deployment', name: 'hello', apiVersion: 'apps/v1' },
      minReplicas: 1,
      maxReplicas: 3,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    },
    status: {},
  },
  'auth-can-i': {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    metadata: {},
    spec: { resourceAttributes: { namespace: 'default', verb: 'create', resource: 'pods' } },
    status: {},
  },
  'auth-can-i-list': { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', metadata: {}, spec: { namespace: 'default' }, status: {} },
  'auth-whoami': { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {}, status: { userInfo: {} } },
};

t.test('every captured kubectl body decodes to the JSON kubectl would have sent', async (t) => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4)).sort();
  t.strictSame(files, CAPTURES.map((c) => c.name).sort(), 'one fixture per capture');
  for (const name of files) t.strictSame(decodeKubeProtobuf(fixture(name)), EXPECTED[name], name);
});

t.test('the table covers every served kind and every request-body kind', async (t) => {
  const { messages, root } = protobufTable();
  for (const k of [...RESOURCES, ...EXTRA_KINDS]) {
    const name = messageNameFor(k.group, k.version, k.kind);
    t.ok(messages.has(name) && root.lookupType(name), `${k.group || 'core'}/${k.version} ${k.kind}`);
  }
});

t.test('installed decoder: decodeBody returns the object, refuses garbage with 400', async (t) => {
  installProtobufDecoder();
  const ct = 'application/vnd.kubernetes.protobuf';
  t.strictSame(decodeBody(fixture('create-configmap'), ct), EXPECTED['create-configmap']);
  const bad = (() => {
    try {
      decodeBody(Buffer.from('k8s\0\x0a\xff'), ct);
    } catch (err) {
      return err;
    }
  })();
  t.ok(bad instanceof StatusError, 'StatusError');
  t.match(bad, { code: 400, reason: 'BadRequest', message: /error decoding protobuf body: malformed runtime.Unknown/ });
  const metrics = await registry.getSingleMetricAsString('skiff_apiserver_protobuf_decodes_total');
  t.match(metrics, /skiff_apiserver_protobuf_decodes_total\{kind="ConfigMap",result="ok"\} 1/);
  t.match(metrics, /skiff_apiserver_protobuf_decodes_total\{kind="",result="malformed"\} 1/);
});
