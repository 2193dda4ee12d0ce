import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import { parsePool, pickAddress, PoolProvider } from './provider.js';
import { ipToInt } from '../nodeipam/cidr.js';
import { startLbIpamController } from './controller.js';
import type { SvcObj } from '../endpointslice/reconcile.js';

const lb = (name: string, extra: Record<string, unknown> = {}, ip?: string) =>
  ({ metadata: { name, namespace: 'default' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...extra }, ...(ip ? { status: { loadBalancer: { ingress: [{ ip }] } } } : {}) }) as SvcObj;

t.test('pool parsing and picking', async (t) => {
  const pool = parsePool(['192.168.50.0/30', '10.0.0.5-10.0.0.6', '10.9.9.9']);
  t.same(pool.map((r) => r.last - r.first + 1), [4, 2, 1]);
  t.equal(pickAddress(pool, new Set([ipToInt('192.168.50.0')])), ipToInt('192.168.50.1'));
  t.equal(pickAddress(pool, new Set(), [ipToInt('10.0.0.6')]), ipToInt('10.0.0.6'), 'wanted address first');
  t.throws(() => parsePool(['10.0.0.9-10.0.0.1']), { code: 'ERR_BAD_POOL' });
});

t.test('PoolProvider: keeps addresses, honours loadBalancerIP, explains pending', async (t) => {
  const p = new PoolProvider(['10.1.0.1-10.1.0.2']);
  const a = lb('a');
  t.same(await p.ensureLoadBalancer(a, [a]), [{ ip: '10.1.0.1', ipMode: 'VIP' }]);
  const b = lb('b', { loadBalancerIP: '10.1.0.1' });
  await t.rejects(p.ensureLoadBalancer(b, [a, b]), { reason: 'AddressInUse' });
  const c = lb('c');
  t.same(await p.ensureLoadBalancer(c, [a, c]), [{ ip: '10.1.0.2', ipMode: 'VIP' }]);
  const d = lb('d');
  await t.rejects(p.ensureLoadBalancer(d, [a, c, d]), { reason: 'PoolExhausted' });
  await p.ensureLoadBalancerDeleted('default/a');
  t.same(await p.ensureLoadBalancer(d, [c, d]), [{ ip: '10.1.0.1', ipMode: 'VIP' }], 'released address reused');
  const restarted = new PoolProvider(['10.1.0.1-10.1.0.2']);
  const e = lb('e');
  await t.rejects(restarted.ensureLoadBalancer(e, [lb('c', {}, '10.1.0.2'), lb('d', {}, '10.1.0.1'), e]), { reason: 'PoolExhausted' }, 'after a restart, statuses say what is taken');
  await t.rejects(new PoolProvider(undefined).ensureLoadBalancer(e, [e]), { reason: 'NoPool' });
});

t.test('controller: assigns, events when exhausted, releases on delete and type change', async (t) => {
  const client = new FakeApiClient();
  const { ctx, informers, recorder } = makeContext({ client, options: { lbPool: ['10.1.0.10/32'] } });
  const c = startLbIpamController(ctx);
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  const ipOf = async (n: string) => (await client.get<SvcObj>(R.services, n, 'default')).status?.loadBalancer?.ingress?.[0]?.ip;
  await client.create(R.services, lb('one'));
  await eventually(async () => (await ipOf('one')) === '10.1.0.10', 'one gets the address');
  await client.create(R.services, lb('two'));
  const ev = await eventually(() => recorder.events.find((e) => e.key === 'default/two' && e.reason === 'AllocationFailed'), 'pending event');
  t.equal(ev.message, 'the LoadBalancer address pool is exhausted');
  await client.create(R.services, { metadata: { name: 'plain', namespace: 'default' }, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } });
  const one = await client.get<SvcObj>(R.services, 'one', 'default');
  await client.update(R.services, { ...one, spec: { ...one.spec, type: 'ClusterIP' } });
  await eventually(async () => (await ipOf('one')) === undefined, 'status cleared on type change');
  await eventually(async () => (await ipOf('two')) === '10.1.0.10', 'freed address goes to the pending service');
  await client.delete(R.services, 'two', 'default');
  await client.create(R.services, lb('three'));
  await eventually(async () => (await ipOf('three')) === '10.1.0.10', 'address of a deleted service is reused');
  t.equal(await ipOf('plain'), undefined);
});
