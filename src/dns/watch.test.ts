import t from 'tap';
import { FakeApiClient } from '../client/fake.js';
import { R } from '../api/registry.js';
import type { KubeObject } from '../api/object.js';
import { ClusterWatch } from './watch.js';
import type { ClusterZone, ZoneConfig } from './records.js';
import { nameFromString, RCODE, T } from './wire.js';
import { clusterIP, ns } from '../../test/integration/dns/fixture.js';

const cfg: ZoneConfig = { clusterDomain: 'cluster.local', ttl: 5, pods: 'insecure', reverseFallthrough: false, nsAddresses: [] };

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

t.test('zone is unsynced until every informer synced, then rebuilt once per burst of changes', async (t) => {
  const client = new FakeApiClient();
  client.seed(R.namespaces, ns('default') as KubeObject);
  const zones: ClusterZone[] = [];
  const watch = new ClusterWatch(client, cfg, (z) => zones.push(z), 20);
  t.teardown(() => watch.stop());
  t.equal(watch.current().snap.synced, false, 'before start: not synced');
  t.equal(watch.current().lookup(nameFromString('x.default.svc.cluster.local'), T.A)!.rcode, RCODE.SERVFAIL, 'unsynced NXDOMAIN is SERVFAIL');
  await watch.start();
  t.equal(watch.current().snap.synced, true);
  const afterStart = zones.length;
  await Promise.all(Array.from({ length: 10 }, (_, i) => client.create(R.services, clusterIP('default', `s${i}`, [`10.96.1.${i + 1}`], [{ name: 'http', port: 80 }]) as KubeObject)));
  await until(() => zones.length > afterStart);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(zones.length - afterStart, 1, 'ten changes, one rebuild');
  const z = watch.current();
  t.equal(z.snap.services.size, 10);
  t.same(z.lookup(nameFromString('s9.default.svc.cluster.local'), T.A)!.answer.map((r) => r.data), [{ kind: 'addr', address: '10.96.1.10' }]);
  watch.stop();
  await client.create(R.services, clusterIP('default', 'late', ['10.96.2.1'], []) as KubeObject);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(zones.length - afterStart, 1, 'no rebuild after stop()');
});

t.test('rebuilds are rate-limited: none sooner than minIntervalMs after the previous one', async (t) => {
  const client = new FakeApiClient();
  client.seed(R.namespaces, ns('default') as KubeObject);
  const zones: ClusterZone[] = [];
  const watch = new ClusterWatch(client, cfg, (z) => zones.push(z), 20, 60_000);
  t.teardown(() => watch.stop());
  await watch.start();
  const afterStart = zones.length;
  await client.create(R.services, clusterIP('default', 'soon', ['10.96.3.1'], []) as KubeObject);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(zones.length, afterStart, 'no rebuild within the interval, whatever the coalescing delay');
  t.equal(watch.current().lookup(nameFromString('soon.default.svc.cluster.local'), T.A)!.rcode, RCODE.NXDOMAIN, 'the old zone still serves');
});
