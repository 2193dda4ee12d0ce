import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import { nextFreeSubnet, parseCidr, formatCidr, ipToInt, intToIp } from './cidr.js';
import { decidePodCIDR, type NodeObj } from './reconcile.js';
import { startNodeIpamController } from './controller.js';

t.test('cidr math', async (t) => {
  t.equal(formatCidr(parseCidr('10.244.3.7/16')), '10.244.0.0/16');
  t.equal(intToIp(ipToInt('192.168.1.255')), '192.168.1.255');
  t.throws(() => parseCidr('10.0.0.0/33'));
  t.throws(() => ipToInt('1.2.3.256'));
  const c = parseCidr('10.244.0.0/22');
  t.equal(nextFreeSubnet(c, 24, new Set()), '10.244.0.0/24');
  t.equal(nextFreeSubnet(c, 24, new Set(['10.244.0.0/24', '10.244.2.0/24'])), '10.244.1.0/24');
  t.equal(nextFreeSubnet(c, 24, new Set(['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'])), undefined);
});

t.test('decidePodCIDR keeps an existing CIDR and assigns the lowest free one', async (t) => {
  const n = (cidr?: string) => ({ metadata: { name: 'n' }, spec: cidr ? { podCIDR: cidr } : {} }) as NodeObj;
  t.same(decidePodCIDR(n('10.244.5.0/24'), '10.244.0.0/16', 24, new Set()), { action: 'none', cidr: '10.244.5.0/24' });
  t.same(decidePodCIDR(n(), '10.244.0.0/16', 24, new Set(['10.244.0.0/24'])), { action: 'assign', cidr: '10.244.1.0/24' });
  t.same(decidePodCIDR(n(), '10.244.0.0/24', 24, new Set(['10.244.0.0/24'])), { action: 'full' });
});

t.test('controller: distinct CIDRs, no reuse while the node exists, reuse after delete, event when full', async (t) => {
  const client = new FakeApiClient();
  const { ctx, informers, recorder } = makeContext({ client, options: { podCIDR: '10.244.0.0/23' } });
  const c = startNodeIpamController(ctx);
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  for (const name of ['a', 'b', 'c']) await client.create(R.nodes, { metadata: { name } });
  const cidrOf = async (n: string) => (await client.get<NodeObj>(R.nodes, n)).spec?.podCIDR;
  await eventually(async () => (await cidrOf('a')) && (await cidrOf('b')), 'two nodes get CIDRs');
  t.same([await cidrOf('a'), await cidrOf('b')].sort(), ['10.244.0.0/24', '10.244.1.0/24']);
  t.same((await client.get<NodeObj>(R.nodes, 'a')).spec?.podCIDRs, [await cidrOf('a')]);
  await eventually(() => recorder.events.some((e) => e.key === 'c' && e.reason === 'CIDRNotAvailable'), 'CIDRNotAvailable event');
  t.equal(await cidrOf('c'), undefined);
  const freed = await cidrOf('a');
  await client.delete(R.nodes, 'a');
  await client.update(R.nodes, { ...(await client.get<NodeObj>(R.nodes, 'c')) }); // nudge (the queue also retries with backoff)
  await eventually(async () => (await cidrOf('c')) === freed, 'freed CIDR goes to the waiting node');
});
