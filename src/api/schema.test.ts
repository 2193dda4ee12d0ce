import t from 'tap';
import { checkSchema, schemaFor } from './schema.js';
import { schemas } from '../apiserver/openapi.js';
import { RESOURCES, apiVersionOf } from './registry.js';

const deployment = (spec: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', labels: { app: 'web' }, annotations: { a: 'b' }, creationTimestamp: null },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, protocol: 'TCP' }], resources: { limits: { cpu: '500m', memory: 128 } }, env: [{ name: 'A', value: 'b' }] }],
        terminationGracePeriodSeconds: 30,
        ...podSpec,
      },
    },
    ...spec,
  },
});

t.test('every served kind has a schema with its group-version-kind', async (t) => {
  for (const r of RESOURCES) {
    const name = schemaFor(apiVersionOf(r), r.kind);
    t.ok(name, `${r.kind} has a schema`);
    t.same(schemas()[name!]['x-kubernetes-group-version-kind'], [{ group: r.group, kind: r.kind, version: r.version }], `${r.kind} gvk`);
  }
});

t.test('a valid object checks clean', async (t) => {
  t.same(checkSchema('apps/v1', 'Deployment', deployment()), { unknown: [], typeErrors: [] });
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', controller: true }], managedFields: [{ manager: 'm', fieldsV1: { 'f:spec': {} } }] }, spec: { containers: [{ name: 'c', livenessProbe: { httpGet: { port: 'http', path: '/' } } }] }, status: { phase: 'Running', startTime: '2024-01-01T00:00:00Z', podIPs: [{ ip: '10.0.0.1' }] } };
  t.same(checkSchema('v1', 'Pod', pod), { unknown: [], typeErrors: [] });
  const rev = { apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name: 'r' }, revision: 3, data: { anything: [1, 'two', { three: true }] } };
  t.same(checkSchema('apps/v1', 'ControllerRevision', rev), { unknown: [], typeErrors: [] }, 'RawExtension keeps any JSON');
});

t.test('unknown fields at any depth, with upstream paths', async (t) => {
  const obj = deployment({ foo: 1 }, { bar: 'x', containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, colour: 'red' }] }] });
  (obj as { extra?: boolean }).extra = true;
  t.same(checkSchema('apps/v1', 'Deployment', obj).unknown.sort(), ['extra', 'spec.foo', 'spec.template.spec.bar', 'spec.template.spec.containers[0].ports[0].colour'].sort());
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, dta: { a: 'b' }, data: { any: 'key' } };
  t.same(checkSchema('v1', 'ConfigMap', cm).unknown, ['dta'], 'map keys are never unknown');
});

t.test('type errors name the field the Kubernetes way and the Go way', async (t) => {
  const r = checkSchema('apps/v1', 'Deployment', deployment({ replicas: 'three' }));
  t.same(r.typeErrors, [{ field: 'spec.replicas', message: 'json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32' }]);
  const port = checkSchema('apps/v1', 'Deployment', deployment({}, { containers: [{ name: 'c', ports: [{ containerPort: '80' }] }] }));
  t.same(port.typeErrors, [{ field: 'spec.template.spec.containers[0].ports[0].containerPort', message: 'json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32' }]);
  const cases: [unknown, string][] = [
    [deployment({}, { terminationGracePeriodSeconds: 1.5 }), 'json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.template.spec.terminationGracePeriodSeconds of type int64'],
    [deployment({ replicas: 2 ** 31 }), `json: cannot unmarshal number ${2 ** 31} into Go struct field DeploymentSpec.spec.replicas of type int32`],
    [deployment({ paused: 'yes' }), 'json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool'],
    [deployment({}, { containers: { name: 'c' } }), 'json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container'],
    [deployment({}, { containers: [{ name: 7 }] }), 'json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.name of type string'],
    [deployment({ strategy: 'Recreate' }), 'json: cannot unmarshal string into Go struct field DeploymentSpec.spec.strategy of type v1.DeploymentStrategy'],
    [deployment({ strategy: { rollingUpdate: { maxSurge: true } } }), 'json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type intstr.IntOrString'],
    [{ metadata: { labels: { a: 1 } } }, 'json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string'],
    [{ metadata: { labels: ['a'] } }, 'json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string'],
  ];
  for (const [obj, msg] of cases) t.same(checkSchema('apps/v1', 'Deployment', obj).typeErrors.map((e) => e.message), [msg], msg);
  const q = checkSchema('v1', 'Pod', { spec: { containers: [{ name: 'c', resources: { requests: { cpu: true } } }] } });
  t.same(q.typeErrors.map((e) => e.field), ['spec.containers[0].resources.requests[cpu]'], 'Quantity refuses a bool');
});

t.test('null is accepted anywhere; unknown kinds check clean', async (t) => {
  t.same(checkSchema('apps/v1', 'Deployment', deployment({ replicas: null, strategy: null }, { containers: null })), { unknown: [], typeErrors: [] });
  t.same(checkSchema('example.com/v1', 'Widget', { anything: 1 }), { unknown: [], typeErrors: [] });
  t.same(checkSchema('apps/v1', 'Deployment', 'not an object').typeErrors.length, 1, 'a non-object body is a type error');
});

t.test('Scale (the scale subresource body) has a schema', async (t) => {
  t.same(checkSchema('autoscaling/v1', 'Scale', { spec: { replicas: 'x' } }).typeErrors.map((e) => e.field), ['spec.replicas']);
});
