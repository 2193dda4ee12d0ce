import t from 'tap';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { KubeObject } from '../api/object.js';
import { FakeIptables } from '../host/iptables-fake.js';
import type { TracePacket, TraceOptions } from '../host/iptables-trace.js';
import { makeService, makeSlice } from './fixtures.js';
import { ipToNum, snapshotFromObjects, sortEndpoints } from './model.js';
import { countRules, renderRestore, renderRuleset, rulesetToText, type RenderContext } from './render.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '../../test/golden/proxy');
const ctx: RenderContext = { nodeName: 'node-a', clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12' };
const NODE_IP = '192.168.50.2';
const traceOpts: TraceOptions = { localAddrs: [NODE_IP, '172.18.255.1'] };

function render(objs: KubeObject[], c: RenderContext = ctx): string {
  const svcs = objs.filter((o) => o.kind === 'Service') as unknown as Service[];
  const slices = objs.filter((o) => o.kind === 'EndpointSlice') as unknown as EndpointSlice[];
  return rulesetToText(renderRuleset(snapshotFromObjects(svcs, slices), c));
}

async function loaded(objs: KubeObject[]): Promise<FakeIptables> {
  const ipt = new FakeIptables();
  await ipt.restore(render(objs), { noflush: true });
  // The jumps from built-in chains, as the proxier ensures them.
  const { jumpRules } = await import('./chains.js');
  for (const j of jumpRules()) await ipt.ensureRule(j);
  return ipt;
}

const tcp = (src: string, dst: string, dport: number, extra: Partial<TracePacket> = {}): TracePacket => ({ src, dst, dport, proto: 'tcp', ...extra });

const shapes: Record<string, KubeObject[]> = {
  clusterip: [
    makeService({ name: 'web', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    makeSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: '10.244.1.5', node: 'node-a' }, { ip: '10.244.1.6', node: 'node-a' }, { ip: '10.244.2.7', node: 'node-b' }] }),
  ],
  nodeport: [
    makeService({ name: 'np', type: 'NodePort', clusterIP: '10.96.0.30', ports: [{ name: 'tcp', port: 80, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] }),
    makeSlice({ service: 'np', ports: [{ name: 'tcp', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }], endpoints: [{ ip: '10.244.1.8', node: 'node-a' }, { ip: '10.244.2.8', node: 'node-b' }] }),
  ],
  loadbalancer: [
    makeService({ name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.0.40', lbIPs: ['172.18.255.1'], sourceRanges: ['203.0.113.0/24'], ports: [{ port: 443, nodePort: 30443 }] }),
    makeSlice({ service: 'lb', ports: [{ port: 8443 }], endpoints: [{ ip: '10.244.2.9', node: 'node-b' }] }),
  ],
  externalips: [
    makeService({ name: 'ext', clusterIP: '10.96.0.50', externalIPs: ['198.51.100.7'], ports: [{ port: 80 }] }),
    makeSlice({ service: 'ext', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.2.10', node: 'node-b' }] }),
  ],
  'etp-local': [
    makeService({ name: 'loc', type: 'NodePort', clusterIP: '10.96.0.60', etpLocal: true, healthCheckNodePort: 32000, ports: [{ port: 80, nodePort: 30060 }] }),
    makeSlice({ service: 'loc', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.1.11', node: 'node-a' }, { ip: '10.244.2.11', node: 'node-b' }] }),
  ],
  'etp-local-none-here': [
    makeService({ name: 'far', type: 'NodePort', clusterIP: '10.96.0.61', etpLocal: true, ports: [{ port: 80, nodePort: 30061 }] }),
    makeSlice({ service: 'far', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.2.12', node: 'node-b' }] }),
  ],
  'itp-local': [
    makeService({ name: 'itp', clusterIP: '10.96.0.70', itpLocal: true, ports: [{ port: 80 }] }),
    makeSlice({ service: 'itp', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.1.13', node: 'node-a' }, { ip: '10.244.2.13', node: 'node-b' }] }),
  ],
  affinity: [
    makeService({ name: 'sticky', clusterIP: '10.96.0.80', affinitySeconds: 600, ports: [{ port: 80 }] }),
    makeSlice({ service: 'sticky', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.2.14', node: 'node-b' }, { ip: '10.244.2.15', node: 'node-b' }] }),
  ],
  'no-endpoints': [
    makeService({ name: 'empty', type: 'NodePort', clusterIP: '10.96.0.90', ports: [{ name: 'tcp', port: 80, nodePort: 30090 }, { name: 'udp', port: 53, protocol: 'UDP', nodePort: 30091 }] }),
  ],
  terminating: [
    makeService({ name: 'drain', clusterIP: '10.96.0.100', ports: [{ port: 80 }] }),
    makeSlice({
      service: 'drain',
      ports: [{ port: 80 }],
      endpoints: [
        { ip: '10.244.2.16', node: 'node-b', ready: false, serving: true, terminating: true },
        { ip: '10.244.2.17', node: 'node-b', ready: false, serving: false, terminating: true },
      ],
    }),
  ],
};

t.test('golden renders per service shape', async (t) => {
  if (!existsSync(GOLDEN)) mkdirSync(GOLDEN, { recursive: true });
  for (const [name, objs] of Object.entries(shapes)) {
    const text = render(objs);
    const file = join(GOLDEN, `${name}.rules`);
    if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, text);
    t.equal(text, readFileSync(file, 'utf8'), `${name} matches ${file}`);
    t.equal(render([...objs].reverse()), text, `${name} is deterministic`);
    // The kernel model must accept every render.
    await t.resolves(loaded(objs), `${name} restores`);
  }
});

t.test('large-cluster mode: endpoint rules without comments, same packet paths', async (t) => {
  const objs = [...shapes.clusterip, ...shapes.affinity];
  const large = { ...ctx, largeCluster: true };
  const text = render(objs, large);
  const file = join(GOLDEN, 'large-cluster.rules');
  if (process.env.UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, text);
  t.equal(text, readFileSync(file, 'utf8'), `matches ${file}`);
  const endpointLines = text.split('\n').filter((l) => l.startsWith('-A SKIFF-SVC-'));
  t.ok(endpointLines.length >= 7, 'has hairpin, affinity and DNAT lines');
  t.notOk(endpointLines.some((l) => l.includes('--comment')), 'none of them carries a comment');
  t.ok(text.includes('--comment "default/web:http cluster IP"'), 'the SERVICES jump is still commented');
  const small = new FakeIptables();
  await small.restore(render(objs), { noflush: true });
  const big = new FakeIptables();
  await big.restore(text, { noflush: true });
  for (const pkt of [tcp('10.244.3.3', '10.96.0.20', 80), tcp('10.244.1.5', '10.96.0.20', 80), tcp('10.244.3.3', '10.96.0.80', 80)]) {
    t.same(big.trace(pkt, traceOpts), small.trace(pkt, traceOpts), `${pkt.src} -> ${pkt.dst}: same trace`);
  }
});

t.test('cluster IP: random spread over ready endpoints, masquerade only off-cluster', async (t) => {
  const ipt = await loaded(shapes.clusterip);
  const fromPod = ipt.trace(tcp('10.244.3.3', '10.96.0.20', 80), traceOpts);
  t.same(fromPod.endpoints, ['10.244.1.5:8080', '10.244.1.6:8080', '10.244.2.7:8080']);
  t.equal(fromPod.masquerade, false);
  const fromNode = ipt.trace(tcp(NODE_IP, '10.96.0.20', 80, { local: true }), traceOpts);
  t.same(fromNode.endpoints, fromPod.endpoints);
  t.equal(fromNode.masquerade, true);
  const rules = ipt.rules('nat', ipt.chains('nat').find((c) => c.startsWith('SKIFF-SVC-'))!);
  t.match(rules.join('\n'), /--probability 0\.3333333333.*\n.*--probability 0\.5000000000/);
  // Seeded random walk: each endpoint gets about a third.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const r = ipt.trace(tcp('10.244.3.3', '10.96.0.20', 80), { ...traceOpts, random: rnd });
    counts.set(r.endpoints[0], (counts.get(r.endpoints[0]) ?? 0) + 1);
  }
  for (const [ep, n] of counts) t.ok(n > 850 && n < 1150, `${ep} got ${n} of 3000`);
  t.same(ipt.trace(tcp('10.244.3.3', '10.96.0.20', 81), traceOpts).verdicts, ['DROP'], 'wrong port on a service IP is dropped');
});

t.test('hairpin: an endpoint reaching its own service is masqueraded', async (t) => {
  const ipt = await loaded(shapes.clusterip);
  const r = ipt.trace(tcp('10.244.1.5', '10.96.0.20', 80), traceOpts);
  const self = r.outcomes.find((o) => o.dst === '10.244.1.5');
  t.ok(self, 'can reach itself');
  t.equal(self!.masquerade, true);
});

t.test('node ports: every local address and 127.0.0.1, TCP and UDP, masqueraded', async (t) => {
  const ipt = await loaded(shapes.nodeport);
  const ext = ipt.trace(tcp('203.0.113.9', NODE_IP, 30080), traceOpts);
  t.same(ext.endpoints, ['10.244.1.8:80', '10.244.2.8:80']);
  t.equal(ext.masquerade, true);
  const lo = ipt.trace(tcp('127.0.0.1', '127.0.0.1', 30080, { local: true }), traceOpts);
  t.same(lo.endpoints, ext.endpoints);
  t.equal(lo.masquerade, true);
  const udp = ipt.trace({ src: '203.0.113.9', dst: NODE_IP, dport: 30053, proto: 'udp' }, traceOpts);
  t.same(udp.endpoints, ['10.244.1.8:53', '10.244.2.8:53']);
  const other = ipt.trace(tcp('203.0.113.9', NODE_IP, 30081), traceOpts);
  t.same(other.endpoints, [], 'other ports are not ours');
  t.same(other.verdicts, ['ACCEPT']);
  const foreign = ipt.trace(tcp('203.0.113.9', '192.168.50.99', 30080), traceOpts);
  t.same(foreign.endpoints, [], 'node port only on local addresses');
});

t.test('load balancer: ingress IP like a node port, source ranges enforced', async (t) => {
  const ipt = await loaded(shapes.loadbalancer);
  const ok = ipt.trace(tcp('203.0.113.9', '172.18.255.1', 443), traceOpts);
  t.same(ok.endpoints, ['10.244.2.9:8443']);
  t.equal(ok.masquerade, true);
  const denied = ipt.trace(tcp('198.51.100.1', '172.18.255.1', 443), traceOpts);
  t.same(denied.verdicts, ['DROP']);
  t.same(denied.endpoints, []);
});

t.test('external IPs', async (t) => {
  const ipt = await loaded(shapes.externalips);
  const r = ipt.trace(tcp('203.0.113.9', '198.51.100.7', 80), traceOpts);
  t.same(r.endpoints, ['10.244.2.10:80']);
  t.equal(r.masquerade, true);
});

t.test('externalTrafficPolicy Local: local endpoints, client IP kept; pods and node use all', async (t) => {
  const ipt = await loaded(shapes['etp-local']);
  const ext = ipt.trace(tcp('203.0.113.9', NODE_IP, 30060), traceOpts);
  t.same(ext.endpoints, ['10.244.1.11:80']);
  t.equal(ext.masquerade, false);
  const pod = ipt.trace(tcp('10.244.1.20', NODE_IP, 30060), traceOpts);
  t.same(pod.endpoints, ['10.244.1.11:80', '10.244.2.11:80']);
  const node = ipt.trace(tcp(NODE_IP, NODE_IP, 30060, { local: true }), traceOpts);
  t.same(node.endpoints, ['10.244.1.11:80', '10.244.2.11:80']);
  t.equal(node.masquerade, true);

  const far = await loaded(shapes['etp-local-none-here']);
  const dropped = far.trace(tcp('203.0.113.9', NODE_IP, 30061), traceOpts);
  t.same(dropped.verdicts, ['DROP'], 'no local endpoint: external traffic dropped');
  t.same(far.trace(tcp('10.244.1.20', '10.96.0.61', 80), traceOpts).endpoints, ['10.244.2.12:80'], 'cluster IP still works');
});

t.test('internalTrafficPolicy Local', async (t) => {
  const ipt = await loaded(shapes['itp-local']);
  t.same(ipt.trace(tcp('10.244.1.20', '10.96.0.70', 80), traceOpts).endpoints, ['10.244.1.13:80']);
});

t.test('no endpoints: REJECT at once (tcp reset, icmp for udp); unallocated service IP dropped', async (t) => {
  const ipt = await loaded(shapes['no-endpoints']);
  const r = ipt.trace(tcp('10.244.1.20', '10.96.0.90', 80), traceOpts);
  t.same(r.verdicts, ['REJECT']);
  t.equal(r.outcomes[0].rejectWith, 'tcp-reset');
  const u = ipt.trace({ src: '10.244.1.20', dst: '10.96.0.90', dport: 53, proto: 'udp' }, traceOpts);
  t.equal(u.outcomes[0].rejectWith, 'icmp-port-unreachable');
  t.same(ipt.trace(tcp(NODE_IP, '10.96.0.90', 80, { local: true }), traceOpts).verdicts, ['REJECT'], 'from the node too');
  t.same(ipt.trace(tcp('203.0.113.9', NODE_IP, 30090), traceOpts).verdicts, ['REJECT'], 'node port');
  t.same(ipt.trace(tcp('10.244.1.20', '10.96.7.7', 80), traceOpts).verdicts, ['DROP'], 'unallocated');
  // Marked for masquerade by the shared rule (off the pod network), still dropped before SKIFF-FORWARD accepts it.
  t.same(ipt.trace(tcp('203.0.113.9', '10.96.7.7', 80), traceOpts).verdicts, ['DROP'], 'unallocated, from off the pod network');
  t.same(ipt.trace(tcp('203.0.113.9', '10.96.0.90', 80), traceOpts).verdicts, ['REJECT'], 'no endpoints, from off the pod network');
  t.same(ipt.trace(tcp('10.244.1.20', '10.95.0.1', 80), traceOpts).verdicts, ['ACCEPT'], 'outside the service CIDR untouched');
});

t.test('terminating endpoints used only when nothing is ready', async (t) => {
  const ipt = await loaded(shapes.terminating);
  t.same(ipt.trace(tcp('10.244.1.20', '10.96.0.100', 80), traceOpts).endpoints, ['10.244.2.16:80'], 'serving terminating one');
  const mixed = [
    shapes.terminating[0],
    makeSlice({ service: 'drain', ports: [{ port: 80 }], endpoints: [{ ip: '10.244.2.16', node: 'node-b', ready: false, serving: true, terminating: true }, { ip: '10.244.2.18', node: 'node-b' }] }),
  ];
  t.same((await loaded(mixed)).trace(tcp('10.244.1.20', '10.96.0.100', 80), traceOpts).endpoints, ['10.244.2.18:80'], 'ready one wins');
});

t.test('session affinity: a client sticks to its endpoint', async (t) => {
  const ipt = await loaded(shapes.affinity);
  t.same(ipt.trace(tcp('10.244.1.20', '10.96.0.80', 80), traceOpts).endpoints, ['10.244.2.14:80', '10.244.2.15:80']);
  const recent = new Map<string, Set<string>>();
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const client of ['10.244.1.20', '10.244.1.21', '10.244.1.22', '10.244.1.23']) {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(ipt.trace(tcp(client, '10.96.0.80', 80), { ...traceOpts, random: rnd, recent }).endpoints[0]);
    t.equal(seen.size, 1, `${client} always reaches ${[...seen][0]}`);
  }
});

t.test('partial restore converges to the same state as a full one', async (t) => {
  const before = [...shapes.clusterip, ...shapes.nodeport, ...shapes.affinity];
  const after = [
    ...shapes.clusterip.slice(0, 1),
    makeSlice({ service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: [{ ip: '10.244.1.5', node: 'node-a' }] }),
    ...shapes.nodeport,
    ...shapes['no-endpoints'],
  ];
  const snap = (objs: KubeObject[]) =>
    renderRuleset(snapshotFromObjects(objs.filter((o) => o.kind === 'Service') as unknown as Service[], objs.filter((o) => o.kind === 'EndpointSlice') as unknown as EndpointSlice[]), ctx);
  const prev = snap(before);
  const next = snap(after);
  const ipt = new FakeIptables();
  await ipt.restore(renderRestore(prev, null).text, { noflush: true });
  const doc = renderRestore(next, prev);
  t.notMatch(doc.text, /SKIFF-NODEPORTS - /, 'unchanged node ports chain not rewritten');
  t.match(doc.text, /-X SKIFF-SVC-/, 'removed service chain deleted');
  await ipt.restore(doc.text, { noflush: true });
  const fresh = new FakeIptables();
  await fresh.restore(renderRestore(next, null).text, { noflush: true });
  for (const table of ['nat', 'filter'] as const) {
    t.same(ipt.chains(table).sort(), fresh.chains(table).sort(), `${table} chains`);
    for (const c of fresh.chains(table)) t.same(ipt.rules(table, c), fresh.rules(table, c), `${table}/${c}`);
  }
  t.equal(renderRestore(next, next).text, '', 'unchanged render gives an empty document');
});

t.test('fake iptables rejects what the kernel would', async (t) => {
  const ipt = new FakeIptables();
  const bad: [string, RegExp][] = [
    ['*nat\n:SKIFF-X - [0:0]\n-A SKIFF-X -j DROP\nCOMMIT\n', /line 3 failed.*nat/],
    ['*nat\n:SKIFF-X - [0:0]\n-A SKIFF-X -j SKIFF-MISSING\nCOMMIT\n', /line 3 failed/],
    ['*filter\n:SKIFF-THIS-NAME-IS-FAR-TOO-LONG-X - [0:0]\nCOMMIT\n', /line 2 failed.*too long/],
    ['*nat\n:SKIFF-X - [0:0]\n-A SKIFF-X -p tcp -j DNAT --to-destination 1.2.3.4:80\n', /COMMIT expected/],
    ['*nat\n:SKIFF-X - [0:0]\n-A SKIFF-X -j DNAT --to-destination 1.2.3.4:80\nCOMMIT\n', /Need TCP/],
    ['*nat\n:SKIFF-X - [0:0]\n-A SKIFF-X -m bogus -j ACCEPT\nCOMMIT\n', /bogus/],
  ];
  for (const [text, re] of bad) await t.rejects(ipt.restore(text, { noflush: true }), re, text.split('\n')[2] ?? text);
  await ipt.restore('*nat\n:SKIFF-A - [0:0]\n:SKIFF-B - [0:0]\n-A SKIFF-A -j SKIFF-B\nCOMMIT\n', { noflush: true });
  await t.rejects(ipt.restore('*nat\n-X SKIFF-B\nCOMMIT\n', { noflush: true }), /referenced/, 'referenced chain cannot go');
  t.same(ipt.chains('nat').filter((c) => c.startsWith('SKIFF')), ['SKIFF-A', 'SKIFF-B'], 'failed restore changed nothing');
  await ipt.restore('*nat\n:SKIFF-A - [0:0]\n:SKIFF-B - [0:0]\n-X SKIFF-A\n-X SKIFF-B\nCOMMIT\n', { noflush: true });
  t.same(ipt.chains('nat').filter((c) => c.startsWith('SKIFF')), [], 'flushed then deleted in one document');
});

t.test('restore layout: service port chains declared before use, in descending name order', async (t) => {
  // iptables-nft-restore scans a sorted list of the chain names seen so far for every line; this
  // layout keeps each name it looks up near the head of that list (see renderRestoreChanges).
  const all = Object.values(shapes).flat();
  const doc = render(all);
  const nat = doc.slice(doc.indexOf('*nat'));
  const declared: string[] = [];
  for (const line of nat.split('\n')) {
    if (line.startsWith(':')) {
      declared.push(line.slice(1).split(' ')[0]);
      continue;
    }
    const m = /^-A (\S+) .*-j (SKIFF-\S+)/.exec(line);
    if (!m) continue;
    t.ok(declared.includes(m[1]), `${m[1]} declared before its rules`);
    t.ok(declared.includes(m[2]), `${m[2]} declared before a jump to it`);
    if (/^SKIFF-(SVC|SVL|EXT)-/.test(m[1])) t.equal(m[1], declared.at(-1), `${m[1]} rules follow its declaration`);
  }
  const own = declared.filter((c) => /^SKIFF-(SVC|SVL|EXT)-/.test(c));
  t.ok(own.length > 10, 'many service port chains');
  t.same(own, [...own].sort().reverse(), 'descending names');
  // The same kernel state whatever the layout: SERVICES rules in one order in text and in the kernel.
  const ipt = new FakeIptables();
  await ipt.restore(doc, { noflush: true });
  const services = nat.split('\n').filter((l) => l.startsWith('-A SKIFF-SERVICES '));
  t.same(ipt.rules('nat', 'SKIFF-SERVICES').length, services.length);
  t.match(services.at(-1), /must be the last rule/);
});

t.test('the legacy layout declares every chain first and gives the same kernel state', async (t) => {
  const all = Object.values(shapes).flat();
  const svcs = all.filter((o) => o.kind === 'Service') as unknown as Service[];
  const slices = all.filter((o) => o.kind === 'EndpointSlice') as unknown as EndpointSlice[];
  const rs = renderRuleset(snapshotFromObjects(svcs, slices), ctx);
  const legacy = renderRestore(rs, null, undefined, 'legacy').text;
  const nat = legacy.slice(legacy.indexOf('*nat')).split('\n');
  const firstRule = nat.findIndex((l) => l.startsWith('-A '));
  t.notOk(nat.slice(firstRule).some((l) => l.startsWith(':')), 'no declaration after the first rule');
  const a = new FakeIptables('legacy');
  await a.restore(legacy, { noflush: true });
  const b = new FakeIptables();
  await b.restore(renderRestore(rs, null).text, { noflush: true });
  for (const table of ['nat', 'filter'] as const) {
    t.same(a.chains(table).sort(), b.chains(table).sort(), `${table} chains`);
    for (const c of b.chains(table)) t.same(a.rules(table, c), b.rules(table, c), `${table}/${c}`);
  }
  const total = countRules(rs.nat) + countRules(rs.filter);
  t.equal(renderRestore(rs, null).rules, total, 'nft document counts every rule');
  t.equal(renderRestore(rs, null, undefined, 'legacy').rules, total, 'legacy document counts every rule');
  t.equal(total, (legacy.match(/^-A /gm) ?? []).length);
});

t.test('endpoints sort by address as numbers, then port', async (t) => {
  const ep = (ip: string, port: number) => ({ ip, port, ready: true, serving: true, terminating: false });
  const sorted = sortEndpoints([ep('10.0.0.10', 80), ep('10.0.0.9', 81), ep('9.255.255.255', 80), ep('10.0.0.9', 80)]);
  t.same(sorted.map((e) => `${e.ip}:${e.port}`), ['9.255.255.255:80', '10.0.0.9:80', '10.0.0.9:81', '10.0.0.10:80']);
  t.equal(ipToNum('10.96.0.1'), 10 * 2 ** 24 + 96 * 2 ** 16 + 1);
});
