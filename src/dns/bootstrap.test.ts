import t from 'tap';
import { FakeApiClient } from '../client/fake.js';
import { R } from '../api/registry.js';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { buildSnapshot } from './model.js';
import { ClusterZone } from './records.js';
import { ensureKubeDns } from './bootstrap.js';
import { nameFromString, rrToString, T } from './wire.js';

t.test('ensureKubeDns creates, leaves alone, then updates the Service and slice', async (t) => {
  const client = new FakeApiClient();
  await ensureKubeDns(client, { address: '192.168.1.5', port: 5353 });
  await ensureKubeDns(client, { address: '192.168.1.5', port: 5353 });
  t.same(client.writes.map((w) => `${w.verb} ${w.resource} ${w.key}`), ['create services kube-system/kube-dns', 'create endpointslices kube-system/kube-dns-skiff'], 'second call writes nothing');
  await ensureKubeDns(client, { address: '192.168.1.6', port: 5353 });
  t.equal(client.writes.at(-1)?.verb, 'update', 'address change updates the slice');
  const svc = await client.get<Service & { metadata: object }>(R.services, 'kube-dns', 'kube-system');
  const slice = await client.get<EndpointSlice & { metadata: object }>(R.endpointslices, 'kube-dns-skiff', 'kube-system');
  t.same(slice.endpoints.map((e) => e.addresses), [['192.168.1.6']]);
  const zone = new ClusterZone(buildSnapshot({ services: [svc], slices: [slice], namespaces: [{ metadata: { name: 'kube-system' } }], synced: true }), { clusterDomain: 'cluster.local', ttl: 5, pods: 'insecure', reverseFallthrough: false, nsAddresses: [] });
  t.same(zone.lookup(nameFromString('kube-dns.kube-system.svc.cluster.local'), T.A)!.answer.map(rrToString), ['kube-dns.kube-system.svc.cluster.local. 5 A 10.96.0.10']);
  t.same(zone.lookup(nameFromString('_dns._udp.kube-dns.kube-system.svc.cluster.local'), T.SRV)!.answer.map(rrToString), ['_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.']);
});
