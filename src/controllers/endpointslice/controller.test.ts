import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../../api/object.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import { startEndpointSliceController } from './controller.js';
import { startEndpointsController } from '../endpoints/controller.js';

type Slice = KubeObject & EndpointSlice;

function pod(name: string, ip: string, ready = true) {
  return {
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

t.test('slices and endpoints follow pods of a selector Service; mirroring for manual Endpoints', async (t) => {
  const client = new FakeApiClient();
  const { ctx, informers } = makeContext({ client });
  const es = startEndpointSliceController(ctx);
  const ep = startEndpointsController(ctx);
  informers.start();
  await informers.waitForSync(); // the fake's watch does not replay from a resourceVersion
  t.teardown(() => {
    es.stop();
    ep.stop();
    informers.stop();
  });
  await client.create(R.services, { metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } });
  const placeholder = await eventually(async () => (await client.list<Slice>(R.endpointslices)).items.find((s) => (s.endpoints ?? []).length === 0), 'placeholder slice');
  t.same(placeholder.ports, []);
  await client.create(R.pods, pod('a', '10.244.0.5'));
  await client.create(R.pods, pod('b', '10.244.0.6', false));
  const slices = await eventually(async () => {
    const items = (await client.list<Slice>(R.endpointslices)).items;
    return items.length === 1 && items[0].endpoints?.length === 2 ? items : undefined;
  }, 'one slice with two endpoints');
  t.same(slices[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  t.same(slices[0].endpoints!.map((e) => [e.addresses[0], e.conditions!.ready]), [['10.244.0.5', true], ['10.244.0.6', false]]);
  const eps = await eventually(async () => {
    const e = await client.get<KubeObject & { subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[] }>(R.endpoints, 'web', 'default');
    return e.subsets?.[0]?.addresses?.length === 1 && e.subsets[0].notReadyAddresses?.length === 1 ? e : undefined;
  }, 'endpoints with one ready and one not-ready address');
  t.equal(eps.subsets![0].addresses![0].ip, '10.244.0.5');

  await client.delete(R.pods, 'a', 'default');
  await eventually(async () => (await client.list<Slice>(R.endpointslices)).items[0]?.endpoints?.length === 1, 'endpoint of deleted pod removed');

  // selector-less Service + manual Endpoints -> mirrored slice
  await client.create(R.services, { metadata: { name: 'ext', namespace: 'default' }, spec: { ports: [{ port: 5432 }] } });
  await client.create(R.endpoints, { metadata: { name: 'ext', namespace: 'default' }, subsets: [{ addresses: [{ ip: '192.168.5.5' }], ports: [{ port: 5432 }] }] });
  const mirrored = await eventually(async () => (await client.list<Slice>(R.endpointslices, { labelSelector: 'kubernetes.io/service-name=ext' })).items.find((s) => s.endpoints?.length === 1), 'mirrored slice');
  t.equal(mirrored.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslicemirroring-controller.k8s.io');
  t.same(mirrored.endpoints![0].addresses, ['192.168.5.5']);
  const manual = await client.get(R.endpoints, 'ext', 'default');
  t.notOk(manual.metadata?.labels?.['endpointslice.kubernetes.io/skip-mirror'], 'manual endpoints untouched by the endpoints controller');

  await client.delete(R.services, 'web', 'default');
  await eventually(async () => (await client.list<Slice>(R.endpointslices, { labelSelector: 'kubernetes.io/service-name=web' })).items.length === 0, 'slices of a deleted service removed');
  await eventually(async () => client.get(R.endpoints, 'web', 'default').then(() => false, () => true), 'endpoints of a deleted service removed');
});
