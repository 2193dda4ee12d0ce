import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { R } from '../api/registry.js';
import { FakeApiClient } from '../client/fake.js';
import { FakeHost } from '../host/host.js';
import { FakeIptables } from '../host/iptables-fake.js';
import { renderMetrics } from '../util/metrics.js';
import { makeService, makeSlice } from './fixtures.js';
import { cleanupProxyRules, startProxy, type ProxyHandle, type SyncReport } from './index.js';
import { Proxier } from './proxier.js';
import { SharedInformer } from '../client/informer.js';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import { snapshotFromObjects } from './model.js';
import { renderRuleset, rulesetToText } from './render.js';
import { proxyHealthResponse } from './healthcheck.js';

const NODE = 'node-a';
const opts = { localAddrs: ['192.168.50.2'] };

/** A FakeHost that keeps a tiny model of `ip addr` on devices and records conntrack calls. */
function fakeHost() {
  const devices = new Map<string, Map<string, string>>();
  const conntrack: string[] = [];
  const host = new FakeHost((cmd, args) => {
    if (cmd === 'conntrack') {
      conntrack.push(args.join(' '));
      return { exitCode: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.' };
    }
    if (cmd !== 'ip') return undefined;
    const a = args.join(' ');
    let m = /^-4 -o addr show dev (\S+)$/.exec(a);
    if (m) {
      const dev = devices.get(m[1]);
      if (!dev) return { exitCode: 1, stderr: `Device "${m[1]}" does not exist.` };
      return { stdout: [...dev].map(([ip, label]) => `7: ${m![1]}    inet ${ip}/32 scope global ${label}\\       valid_lft forever preferred_lft forever`).join('\n') };
    }
    if ((m = /^link add (\S+) type bridge$/.exec(a))) devices.set(m[1], new Map());
    if ((m = /^addr add (\S+)\/32 dev (\S+) label (\S+)$/.exec(a))) devices.get(m[2])!.set(m[1], m[3]);
    if ((m = /^addr del (\S+)\/32 dev (\S+)$/.exec(a))) devices.get(m[2])!.delete(m[1]);
    return undefined;
  });
  return { host, devices, conntrack };
}

async function setup(t: Test, extra: Partial<Parameters<typeof startProxy>[0]> = {}) {
  const client = new FakeApiClient();
  const ipt = new FakeIptables();
  const fh = fakeHost();
  client.seed(R.nodes, { metadata: { name: NODE } });
  client.seed(R.services, makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] }));
  client.seed(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ ip: '10.244.1.5', node: NODE }, { ip: '10.244.2.5', node: 'node-b' }] }));
  client.seed(R.services, makeService({ name: 'dns', clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }));
  client.seed(R.endpointslices, makeSlice({ service: 'dns', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: [{ ip: '10.244.1.53', node: NODE }] }));
  const reports: SyncReport[] = [];
  const handle: ProxyHandle = await startProxy({ client, host: fh.host, nodeName: NODE, iptables: ipt, minSyncIntervalMs: 0, healthCheckBindAddress: null, ...extra });
  handle.proxier.on('synced', (r: SyncReport) => reports.push(r));
  t.teardown(() => handle.stop());
  await handle.proxier.idle();
  return { client, ipt, fh, handle, reports };
}

t.test('nothing is rendered before the informers have synced', async (t) => {
  const client = new FakeApiClient();
  client.seed(R.services, makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ port: 80 }] }));
  const ipt = new FakeIptables();
  const services = new SharedInformer(client, R.services);
  const slices = new SharedInformer(client, R.endpointslices);
  const p = new Proxier({
    iptables: ipt, host: fakeHost().host, services, slices, ctx: { nodeName: NODE }, minSyncIntervalMs: 0, fullResyncIntervalMs: 60_000, lbDevice: null, healthCheckBindAddress: null,
  });
  await p.syncProxyRules();
  t.equal(ipt.restores.length, 0, 'no restore while caches are empty');
  services.start();
  slices.start();
  await Promise.all([services.synced(), slices.synced()]);
  await p.syncProxyRules();
  t.equal(ipt.restores.length, 1, 'first restore once synced');
  t.match(ipt.restores[0], /default\/web/);
  services.stop();
  slices.stop();
  await p.stop();
});

t.test('first sync is full, after informers synced; built-in jumps ensured', async (t) => {
  const { ipt } = await setup(t);
  t.equal(ipt.restores.length, 1);
  t.match(ipt.restores[0], /:SKIFF-SERVICES - \[0:0\]/);
  t.ok(ipt.rules('nat', 'PREROUTING').some((r) => r.includes('-j SKIFF-SERVICES')), 'PREROUTING jumps to SKIFF-SERVICES');
  t.ok(ipt.chains('mangle').includes('SKIFF-IPTABLES-HINT'), 'backend hint chain');
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).endpoints, ['10.244.1.5:80', '10.244.2.5:80']);
});

t.test('endpoint change rewrites only that service chain; unchanged render is not applied', async (t) => {
  const { client, ipt, handle, reports } = await setup(t);
  await client.update(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ ip: '10.244.1.5', node: NODE }] }));
  await handle.proxier.idle();
  t.equal(ipt.restores.length, 2);
  const doc = ipt.restores[1];
  t.equal((doc.match(/^:/gm) ?? []).length, 1, 'one chain declared');
  t.match(doc, /^:SKIFF-SVC-\w+ - \[0:0\]$/m);
  t.equal(reports.at(-1)?.mode, 'partial');
  t.equal(reports.at(-1)?.latenciesMs.length, 1, 'programming latency measured');
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).endpoints, ['10.244.1.5:80']);

  const svc = makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] });
  svc.metadata!.labels = { touched: 'yes' };
  await client.update(R.services, svc);
  await handle.proxier.idle();
  t.equal(ipt.restores.length, 2, 'label-only change: nothing restored');
  t.equal(reports.at(-1)?.mode, 'noop');
});

t.test('above 1,000 endpoints, endpoint rules go without comments (large-cluster mode), and back', async (t) => {
  const { client, ipt, handle, reports } = await setup(t);
  const webRules = () => ipt.chains('nat').filter((c) => c.startsWith('SKIFF-SVC-')).flatMap((c) => ipt.rules('nat', c)).filter((r) => r.includes('DNAT --to-destination 10.244.1.5'));
  t.match(webRules()[0], /--comment "default\/web:http -> 10.244.1.5:80"/, 'small cluster: commented');
  const many = Array.from({ length: 999 }, (_, j) => ({ ip: `10.245.${j >> 8}.${j & 255}`, node: 'node-b' }));
  await client.create(R.services, makeService({ name: 'big', clusterIP: '10.96.0.99', ports: [{ port: 80 }] }));
  await client.create(R.endpointslices, makeSlice({ service: 'big', ports: [{ port: 8080 }], endpoints: many }));
  await handle.proxier.idle();
  t.equal(reports.at(-1)?.mode, 'full', '1,002 endpoints: the mode change re-renders everything');
  t.notMatch(webRules()[0], /comment/, 'endpoint rules of other Services lost their comments too');
  t.ok(ipt.rules('nat', 'SKIFF-SERVICES').some((r) => r.includes('"default/web:http cluster IP"')), 'the SERVICES jump keeps its comment');
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).endpoints.sort(), ['10.244.1.5:80', '10.244.2.5:80'], 'same behaviour');
  t.equal(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.99', dport: 80, proto: 'tcp' }, opts).endpoints.length, 999);

  await client.delete(R.endpointslices, 'big-abc', 'default');
  await handle.proxier.idle();
  t.equal(reports.at(-1)?.mode, 'full');
  t.match(webRules()[0], /--comment "default\/web:http -> 10.244.1.5:80"/, 'back under the threshold: commented again');
});

t.test('service deleted: chains removed, REJECT gone, service IP dropped', async (t) => {
  const { client, ipt, handle } = await setup(t);
  await client.delete(R.services, 'web', 'default');
  await handle.proxier.idle();
  t.notOk(ipt.chains('nat').some((c) => ipt.rules('nat', c).some((r) => r.includes('default/web'))), 'no rule names default/web');
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).verdicts, ['DROP']);
});

t.test('a failed restore logs the failing line and forces a full sync', async (t) => {
  const { client, ipt, handle, reports } = await setup(t);
  const failures: Error[] = [];
  handle.proxier.on('syncFailed', (e: Error) => failures.push(e));
  ipt.failNextRestoreAtLine = 2;
  await client.update(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ ip: '10.244.1.9', node: NODE }] }));
  await t.resolves(
    (async () => {
      const deadline = Date.now() + 10_000;
      while (!reports.some((r) => r.mode === 'full' && reports.indexOf(r) > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    })(),
  );
  t.equal(failures.length, 1);
  t.match(failures[0].message, /line 2/);
  t.match((failures[0] as Error & { details?: { failingLine?: string } }).details?.failingLine, /^:SKIFF-SVC-/);
  t.equal(reports.at(-1)?.mode, 'full', 'recovery sync is full');
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).endpoints, ['10.244.1.9:80']);
  t.match((await renderMetrics()).body, /skiff_proxy_restore_failures_total [1-9]/);
});

t.test('UDP: stale conntrack entries deleted when an endpoint goes and when one comes back', async (t) => {
  const { client, fh, handle } = await setup(t);
  t.same(fh.conntrack, ['-D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53'], 'first sync: flows from before the service had endpoints');
  fh.conntrack.length = 0;
  await client.update(R.endpointslices, makeSlice({ service: 'dns', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: [{ ip: '10.244.1.54', node: NODE }] }));
  await handle.proxier.idle();
  t.same(fh.conntrack, ['-D -p udp --orig-dst 10.96.0.10 --dst-nat 10.244.1.53'], 'replaced endpoint');
  fh.conntrack.length = 0;
  await client.update(R.endpointslices, makeSlice({ service: 'dns', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: [] }));
  await handle.proxier.idle();
  t.same(fh.conntrack, ['-D -p udp --orig-dst 10.96.0.10 --dst-nat 10.244.1.54'], 'last endpoint gone');
  fh.conntrack.length = 0;
  await client.update(R.endpointslices, makeSlice({ service: 'dns', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }], endpoints: [{ ip: '10.244.1.55', node: NODE }] }));
  await handle.proxier.idle();
  t.same(fh.conntrack, ['-D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53'], 'new endpoint after none');
  fh.conntrack.length = 0;
  await client.delete(R.services, 'dns', 'default');
  await handle.proxier.idle();
  t.same(fh.conntrack, ['-D -p udp --orig-dst 10.96.0.10 --dst-nat 10.244.1.55'], 'service deleted');
});

t.test('load balancer ingress IPs become /32s on the LB bridge, and go away', async (t) => {
  const { client, fh, handle, ipt } = await setup(t);
  client.seed(R.services, makeService({ name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.0.40', lbIPs: ['172.18.255.1'], ports: [{ port: 443, nodePort: 30443 }] }));
  client.seed(R.endpointslices, makeSlice({ service: 'lb', ports: [{ port: 443 }], endpoints: [{ ip: '10.244.1.40', node: NODE }] }));
  await handle.proxier.idle();
  t.same([...(fh.devices.get('skiff0')?.keys() ?? [])], ['172.18.255.1']);
  t.same(ipt.trace({ src: '203.0.113.9', dst: '172.18.255.1', dport: 443, proto: 'tcp' }, { localAddrs: ['172.18.255.1'] }).endpoints, ['10.244.1.40:443']);
  await client.delete(R.services, 'lb', 'default');
  await handle.proxier.idle();
  t.same([...(fh.devices.get('skiff0')?.keys() ?? [])], []);
});

t.test('syncs coalesce: a burst of changes gives few restores', async (t) => {
  const { client, ipt, handle } = await setup(t, { minSyncIntervalMs: 300 });
  const before = ipt.restores.length;
  for (let i = 0; i < 50; i++) {
    await client.update(R.endpointslices, makeSlice({ service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ ip: `10.244.1.${100 + i}`, node: NODE }] }));
  }
  await handle.proxier.idle();
  t.ok(ipt.restores.length - before <= 2, `${ipt.restores.length - before} restores for 50 changes`);
  t.same(ipt.trace({ src: '10.244.3.3', dst: '10.96.0.20', dport: 80, proto: 'tcp' }, opts).endpoints, ['10.244.1.149:80'], 'last state wins');
});

t.test('health check node port answers with kube-proxy JSON', async (t) => {
  const port = await freePort();
  const { client, handle } = await setup(t, { healthCheckBindAddress: '127.0.0.1' });
  client.seed(R.services, makeService({ name: 'loc', type: 'NodePort', clusterIP: '10.96.0.60', etpLocal: true, healthCheckNodePort: port, ports: [{ port: 80, nodePort: 30060 }] }));
  client.seed(R.endpointslices, makeSlice({ service: 'loc', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.1.60', node: NODE }, { ip: '10.244.2.60', node: 'node-b' }] }));
  await handle.proxier.idle();
  let res = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(res.status, 200);
  t.same(await res.json(), { service: { namespace: 'default', name: 'loc' }, localEndpoints: 1, serviceProxyHealthy: true });
  await client.update(R.endpointslices, makeSlice({ service: 'loc', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.2.60', node: 'node-b' }] }));
  await handle.proxier.idle();
  res = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(res.status, 503);
  t.equal(res.headers.get('x-load-balancing-endpoints'), '0');
  await client.delete(R.services, 'loc', 'default');
  await handle.proxier.idle();
  await t.rejects(fetch(`http://127.0.0.1:${port}/`), 'closed with the service');
});

t.test('/healthz reports stale syncs', async (t) => {
  const now = 1_000_000;
  t.equal(proxyHealthResponse({ lastUpdated: now - 5000, oldestPending: 0, nodeEligible: true }, now, 60_000).status, 200);
  t.equal(proxyHealthResponse({ lastUpdated: now - 5000, oldestPending: now - 61_000, nodeEligible: true }, now, 60_000).status, 503);
  t.equal(proxyHealthResponse({ lastUpdated: 0, oldestPending: 0, nodeEligible: true }, now, 60_000).status, 503, 'never synced');
  const { handle } = await setup(t, { healthzBindAddress: '127.0.0.1:0' });
  const res = await fetch(`http://127.0.0.1:${handle.healthzPort}/healthz`);
  t.equal(res.status, 200);
  t.match(await res.json(), { nodeEligible: true, stale: false });
});

t.test('cleanupProxyRules removes our chains and jumps only', async (t) => {
  const { ipt, handle } = await setup(t);
  await handle.stop();
  await ipt.restore('*nat\n:OTHER-CHAIN - [0:0]\n-A PREROUTING -j OTHER-CHAIN\nCOMMIT\n', { noflush: true });
  await cleanupProxyRules(fakeHost().host, { iptables: ipt, lbDevice: null });
  t.same(ipt.chains('nat').filter((c) => !['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'].includes(c)), ['OTHER-CHAIN']);
  t.same(ipt.rules('nat', 'PREROUTING'), ['-A PREROUTING -j OTHER-CHAIN']);
  t.same(ipt.chains('filter'), ['INPUT', 'FORWARD', 'OUTPUT']);
  t.notOk(ipt.chains('mangle').includes('SKIFF-IPTABLES-HINT'));
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

t.test('a long run of partial syncs leaves the kernel equal to a fresh full render', async (t) => {
  const { client, ipt, handle } = await setup(t);
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const names = ['a', 'b', 'c', 'd', 'e'];
  for (let step = 0; step < 40; step++) {
    const name = names[rnd(names.length)];
    const i = names.indexOf(name);
    const op = rnd(4);
    const exists = await client.get(R.services, name, 'default').then(() => true, () => false);
    if (op === 0 && exists) await client.delete(R.services, name, 'default');
    else if (op === 1 || !exists) {
      const svc = makeService({ name, type: rnd(2) ? 'NodePort' : 'ClusterIP', clusterIP: `10.96.1.${i + 1}`, ports: [{ port: 80, nodePort: 30100 + i }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30200 + i }] });
      if (exists) await client.update(R.services, svc);
      else await client.create(R.services, svc);
    } else {
      const eps = Array.from({ length: rnd(4) }, (_, j) => ({ ip: `10.244.${1 + rnd(2)}.${10 * i + j}`, node: rnd(2) ? NODE : 'node-b', ready: rnd(3) > 0, serving: true, terminating: rnd(3) === 0 }));
      const slice = makeSlice({ service: name, ports: [{ port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], endpoints: eps });
      const has = await client.get(R.endpointslices, slice.metadata!.name!, 'default').then(() => true, () => false);
      if (has) await client.update(R.endpointslices, slice);
      else await client.create(R.endpointslices, slice);
    }
    await handle.proxier.idle();
  }
  const svcs = (await client.list(R.services)).items as unknown as Service[];
  const slices = (await client.list(R.endpointslices)).items as unknown as EndpointSlice[];
  const fresh = new FakeIptables();
  await fresh.restore(rulesetToText(renderRuleset(snapshotFromObjects(svcs, slices), { nodeName: NODE, clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' })), { noflush: true });
  for (const table of ['nat', 'filter'] as const) {
    const ours = (f: FakeIptables) => f.chains(table).filter((c) => c.startsWith('SKIFF-')).sort();
    t.same(ours(ipt), ours(fresh), `${table} chains`);
    for (const c of ours(fresh)) t.same(ipt.rules(table, c), fresh.rules(table, c), `${table}/${c}`);
  }
  t.ok(ipt.restores.length > 10, `${ipt.restores.length} restores, all but the first partial`);
});
