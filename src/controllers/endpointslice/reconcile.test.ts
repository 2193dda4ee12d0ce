import t from 'tap';
import type { PodObj } from './podutil.js';
import { resolveTargetPort } from './podutil.js';
import { MANAGED_BY_CONTROLLER, desiredEndpointsForService, planSlices, type SliceObj, type SvcObj } from './reconcile.js';
import { desiredEndpointsFromEndpoints, shouldMirror, type EndpointsObj } from './mirror.js';

function svc(extra: Record<string, unknown> = {}): SvcObj {
  return {
    metadata: { name: 'web', namespace: 'ns', uid: 'svc-uid', labels: { team: 'a' } },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http-port', protocol: 'TCP' }], ...extra },
  } as SvcObj;
}

function pod(name: string, ip: string, opts: { ready?: boolean; deleting?: boolean; port?: number; labels?: Record<string, string>; hostname?: string; node?: string } = {}): PodObj {
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: opts.labels ?? { app: 'web' }, ...(opts.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: {
      nodeName: opts.node ?? 'n1',
      ...(opts.hostname ? { hostname: opts.hostname, subdomain: 'web' } : {}),
      containers: [{ name: 'c', ports: [{ name: 'http-port', containerPort: opts.port ?? 8080 }] }],
    },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  } as PodObj;
}

t.test('named target ports resolve per pod; pods with other ports get their own slice', async (t) => {
  const s = svc();
  const pods = [pod('a', '10.0.0.1'), pod('b', '10.0.0.2', { port: 9090 }), pod('c', '10.0.0.3', { labels: { app: 'other' } })];
  const plan = planSlices(s, desiredEndpointsForService(s, pods), [], MANAGED_BY_CONTROLLER);
  t.equal(plan.create.length, 2);
  const ports = plan.create.map((sl) => sl.ports![0].port).sort();
  t.same(ports, [8080, 9090]);
  const first = plan.create.find((sl) => sl.ports![0].port === 8080)!;
  t.same(first.endpoints!.map((e) => e.addresses[0]), ['10.0.0.1']);
  t.equal(first.metadata?.labels?.['kubernetes.io/service-name'], 'web');
  t.equal(first.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'], MANAGED_BY_CONTROLLER);
  t.equal(first.metadata?.labels?.team, 'a');
  t.equal(first.metadata?.ownerReferences?.[0].uid, 'svc-uid');
  t.equal(first.addressType, 'IPv4');
});

t.test('conditions: ready, serving, terminating; publishNotReadyAddresses; hostname and nodeName', async (t) => {
  const s = svc();
  const d = desiredEndpointsForService(s, [
    pod('ready', '10.0.0.1', { hostname: 'h1', node: 'n2' }),
    pod('notready', '10.0.0.2', { ready: false }),
    pod('term', '10.0.0.3', { deleting: true }),
    pod('term-nr', '10.0.0.4', { deleting: true, ready: false }),
  ]);
  const byName = Object.fromEntries(d.map((x) => [x.endpoint.targetRef!.name, x.endpoint]));
  t.same(byName.ready.conditions, { ready: true, serving: true, terminating: false });
  t.equal(byName.ready.hostname, 'h1');
  t.equal(byName.ready.nodeName, 'n2');
  t.same(byName.notready.conditions, { ready: false, serving: false, terminating: false });
  t.same(byName.term.conditions, { ready: false, serving: true, terminating: true });
  t.same(byName['term-nr'].conditions, { ready: false, serving: false, terminating: true });
  const pub = desiredEndpointsForService(svc({ publishNotReadyAddresses: true }), [pod('notready', '10.0.0.2', { ready: false })]);
  t.same(pub[0].endpoint.conditions, { ready: true, serving: true, terminating: false });
});

t.test('pods without IP or finished are left out', async (t) => {
  const p1 = pod('a', '10.0.0.1');
  (p1.status as { podIP?: string }).podIP = undefined;
  const p2 = pod('b', '10.0.0.2');
  (p2.status as { phase?: string }).phase = 'Succeeded';
  t.equal(desiredEndpointsForService(svc(), [p1, p2]).length, 0);
  t.equal(resolveTargetPort({ port: 80, targetPort: 'nope' }, p1), undefined);
  t.equal(resolveTargetPort({ port: 80 }, p1), 80);
});

t.test('max 100 endpoints per slice; existing membership kept; unchanged slices not rewritten', async (t) => {
  const s = svc();
  const pods = Array.from({ length: 250 }, (_, i) => pod(`p${String(i).padStart(3, '0')}`, `10.1.${Math.floor(i / 200)}.${i % 200}`));
  const plan = planSlices(s, desiredEndpointsForService(s, pods), [], MANAGED_BY_CONTROLLER);
  t.same(plan.create.map((x) => x.endpoints!.length), [100, 100, 50]);
  const existing = plan.create.map((x, i) => ({ ...x, metadata: { ...x.metadata, name: `web-${i}`, resourceVersion: '1' } }) as SliceObj);
  const again = planSlices(s, desiredEndpointsForService(s, pods), existing, MANAGED_BY_CONTROLLER);
  t.same(again, { create: [], update: [], delete: [] }, 'idempotent');
  // remove 10 pods from the first slice, add 60 new ones: they fill slice 0 and 2 first
  const fewer = pods.slice(10).concat(Array.from({ length: 60 }, (_, i) => pod(`q${i}`, `10.2.0.${i}`)));
  const p3 = planSlices(s, desiredEndpointsForService(s, fewer), existing, MANAGED_BY_CONTROLLER);
  t.equal(p3.create.length, 0, 'new endpoints fit into slices with room');
  t.same(p3.update.map((x) => [x.metadata!.name, x.endpoints!.length]).sort(), [['web-0', 100], ['web-2', 100]]);
  t.ok(p3.update.find((x) => x.metadata!.name === 'web-0')!.endpoints!.some((e) => e.targetRef!.name === 'p010'), 'old members stay');
});

t.test('no endpoints: one empty placeholder slice; stale slices deleted', async (t) => {
  const s = svc();
  const plan = planSlices(s, [], [], MANAGED_BY_CONTROLLER);
  t.equal(plan.create.length, 1);
  t.same(plan.create[0].endpoints, []);
  t.same(plan.create[0].ports, []);
  const placeholder = { ...plan.create[0], metadata: { ...plan.create[0].metadata, name: 'web-x' } } as SliceObj;
  const old = { ...placeholder, metadata: { ...placeholder.metadata, name: 'web-y' }, ports: [{ name: 'http', port: 1, protocol: 'TCP' }], endpoints: [{ addresses: ['1.1.1.1'] }] } as SliceObj;
  const p2 = planSlices(s, [], [placeholder, old], MANAGED_BY_CONTROLLER);
  t.same(p2.create, []);
  t.same(p2.delete.map((x) => x.metadata!.name), ['web-y']);
  const p3 = planSlices(s, desiredEndpointsForService(s, [pod('a', '10.0.0.1')]), [placeholder], MANAGED_BY_CONTROLLER);
  t.equal(p3.create.length, 1);
  t.same(p3.delete.map((x) => x.metadata!.name), ['web-x']);
});

t.test('mirroring of manual Endpoints for selector-less Services', async (t) => {
  const s = svc({ selector: undefined });
  const ep = {
    metadata: { name: 'web', namespace: 'ns' },
    subsets: [{ addresses: [{ ip: '192.168.1.1' }, { ip: 'fd00::1' }], notReadyAddresses: [{ ip: '192.168.1.2' }], ports: [{ name: 'http', port: 8080 }] }],
  } as EndpointsObj;
  t.ok(shouldMirror(s, ep));
  t.notOk(shouldMirror(svc(), ep), 'selector services are not mirrored');
  t.notOk(shouldMirror(s, { ...ep, metadata: { ...ep.metadata, labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } } }));
  const d = desiredEndpointsFromEndpoints(ep);
  const plan = planSlices(s, d, [], 'endpointslicemirroring-controller.k8s.io');
  t.same(plan.create.map((x) => x.addressType).sort(), ['IPv4', 'IPv6']);
  const v4 = plan.create.find((x) => x.addressType === 'IPv4')!;
  t.same(v4.endpoints!.map((e) => [e.addresses[0], e.conditions!.ready]), [['192.168.1.1', true], ['192.168.1.2', false]]);
  t.same(v4.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
});
