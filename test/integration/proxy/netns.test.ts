import t from 'tap';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { makeService, makeSlice, type EpSpec } from '../../../src/proxy/fixtures.js';
import { cleanupProxyRules, startProxy, type ProxyHandle } from '../../../src/proxy/index.js';
import { Lab, NODE_IP, REMOTE_IP, GATEWAY, countByName } from '../../../src/proxy/lab.js';

const NODE = 'node-a';
const ep = (ip: string, extra: Partial<EpSpec> = {}): EpSpec => ({ ip, node: NODE, ...extra });
const P1 = '10.244.1.11';
const P2 = '10.244.1.12';
const P3 = '10.244.1.13';
const C = '10.244.1.20';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('px');
  const client = new FakeApiClient();
  let proxy: ProxyHandle | undefined;
  t.teardown(async () => {
    await proxy?.stop();
    await lab.down();
  });

  const tcpSlice = (svc: string, endpoints: EpSpec[]) => makeSlice({ service: svc, ports: [{ port: 8080 }], endpoints });
  const udpSlice = (endpoints: EpSpec[]) => makeSlice({ service: 'dns', ports: [{ port: 5353, protocol: 'UDP' }], endpoints });
  const settle = () => proxy!.proxier.idle();

  t.before(async () => {
    await lab.up();
    await lab.addPod('p1', P1);
    await lab.addPod('p2', P2);
    await lab.addPod('p3', P3);
    await lab.addPod('c', C, false);
    const seed = (svc: ReturnType<typeof makeService>, slice?: ReturnType<typeof makeSlice>) => {
      client.seed(R.services, svc);
      if (slice) client.seed(R.endpointslices, slice);
    };
    client.seed(R.nodes, { metadata: { name: NODE } });
    seed(makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ port: 80, targetPort: 8080 }] }), tcpSlice('web', [ep(P1), ep(P2), ep(P3)]));
    seed(makeService({ name: 'sticky', clusterIP: '10.96.0.21', affinitySeconds: 300, ports: [{ port: 80 }] }), tcpSlice('sticky', [ep(P1), ep(P2), ep(P3)]));
    seed(makeService({ name: 'np', type: 'NodePort', clusterIP: '10.96.0.22', ports: [{ port: 80, nodePort: 30080 }] }), tcpSlice('np', [ep(P1)]));
    seed(
      makeService({ name: 'local', type: 'NodePort', clusterIP: '10.96.0.23', etpLocal: true, ports: [{ port: 80, nodePort: 30081 }] }),
      tcpSlice('local', [ep(P1), ep('10.244.2.99', { node: 'node-b' })]),
    );
    seed(makeService({ name: 'empty', type: 'NodePort', clusterIP: '10.96.0.24', ports: [{ port: 80, nodePort: 30083 }] }));
    seed(makeService({ name: 'self', clusterIP: '10.96.0.25', ports: [{ port: 80 }] }), tcpSlice('self', [ep(P1)]));
    seed(makeService({ name: 'dns', clusterIP: '10.96.0.26', ports: [{ port: 53, protocol: 'UDP' }] }), udpSlice([ep(P1)]));
    seed(
      makeService({ name: 'drain', clusterIP: '10.96.0.27', ports: [{ port: 80 }] }),
      tcpSlice('drain', [ep(P2, { ready: false, serving: true, terminating: true }), ep(P3)]),
    );
    seed(
      makeService({ name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.0.28', lbIPs: ['172.18.255.1'], ports: [{ port: 80, nodePort: 30082 }] }),
      tcpSlice('lb', [ep(P2)]),
    );
    proxy = await startProxy({ client, host: lab.nodeHost, nodeName: NODE, backend: 'nft', minSyncIntervalMs: 20, healthCheckBindAddress: null });
    await settle();
  });

  t.test('cluster IP spreads over endpoints (chi-square over 600 connections)', async (t) => {
    const r = await lab.probe('c', ['tcp', '10.96.0.20', 80, 600]);
    t.same(r.errors, {});
    const counts = countByName(r.replies);
    t.same([...counts.keys()].sort(), ['p1', 'p2', 'p3']);
    const chi2 = [...counts.values()].reduce((s, n) => s + (n - 200) ** 2 / 200, 0);
    // df=2: P(chi2 > 27.6) = 1e-6 for a fair spread; 1/n on every rule would give ~44.
    t.ok(chi2 < 27.6, `chi2=${chi2.toFixed(1)} ${JSON.stringify([...counts])}`);
    t.ok(r.replies.every((x) => x.endsWith(` ${C}`)), 'pod source IP kept inside the cluster');
  });

  t.test('session affinity sticks', async (t) => {
    const r = await lab.probe('c', ['tcp', '10.96.0.21', 80, 40]);
    t.equal(r.replies.length, 40);
    t.equal(countByName(r.replies).size, 1, `all from ${r.replies[0]}`);
  });

  t.test('node port from another host and from 127.0.0.1', async (t) => {
    const remote = await lab.probe('remote', ['tcp', NODE_IP, 30080, 5]);
    t.same(remote.replies, Array(5).fill(`p1 ${GATEWAY}`), 'masqueraded to the node');
    const lo = await lab.probe('node', ['tcp', '127.0.0.1', 30080, 5]);
    t.same(countByName(lo.replies), new Map([['p1', 5]]));
  });

  t.test('externalTrafficPolicy Local keeps the client IP and uses local endpoints only', async (t) => {
    const r = await lab.probe('remote', ['tcp', NODE_IP, 30081, 20]);
    t.same(r.errors, {});
    t.same(r.replies, Array(20).fill(`p1 ${REMOTE_IP}`));
  });

  t.test('no endpoints: connection refused at once (pod, node, node port)', async (t) => {
    t.same((await lab.probe('c', ['tcp', '10.96.0.24', 80, 3])).errors, { ECONNREFUSED: 3 });
    t.same((await lab.probe('node', ['tcp', '10.96.0.24', 80, 3])).errors, { ECONNREFUSED: 3 });
    t.same((await lab.probe('remote', ['tcp', NODE_IP, 30083, 3])).errors, { ECONNREFUSED: 3 });
    t.same((await lab.probe('c', ['tcp', '10.96.5.5', 80, 1])).errors, { TIMEOUT: 1 }, 'unallocated service IP dropped');
  });

  t.test('hairpin: a pod reaches itself through its service', async (t) => {
    const r = await lab.probe('p1', ['tcp', '10.96.0.25', 80, 3]);
    t.same(r.replies, Array(3).fill(`p1 ${GATEWAY}`));
  });

  t.test('terminating endpoint used only when nothing else is ready', async (t) => {
    t.same(countByName((await lab.probe('c', ['tcp', '10.96.0.27', 80, 20])).replies), new Map([['p3', 20]]));
    await client.update(R.endpointslices, tcpSlice('drain', [ep(P2, { ready: false, serving: true, terminating: true })]));
    await settle();
    t.same(countByName((await lab.probe('c', ['tcp', '10.96.0.27', 80, 20])).replies), new Map([['p2', 20]]));
  });

  t.test('UDP keeps working when the endpoint is replaced, and after none then a new one', async (t) => {
    const sport = 40001;
    t.same((await lab.probe('c', ['udp', '10.96.0.26', 53, 3, sport])).replies, Array(3).fill(`p1 ${C}`));
    t.match(await lab.nodeExec('conntrack', '-L', '-p', 'udp', '--orig-dst', '10.96.0.26'), /src=10\.244\.1\.11 /, 'flow to p1 tracked');
    await client.update(R.endpointslices, udpSlice([ep(P2)]));
    await settle();
    t.same((await lab.probe('c', ['udp', '10.96.0.26', 53, 3, sport])).replies, Array(3).fill(`p2 ${C}`), 'same client port now reaches p2');
    await client.update(R.endpointslices, udpSlice([]));
    await settle();
    t.same((await lab.probe('c', ['udp', '10.96.0.26', 53, 1, sport])).errors, { NOREPLY: 1 });
    await client.update(R.endpointslices, udpSlice([ep(P3)]));
    await settle();
    t.same((await lab.probe('c', ['udp', '10.96.0.26', 53, 3, sport])).replies, Array(3).fill(`p3 ${C}`), 'new endpoint after none');
  });

  t.test('load balancer IP is made local on skiff0 and reachable from another host', async (t) => {
    t.match(await lab.nodeExec('ip', '-4', '-o', 'addr', 'show', 'dev', 'skiff0'), /172\.18\.255\.1\/32/);
    const r = await lab.probe('remote', ['tcp', '172.18.255.1', 80, 5]);
    t.same(countByName(r.replies), new Map([['p2', 5]]));
  });

  t.test('partial sync touches only the changed chain in the kernel', async (t) => {
    const before = await lab.nodeExec('iptables-nft-save', '-t', 'nat');
    await client.update(R.endpointslices, tcpSlice('web', [ep(P1), ep(P2)]));
    await settle();
    const after = await lab.nodeExec('iptables-nft-save', '-t', 'nat');
    const diff = (a: string, b: string) => a.split('\n').filter((l) => l.startsWith('-A') && !b.split('\n').includes(l));
    const gone = diff(before, after);
    const added = diff(after, before);
    t.ok(gone.length > 0 && gone.every((l) => l.includes('default/web:')), 'only default/web rules went away');
    t.ok(added.length > 0 && added.every((l) => l.includes('default/web:')), `only re-weighted default/web rules are new: ${added.join(' | ')}`);
    const r = await lab.probe('c', ['tcp', '10.96.0.20', 80, 60]);
    t.same([...countByName(r.replies).keys()].sort(), ['p1', 'p2']);
  });

  t.test('large-cluster mode (over 1,000 endpoints): uncommented endpoint rules in the kernel, same traffic', async (t) => {
    const many = Array.from({ length: 1000 }, (_, j) => ep(`10.245.${j >> 8}.${j & 255}`, { node: 'node-b' }));
    await client.create(R.services, makeService({ name: 'big', clusterIP: '10.96.0.30', ports: [{ port: 80 }] }));
    await client.create(R.endpointslices, tcpSlice('big', many));
    await settle();
    const save = await lab.nodeExec('iptables-nft-save', '-t', 'nat');
    const dnat = save.split('\n').filter((l) => l.startsWith('-A SKIFF-SVC-') && l.includes('DNAT'));
    t.ok(dnat.length > 1000, `${dnat.length} DNAT rules`);
    t.notOk(dnat.some((l) => l.includes('--comment')), 'endpoint rules carry no comment');
    t.match(save, /--comment "default\/web: cluster IP"/, 'the SERVICES jumps keep theirs');
    t.same([...countByName((await lab.probe('c', ['tcp', '10.96.0.20', 80, 60])).replies).keys()].sort(), ['p1', 'p2'], 'cluster IP spreads');
    t.equal(countByName((await lab.probe('c', ['tcp', '10.96.0.21', 80, 20])).replies).size, 1, 'affinity sticks');
    t.same((await lab.probe('p1', ['tcp', '10.96.0.25', 80, 3])).replies, Array(3).fill(`p1 ${GATEWAY}`), 'hairpin');
    await client.delete(R.services, 'big', 'default');
    await client.delete(R.endpointslices, 'big-abc', 'default');
    await settle();
    t.match(await lab.nodeExec('iptables-nft-save', '-t', 'nat'), /--comment "default\/web: -> 10\.244\.1\.11:8080"/, 'back under the threshold: commented');
  });

  t.test('cleanupProxyRules removes every SKIFF- chain, jump and LB address', async (t) => {
    await proxy!.stop();
    proxy = undefined;
    await cleanupProxyRules(lab.nodeHost, { backend: 'nft' });
    for (const table of ['nat', 'filter', 'mangle']) t.notMatch(await lab.nodeExec('iptables-nft-save', '-t', table), /SKIFF-/, table);
    t.notMatch(await lab.nodeExec('ip', '-4', '-o', 'addr', 'show', 'dev', 'skiff0'), /172\.18\.255\.1/);
  });

  t.test('legacy backend: cluster IP and node port work too', async (t) => {
    proxy = await startProxy({ client, host: lab.nodeHost, nodeName: NODE, backend: 'legacy', minSyncIntervalMs: 20, healthCheckBindAddress: null });
    await settle();
    t.match(await lab.nodeExec('iptables-legacy-save', '-t', 'nat'), /SKIFF-SERVICES/);
    const r = await lab.probe('c', ['tcp', '10.96.0.20', 80, 40]);
    t.same([...countByName(r.replies).keys()].sort(), ['p1', 'p2']);
    t.same((await lab.probe('remote', ['tcp', NODE_IP, 30080, 3])).replies, Array(3).fill(`p1 ${GATEWAY}`));
    t.same((await lab.probe('c', ['tcp', '10.96.0.24', 80, 1])).errors, { ECONNREFUSED: 1 });
    await proxy.stop();
    proxy = undefined;
    await cleanupProxyRules(lab.nodeHost, { backend: 'legacy' });
    t.notMatch(await lab.nodeExec('iptables-legacy-save'), /SKIFF-/);
  });
}
