import t from 'tap';
import { findResource } from '../api/registry.js';
import type { KubeObject } from '../api/object.js';
import { SqliteStore } from '../store/sqlite.js';
import { ApiCore } from './core.js';
import { IP_RECORDS, LEAK_GRACE_MS, PORT_RECORDS } from './allocators.js';
import { StatusError } from './errors.js';

const services = findResource('', 'services')!;
type Spec = { clusterIP?: string; type?: string; ports?: { port: number; nodePort?: number }[] };
const svc = (name: string, spec: Spec = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ port: 80 }], ...spec } });
const specOf = (o: KubeObject): Spec => o.spec as Spec;

/** Two apiservers on one store, as two skiff servers on one etcd: shared records, separate memory. */
async function twoApiservers(t: Tap): Promise<{ a: ApiCore; b: ApiCore; store: SqliteStore }> {
  const store = new SqliteStore(':memory:');
  t.teardown(() => store.close());
  const a = new ApiCore(store, { serviceCIDR: '10.96.0.0/24', nodePortRange: [30000, 30099] });
  const b = new ApiCore(store, { serviceCIDR: '10.96.0.0/24', nodePortRange: [30000, 30099] });
  await a.bootstrap();
  await b.bootstrap();
  return { a, b, store };
}
type Tap = { teardown(fn: () => unknown): void };

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StatusError) return `${err.code} ${err.message}`;
    throw err;
  }
  return 'accepted';
}

t.test('two apiservers on one store never hand out the same ClusterIP or NodePort', async (t) => {
  const { a, b } = await twoApiservers(t);
  // both start with the same hint (the next free address and port): only the store's records keep them apart
  const made = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).create(services, 'default', svc(`s${i}`, { type: 'NodePort' }), {})));
  const ips = made.map((s) => specOf(s).clusterIP);
  const ports = made.map((s) => specOf(s).ports![0].nodePort);
  t.equal(new Set(ips).size, 40, 'forty distinct ClusterIPs');
  t.equal(new Set(ports).size, 40, 'forty distinct NodePorts');
  t.ok(ips.every((ip) => /^10\.96\.0\.\d+$/.test(ip!)), 'all in the service range');
});

t.test('a requested IP or NodePort held through the other apiserver is refused, and free again after delete', async (t) => {
  const { a, b, store } = await twoApiservers(t);
  const first = await a.create(services, 'default', svc('web', { clusterIP: '10.96.0.50', type: 'NodePort', ports: [{ port: 80, nodePort: 30050 }] }), {});
  t.equal(specOf(first).clusterIP, '10.96.0.50');
  t.match(await refusal(b.create(services, 'default', svc('other', { clusterIP: '10.96.0.50' }), {})), /^422 .*provided IP is already allocated/);
  t.match(await refusal(b.create(services, 'default', svc('other', { type: 'NodePort', ports: [{ port: 81, nodePort: 30050 }] }), {})), /^422 .*provided port is already allocated/);
  t.notOk(await b.storage(services).tryGet('other', 'default'), 'nothing half-written');

  await a.delete(services, 'default', 'web', {});
  t.notOk(await store.get(`${IP_RECORDS}10.96.0.50`), 'the IP record is released with the Service');
  t.notOk(await store.get(`${PORT_RECORDS}30050`), 'the NodePort record too');
  const again = await b.create(services, 'default', svc('other', { clusterIP: '10.96.0.50', type: 'NodePort', ports: [{ port: 80, nodePort: 30050 }] }), {});
  t.equal(specOf(again).clusterIP, '10.96.0.50', 'the other apiserver can take it now');
});

t.test('an update that changes a NodePort moves the claim; a failed write releases what it claimed', async (t) => {
  const { a, b, store } = await twoApiservers(t);
  const s = await a.create(services, 'default', svc('web', { clusterIP: '10.96.0.60', type: 'NodePort', ports: [{ port: 80, nodePort: 30010 }] }), {});
  const moved = await b.update(services, 'default', 'web', { ...s, spec: { ...s.spec, ports: [{ port: 80, nodePort: 30011 }] } }, {});
  t.equal(specOf(moved).ports![0].nodePort, 30011);
  t.notOk(await store.get(`${PORT_RECORDS}30010`), 'the old port is released');
  t.ok(await store.get(`${PORT_RECORDS}30011`), 'the new port is claimed');
  t.match(await refusal(a.update(services, 'default', 'web', { ...moved, spec: { ...moved.spec, clusterIP: '10.96.0.61', clusterIPs: ['10.96.0.61'] } }, {})), /^422 .*immutable/);
  t.notOk(await store.get(`${IP_RECORDS}10.96.0.61`), 'nothing claimed for a refused update');
  // a create that fails after allocation (the name exists) leaves no record behind
  t.match(await refusal(b.create(services, 'default', svc('web', { clusterIP: '10.96.0.70' }), {})), /^409 /);
  t.notOk(await store.get(`${IP_RECORDS}10.96.0.70`), 'the claim of the failed create is released');
  // a dry run claims nothing
  const dry = await a.create(services, 'default', svc('dry', { clusterIP: '10.96.0.71' }), { dryRun: true });
  t.equal(specOf(dry).clusterIP, '10.96.0.71');
  t.notOk(await store.get(`${IP_RECORDS}10.96.0.71`), 'a dry run writes no record');
  t.match(await refusal(a.create(services, 'default', svc('dry', { clusterIP: '10.96.0.60' }), { dryRun: true })), /^422 .*already allocated/, 'a dry run still sees what is taken');
});

t.test('repair: records for Services written without one, leaked records reclaimed after the grace period', async (t) => {
  const { a, store } = await twoApiservers(t);
  const s = await a.create(services, 'default', svc('web', { type: 'NodePort' }), {});
  const ip = specOf(s).clusterIP!;
  const port = specOf(s).ports![0].nodePort!;
  // as if written before records existed
  await store.delete(`${IP_RECORDS}${ip}`);
  await store.delete(`${PORT_RECORDS}${port}`);
  const leak = (created: number) => Buffer.from(JSON.stringify({ namespace: 'default', name: 'gone', uid: 'x', created }));
  await store.create(`${IP_RECORDS}10.96.0.90`, leak(Date.now() - LEAK_GRACE_MS - 1000));
  await store.create(`${IP_RECORDS}10.96.0.91`, leak(Date.now()));
  await a.repairAllocations();
  t.ok(await store.get(`${IP_RECORDS}${ip}`), 'the Service IP got its record back');
  t.ok(await store.get(`${PORT_RECORDS}${port}`), 'and its NodePort');
  t.notOk(await store.get(`${IP_RECORDS}10.96.0.90`), 'an old leaked record is reclaimed');
  t.ok(await store.get(`${IP_RECORDS}10.96.0.91`), 'a fresh one may be a create in flight on another apiserver: kept');
  const c = new ApiCore(store, { serviceCIDR: '10.96.0.0/24', nodePortRange: [30000, 30099] });
  await c.bootstrap();
  t.match(await refusal(c.create(services, 'default', svc('dup', { clusterIP: ip }), {})), /^422 .*already allocated/, 'a restarted apiserver knows it is taken');
});
