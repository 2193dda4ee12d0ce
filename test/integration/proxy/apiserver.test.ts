import t from 'tap';
import { R } from '../../../src/api/registry.js';
import { FakeHost } from '../../../src/host/host.js';
import { FakeIptables } from '../../../src/host/iptables-fake.js';
import { makeService, makeSlice } from '../../../src/proxy/fixtures.js';
import { startProxy } from '../../../src/proxy/index.js';
import { startTestApiserver } from '../../helpers/apiserver.js';

// The proxy against the real apiserver (REST client, list+watch, field selector on its Node),
// programming a FakeIptables so no root is needed.

const NODE = 'node-a';
const pkt = (dst: string, dport: number) => ({ src: '10.244.3.3', dst, dport, proto: 'tcp' as const });

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('services and endpointslices from the apiserver become rules, and follow changes', async (t) => {
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  const { client } = api;
  await client.create(R.nodes, { metadata: { name: NODE } });
  const svc = await client.create(R.services, makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), 'default');
  const clusterIP = (svc.spec as { clusterIP: string }).clusterIP;
  await client.create(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: '10.244.1.5', node: NODE }] }), 'default');

  const ipt = new FakeIptables();
  const proxy = await startProxy({ client, host: new FakeHost(), nodeName: NODE, iptables: ipt, minSyncIntervalMs: 0, healthCheckBindAddress: null, lbDevice: null, healthzBindAddress: '127.0.0.1:0' });
  t.teardown(() => proxy.stop());

  await until('first rules', () => ipt.trace(pkt(clusterIP, 80)).endpoints.length === 1);
  t.same(ipt.trace(pkt(clusterIP, 80)).endpoints, ['10.244.1.5:8080']);

  await client.update(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: '10.244.1.5', node: NODE }, { ip: '10.244.1.6', node: NODE }] }));
  await until('second endpoint', () => ipt.trace(pkt(clusterIP, 80)).endpoints.length === 2);
  t.same(ipt.trace(pkt(clusterIP, 80)).endpoints, ['10.244.1.5:8080', '10.244.1.6:8080']);

  const health = await fetch(`http://127.0.0.1:${proxy.healthzPort}/healthz`);
  t.equal(health.status, 200);
  t.match(await health.json(), { nodeEligible: true, stale: false }, 'its Node is watched');

  await client.delete(R.services, 'web', 'default');
  await until('service gone', () => ipt.trace(pkt(clusterIP, 80)).verdicts.includes('DROP'));
  t.same(ipt.trace(pkt(clusterIP, 80)).endpoints, []);
});
