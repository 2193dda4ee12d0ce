import t from 'tap';
import type { PodObj } from '../endpointslice/podutil.js';
import type { SvcObj } from '../endpointslice/reconcile.js';
import { planEndpoints, renderEndpoints } from './reconcile.js';

const svc = (extra: Record<string, unknown> = {}) =>
  ({ metadata: { name: 'db', namespace: 'ns', labels: { a: 'b' } }, spec: { selector: { app: 'db' }, clusterIP: 'None', ports: [{ name: 'pg', port: 5432, targetPort: 'pg' }], ...extra } }) as SvcObj;
const pod = (name: string, ip: string, o: { ready?: boolean; port?: number; deleting?: boolean } = {}) =>
  ({
    metadata: { name, namespace: 'ns', uid: name, labels: { app: 'db' }, ...(o.deleting ? { deletionTimestamp: 'x' } : {}) },
    spec: { hostname: name, subdomain: 'db', nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'pg', containerPort: o.port ?? 5432 }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  }) as PodObj;

t.test('subsets by port set, ready vs notReady, terminating left out, headless label', async (t) => {
  const ep = renderEndpoints(svc(), [pod('b', '10.0.0.2'), pod('a', '10.0.0.1'), pod('c', '10.0.0.3', { ready: false }), pod('d', '10.0.0.4', { port: 6000 }), pod('e', '10.0.0.5', { deleting: true })]);
  t.equal(ep.subsets!.length, 2);
  const s0 = ep.subsets![0];
  t.same(s0.addresses!.map((a) => a.ip), ['10.0.0.1', '10.0.0.2']);
  t.same(s0.notReadyAddresses!.map((a) => a.ip), ['10.0.0.3']);
  t.same(s0.ports, [{ name: 'pg', port: 5432, protocol: 'TCP' }]);
  t.equal(s0.addresses![0].hostname, 'a');
  t.equal(s0.addresses![0].nodeName, 'n1');
  t.same(ep.subsets![1].ports, [{ name: 'pg', port: 6000, protocol: 'TCP' }]);
  t.equal(ep.metadata!.labels!['service.kubernetes.io/headless'], '');
  t.equal(ep.metadata!.labels!['endpointslice.kubernetes.io/skip-mirror'], 'true');
  t.equal(ep.metadata!.labels!.a, 'b');
});

t.test('publishNotReadyAddresses keeps not-ready and terminating pods as addresses', async (t) => {
  const ep = renderEndpoints(svc({ publishNotReadyAddresses: true }), [pod('c', '10.0.0.3', { ready: false }), pod('e', '10.0.0.5', { deleting: true })]);
  t.same(ep.subsets![0].addresses!.map((a) => a.ip), ['10.0.0.3', '10.0.0.5']);
  t.notOk(ep.subsets![0].notReadyAddresses);
});

t.test('plan: create, then nothing when equal, update when changed', async (t) => {
  const want = renderEndpoints(svc(), [pod('a', '10.0.0.1')]);
  t.same(planEndpoints(want, undefined), { create: want });
  const stored = { ...want, metadata: { ...want.metadata, resourceVersion: '7' } };
  t.same(planEndpoints(want, stored), {});
  const next = renderEndpoints(svc(), [pod('a', '10.0.0.1'), pod('b', '10.0.0.2')]);
  const p = planEndpoints(next, stored);
  t.equal(p.update!.metadata!.resourceVersion, '7', 'update keeps resourceVersion for optimistic concurrency');
  t.equal(p.update!.subsets![0].addresses!.length, 2);
});
