import t from 'tap';
import { R } from '../../../src/api/registry.js';
import { FakeEventRecorder } from '../../../src/client/events.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { InformerFactory } from '../../../src/client/factory.js';
import { defaultControllerOptions, realClock, type ControllerContext } from '../../../src/controllers/context.js';
import { CONTROLLERS, startControllerManager } from '../../../src/controllers/manager.js';
import { eventually } from './harness.js';

const ctxFor = (client: FakeApiClient): ControllerContext => ({ client, informers: new InformerFactory(client), recorder: () => new FakeEventRecorder(), clock: realClock, options: defaultControllerOptions });

t.test('the table holds every workload controller and the other half of issue 4', async (t) => {
  for (const n of ['replicaset', 'deployment', 'statefulset', 'daemonset', 'job', 'cronjob', 'garbagecollector', 'namespace', 'endpointslice', 'serviceaccount']) t.ok(CONTROLLERS[n], n);
});

t.test('unknown controller names are refused', async (t) => {
  await t.rejects(startControllerManager(ctxFor(new FakeApiClient()), { controllers: ['replicaset', 'nope'] }), /unknown controllers: nope/);
});

t.test('only the named controllers run', async (t) => {
  const client = new FakeApiClient();
  const mgr = await startControllerManager(ctxFor(client), { controllers: ['replicaset'] });
  await client.create(R.replicasets, { metadata: { name: 'a', namespace: 'default' }, spec: { replicas: 2, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [] } } } }, 'default');
  await client.create(R.deployments, { metadata: { name: 'd', namespace: 'default' }, spec: { replicas: 1, selector: { matchLabels: { d: 'e' } }, template: { metadata: { labels: { d: 'e' } }, spec: { containers: [] } } } }, 'default');
  await eventually('replicaset pods', async () => (await client.list(R.pods, { labelSelector: 'a=b' })).items.length === 2);
  t.equal((await client.list(R.replicasets, { labelSelector: 'd=e' })).items.length, 0, 'no deployment controller running');
  await mgr.stop();
});
