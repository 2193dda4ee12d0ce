import t from 'tap';
import { buildSnapshot, changedServices, SnapshotMemo, snapshotFromWire, snapshotToWire } from './model.js';
import { clusterIP, fixture, ns, slice } from '../../test/integration/dns/fixture.js';

const snap = (f = fixture()) => buildSnapshot({ ...f, synced: true, serial: 1 });

t.test('changedServices: field by field, per Service', async (t) => {
  const a = snap();
  t.same([...changedServices(a, snap())!], [], 'a rebuild from the same objects changes nothing');
  t.same([...changedServices(a, snapshotFromWire(structuredClone(snapshotToWire(a))))!], [], 'nor does the trip to a worker');
  const f = fixture();
  f.services = f.services.map((s) => (s.metadata?.name === 'web' ? clusterIP('default', 'web', ['10.96.0.51'], [{ name: 'http', protocol: 'TCP', port: 80 }]) : s));
  t.same([...changedServices(a, snap(f))!], ['default/web'], 'a new ClusterIP');
  const g = fixture();
  g.slices = g.slices.map((s) => (s.metadata?.name === 'db-a' ? slice('prod', 'db', [{ ip: '10.244.1.20', hostname: 'db-0' }], [{ name: 'postgres', port: 5432 }]) : s));
  t.same([...changedServices(a, snap(g))!], ['prod/db'], 'endpoints gone');
  const h = fixture();
  h.services.push(clusterIP('default', 'new', ['10.96.0.99'], []));
  h.services = h.services.filter((s) => s.metadata?.name !== 'legacy');
  t.same([...changedServices(a, snap(h))!].sort(), ['default/legacy', 'default/new'], 'added and removed');
  const i = fixture();
  i.namespaces.push(ns('staging'));
  t.equal(changedServices(a, snap(i)), undefined, 'a new namespace: anything may differ');
  t.equal(changedServices(a, buildSnapshot({ ...fixture(), synced: false })), undefined, 'sync state');
});

t.test('SnapshotMemo: same snapshot as without it, unchanged objects converted once', async (t) => {
  const f = fixture();
  const memo = new SnapshotMemo();
  const a = buildSnapshot({ ...f, synced: true, serial: 1 }, memo);
  t.same(a, buildSnapshot({ ...f, synced: true, serial: 1 }), 'memo changes nothing in the result');
  const web = f.services.findIndex((s) => s.metadata?.name === 'web');
  const changed = { ...f, services: f.services.map((s, i) => (i === web ? clusterIP('default', 'web', ['10.96.0.51'], [{ name: 'http', protocol: 'TCP', port: 80 }]) : s)) };
  const b = buildSnapshot({ ...changed, synced: true, serial: 2 }, memo);
  t.equal(b.services.get('default/dual'), a.services.get('default/dual'), 'an unchanged Service is the same struct');
  t.equal(b.endpoints.get('prod/db'), a.endpoints.get('prod/db'), 'unchanged endpoints are the same list');
  t.same(b.services.get('default/web')!.clusterIPs, ['10.96.0.51'], 'the changed one is converted anew');
  t.same(b, buildSnapshot({ ...changed, synced: true, serial: 2 }));
});
