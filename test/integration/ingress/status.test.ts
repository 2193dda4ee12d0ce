import t from 'tap';
import type { ApiClient } from '../../../src/client/types.js';
import type { IngressHandle } from '../../../src/ingress/index.js';
import { FakeApiClient, R, ingress, seedService, startTestIngress, waitFor } from './helpers.js';

/** status.loadBalancer is written only when it has to change, and controllers never undo each other. */

const statusWrites = (client: FakeApiClient, key: string) => client.writes.filter((w) => w.verb === 'update/status' && w.resource === 'ingresses' && w.key === key).length;

const addresses = async (client: ApiClient, name: string) => {
  const o = await client.get(R.ingresses, name, 'default');
  return ((o.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)?.loadBalancer?.ingress ?? []).map((x) => x.ip);
};

const klass = (name: string, controller: string, isDefault = false) => ({
  metadata: { name, annotations: isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
  spec: { controller },
});

/** Endpoint changes: each one makes every controller re-render and re-check status. */
async function churn(client: FakeApiClient, ings: IngressHandle[], rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const synced = Promise.all(ings.map((g) => g.nextSync()));
    await seedService(client, 'svc', [{ address: '127.0.0.2', port: 8000 + (i % 3) }]);
    await synced;
  }
}

t.test('one controller writes the status once, however often it syncs', async (t) => {
  const client = new FakeApiClient();
  await client.create(R.ingressclasses, klass('skiff', 'skiff.io/ingress'));
  await seedService(client, 'svc', [{ address: '127.0.0.2', port: 8000 }]);
  await client.create(R.ingresses, ingress('web', [{ host: 'web.com', paths: [{ path: '/', service: 'svc' }] }]));
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());
  await waitFor('status written', async () => (await addresses(client, 'web')).length > 0);
  await churn(client, [ing], 20);
  // a spec change (a merge patch keeps the status, as the real apiserver does for spec updates)
  const synced = ing.nextSync();
  await client.patch(R.ingresses, 'web', { spec: ingress('web', [{ host: 'web.com', paths: [{ path: '/', service: 'svc' }, { path: '/b', service: 'svc' }] }]).spec }, { namespace: 'default' });
  await synced;
  await churn(client, [ing], 5);
  t.same(await addresses(client, 'web'), ['127.0.0.1']);
  t.equal(statusWrites(client, 'default/web'), 1, 'one status write for 26 syncs');

  // the Ingress moves to a class nobody serves: ours is removed, once
  await client.patch(R.ingresses, 'web', { spec: { ingressClassName: 'missing' } }, { namespace: 'default' });
  await waitFor('status cleared', async () => (await addresses(client, 'web')).length === 0);
  await churn(client, [ing], 5);
  t.equal(statusWrites(client, 'default/web'), 2, 'one more write to clear it');
});

t.test('two controllers of different classes on one address leave each other\'s Ingresses alone', async (t) => {
  const client = new FakeApiClient();
  await client.create(R.ingressclasses, klass('a', 'skiff.io/a'));
  await client.create(R.ingressclasses, klass('b', 'skiff.io/b', true));
  await seedService(client, 'svc', [{ address: '127.0.0.2', port: 8000 }]);
  await client.create(R.ingresses, ingress('ia', [{ host: 'a.com', paths: [{ path: '/', service: 'svc' }] }], { className: 'a' }));
  await client.create(R.ingresses, ingress('ib', [{ host: 'b.com', paths: [{ path: '/', service: 'svc' }] }], { className: null }));
  const ga = await startTestIngress(client, { controllerName: 'skiff.io/a' });
  t.teardown(() => ga.stop());
  const gb = await startTestIngress(client, { controllerName: 'skiff.io/b' });
  t.teardown(() => gb.stop());
  await waitFor('both statuses written', async () => (await addresses(client, 'ia')).length > 0 && (await addresses(client, 'ib')).length > 0);
  await churn(client, [ga, gb], 10);
  t.same(await addresses(client, 'ia'), ['127.0.0.1']);
  t.same(await addresses(client, 'ib'), ['127.0.0.1'], 'Ingress without a class: the default class (b) claims it');
  t.equal(statusWrites(client, 'default/ia'), 1, 'ia written once, never cleared by the other controller');
  t.equal(statusWrites(client, 'default/ib'), 1, 'ib written once');
});

t.test('two controllers of one class with different addresses: only the status Lease holder writes', async (t) => {
  const client = new FakeApiClient();
  await client.create(R.ingressclasses, klass('skiff', 'skiff.io/ingress'));
  await seedService(client, 'svc', [{ address: '127.0.0.2', port: 8000 }]);
  await client.create(R.ingresses, ingress('web', [{ host: 'web.com', paths: [{ path: '/', service: 'svc' }] }]));
  const g1 = await startTestIngress(client, { publishAddresses: ['127.0.0.1'], identity: 'one' });
  t.teardown(() => g1.stop());
  await waitFor('status written by the first controller', async () => (await addresses(client, 'web')).length > 0);
  const g2 = await startTestIngress(client, { publishAddresses: ['127.0.0.9'], identity: 'two' });
  await churn(client, [g1, g2], 10);
  t.same(await addresses(client, 'web'), ['127.0.0.1'], 'the holder\'s address');
  t.equal(statusWrites(client, 'default/web'), 1, 'no tug of war between the two controllers');

  // the holder goes away: the other one takes the Lease over and publishes its address, once
  await g1.stop();
  await waitFor('status moves to the second controller', async () => (await addresses(client, 'web'))[0] === '127.0.0.9', 10_000);
  await churn(client, [g2], 5);
  t.equal(statusWrites(client, 'default/web'), 2);
  await g2.stop();
});
