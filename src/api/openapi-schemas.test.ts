import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate } from '../../scripts/gen-openapi.js';

type Obj = Record<string, unknown>;
const file = fileURLToPath(new URL('./openapi-schemas.json', import.meta.url));
const text = readFileSync(file, 'utf8');
const all = JSON.parse(text) as Record<string, Obj>;
const props = (name: string): Record<string, Obj> => all[name].properties as Record<string, Obj>;

t.test('the committed schemas are what the generator writes (run scripts/gen-openapi.ts after changes)', async (t) => {
  t.equal(text, `${JSON.stringify(generate())}\n`);
  t.ok(text.length < 3_000_000, `compact: ${text.length} bytes`);
});

t.test('descriptions come from the upstream doc comments', async (t) => {
  t.match(all['io.k8s.api.apps.v1.DeploymentStrategy'].description, /how to replace existing pods/);
  t.match(props('io.k8s.api.apps.v1.DeploymentSpec').strategy, { allOf: [{ $ref: '#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy' }], description: /deployment strategy/ });
  t.match(props('io.k8s.api.core.v1.ContainerPort').containerPort, { type: 'integer', format: 'int32', description: /Number of port/ });
  t.same(all['io.k8s.api.core.v1.ContainerPort'].required, ['containerPort']);
});

t.test('special types: IntOrString, Quantity, Time, maps, int64', async (t) => {
  t.match(props('io.k8s.api.core.v1.ServicePort').targetPort, { allOf: [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString' }] });
  t.match(all['io.k8s.apimachinery.pkg.util.intstr.IntOrString'], { 'x-kubernetes-int-or-string': true });
  t.match(all['io.k8s.apimachinery.pkg.api.resource.Quantity'], { 'x-kubernetes-int-or-string': true, description: /fixed-point/ });
  t.match(all['io.k8s.apimachinery.pkg.apis.meta.v1.Time'], { type: 'string', format: 'date-time' });
  t.match(props('io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta').labels, { type: 'object', additionalProperties: { type: 'string' } });
  t.match(props('io.k8s.api.core.v1.ResourceRequirements').limits, { type: 'object', additionalProperties: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity' } });
  t.match(props('io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta').generation, { type: 'integer', format: 'int64' });
  t.match(props('io.k8s.api.core.v1.PodSpec').terminationGracePeriodSeconds, { type: 'integer', format: 'int64' });
});

t.test('strategic merge patch keys on the lists of patch.ts', async (t) => {
  const want: [string, string, string, string][] = [
    ['io.k8s.api.core.v1.PodSpec', 'containers', 'name', 'merge'],
    ['io.k8s.api.core.v1.PodSpec', 'volumes', 'name', 'merge,retainKeys'],
    ['io.k8s.api.core.v1.Container', 'ports', 'containerPort', 'merge'],
    ['io.k8s.api.core.v1.Container', 'env', 'name', 'merge'],
    ['io.k8s.api.core.v1.Container', 'volumeMounts', 'mountPath', 'merge'],
    ['io.k8s.api.core.v1.ServiceSpec', 'ports', 'port', 'merge'],
    ['io.k8s.api.apps.v1.DeploymentStatus', 'conditions', 'type', 'merge'],
    ['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta', 'ownerReferences', 'uid', 'merge'],
    ['io.k8s.api.core.v1.NodeSpec', 'taints', 'key', 'merge'],
  ];
  for (const [type, field, key, strategy] of want) {
    t.match(props(type)[field], { 'x-kubernetes-patch-merge-key': key, 'x-kubernetes-patch-strategy': strategy }, `${type}.${field}`);
  }
  t.equal(props('io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta').finalizers['x-kubernetes-patch-strategy'], 'merge', 'finalizers merge as a set');
  t.notOk(props('io.k8s.api.discovery.v1.Endpoint').addresses['x-kubernetes-patch-merge-key'], 'string lists get no merge key');
});
