import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import { missingServiceAccounts, type NamespaceObj } from './reconcile.js';
import { startServiceAccountController } from './controller.js';

t.test('missingServiceAccounts', async (t) => {
  const ns = { metadata: { name: 'a' }, status: { phase: 'Active' } } as NamespaceObj;
  t.same(missingServiceAccounts(ns, []).map((s) => [s.metadata!.namespace, s.metadata!.name]), [['a', 'default']]);
  t.same(missingServiceAccounts(ns, ['default']), []);
  t.same(missingServiceAccounts({ ...ns, status: { phase: 'Terminating' } } as NamespaceObj, []), []);
  t.same(missingServiceAccounts(undefined, []), []);
});

t.test('controller creates and re-creates default', async (t) => {
  const client = new FakeApiClient();
  const { ctx, informers } = makeContext({ client });
  const c = startServiceAccountController(ctx);
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  await client.create(R.namespaces, { metadata: { name: 'team' } });
  await eventually(() => client.get(R.serviceaccounts, 'default', 'team'), 'default SA');
  await client.delete(R.serviceaccounts, 'default', 'team');
  await eventually(() => client.get(R.serviceaccounts, 'default', 'team'), 'default SA re-created');
  t.equal(client.writes.filter((w) => w.verb === 'create' && w.resource === 'serviceaccounts').length, 2);
});
