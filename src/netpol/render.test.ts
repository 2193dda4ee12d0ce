import t from 'tap';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetworkPolicySpec } from 'kubernetes-types/networking/v1.js';
import { podKey, type Protocol, type Snapshot } from './model.js';
import { renderNetpol, renderText } from './render.js';
import { endpointOf, evaluate, Selection } from './select.js';
import { FilterTracer } from './trace.js';
import { xyz } from './testing.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '../../test/golden/netpol');
const OPTS = { podCIDR: '10.244.0.0/24', dropLog: { tag: 'test', ratePerSec: 10 } };

function golden(t: { equal: (a: string, b: string, m: string) => void }, name: string, text: string): void {
  const file = join(GOLDEN, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, text);
  }
  t.equal(text, readFileSync(file, 'utf8'), `golden ${name}`);
}

const SUITE: Record<string, [string, string, NetworkPolicySpec][]> = {
  'no-policies': [],
  'deny-all-ingress-x': [['x', 'deny-all', { podSelector: {} }]],
  'allow-ns-y-and-pod-b': [
    ['x', 'allow', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }, { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['c'] }] } }], ports: [{ port: 80 }, { port: 'serve-81-udp', protocol: 'UDP' }] }],
    }],
  ],
  'egress-named-ports-ipblock': [
    ['x', 'egress', {
      podSelector: {},
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 'serve-81-tcp' }] },
        { to: [{ ipBlock: { cidr: '10.244.0.0/24', except: ['10.244.0.16/28'] } }], ports: [{ port: 80, endPort: 81, protocol: 'UDP' }, { protocol: 'SCTP', port: 80 }] },
      ],
    }],
    ['y', 'deny-egress', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'] }],
  ],
  'multiport': [
    ['x', 'ports', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80 }, { port: 'serve-81-tcp' }, { port: 'serve-80-udp', protocol: 'UDP' }, { port: 'missing' }] }],
      egress: [{ ports: [{ port: 81, protocol: 'UDP' }, { port: 79, endPort: 80, protocol: 'UDP' }, { port: 81 }] }],
    }],
  ],
};

t.test('golden render', async (t) => {
  for (const [name, pols] of Object.entries(SUITE)) golden(t, name, renderText(renderNetpol(xyz(pols), OPTS)));
});

t.test('render is deterministic whatever the input order', async (t) => {
  const snap = xyz(SUITE['allow-ns-y-and-pod-b']);
  const shuffled: Snapshot = { ...snap, pods: [...snap.pods].reverse(), namespaces: [...snap.namespaces].reverse() };
  t.equal(renderText(renderNetpol(shuffled, OPTS)), renderText(renderNetpol(snap, OPTS)));
});

t.test('chains only for isolated pods; identical pods share a chain', async (t) => {
  const r = renderNetpol(xyz(SUITE['deny-all-ingress-x']), OPTS);
  const podChains = [...r.chains.keys()].filter((c) => /^SKIFF-NP-[IE]-/.test(c));
  t.equal(podChains.length, 1, 'x/a, x/b, x/c share one ingress chain');
  t.same([...r.pods.values()].filter((p) => p.ingressChain).map((p) => p.pod), ['x/a', 'x/b', 'x/c']);
  t.equal(r.known.length, 9);
  const remote = renderNetpol(xyz(SUITE['deny-all-ingress-x'], 'node-b'), OPTS);
  t.equal(remote.known.length, 0, 'pods of other nodes are not programmed here');
});

/** The rendered rules, traced like the kernel would, agree with the reference semantics for every pair. */
t.test('trace agrees with evaluate for every pod pair, port and protocol', async (t) => {
  for (const [name, pols] of Object.entries(SUITE)) {
    const snap = xyz(pols);
    const tracer = new FilterTracer(renderNetpol(snap, OPTS));
    const sel = new Selection(snap);
    let mismatches = 0;
    let denied = 0;
    for (const from of snap.pods) for (const to of snap.pods) {
      if (from === to) continue;
      for (const port of [79, 80, 81]) for (const proto of ['TCP', 'UDP', 'SCTP'] as Protocol[]) {
        const want = evaluate(sel, endpointOf(sel, podKey(from))!, endpointOf(sel, podKey(to))!, port, proto).allowed;
        const got = tracer.trace({ src: from.ips[0], dst: to.ips[0], protocol: proto.toLowerCase() as 'tcp', dport: port });
        if (!want) denied++;
        if ((got.verdict === 'ACCEPT') !== want) {
          mismatches++;
          t.fail(`${name}: ${podKey(from)} -> ${podKey(to)}:${port}/${proto} want ${want} got ${got.verdict}`);
        }
        if (got.verdict === 'DROP') t.equal(got.logged.length, 1, 'every drop is logged once');
        if (got.verdict === 'ACCEPT' && got.logged.length) t.fail('allowed traffic was logged');
      }
    }
    t.equal(mismatches, 0, `${name}: all pairs agree (${denied} denied)`);
  }
});

t.test('replies of allowed connections pass; the gate darkens unknown pod addresses', async (t) => {
  const tracer = new FilterTracer(renderNetpol(xyz(SUITE['deny-all-ingress-x']), OPTS));
  t.equal(tracer.trace({ src: '10.244.0.13', dst: '10.244.0.10', protocol: 'tcp', dport: 80 }).verdict, 'DROP');
  t.equal(tracer.trace({ src: '10.244.0.13', dst: '10.244.0.10', protocol: 'tcp', dport: 80, state: 'ESTABLISHED' }).verdict, 'ACCEPT');
  const dark = tracer.trace({ src: '10.244.0.99', dst: '10.244.0.13', protocol: 'tcp', dport: 80 });
  t.equal(dark.verdict, 'DROP', 'unknown source in the pod CIDR is dropped');
  t.match(dark.steps.at(-1)?.comment, /not yet programmed/);
  t.equal(tracer.trace({ src: '10.244.0.13', dst: '10.244.0.99', protocol: 'udp', dport: 80 }).verdict, 'DROP', 'unknown destination too');
  t.equal(tracer.trace({ src: '192.168.1.1', dst: '10.244.0.13', protocol: 'udp', dport: 80 }).verdict, 'ACCEPT', 'outside the pod CIDR: not gated');
});

t.test('large dispatch goes through /28 block chains', async (t) => {
  const snap = xyz([['x', 'deny-all', { podSelector: {} }]]);
  const pods = Array.from({ length: 40 }, (_, i) => ({ ...snap.pods[0], name: `p${i}`, ips: [`10.244.0.${20 + i}`] }));
  const r = renderNetpol({ ...snap, pods: [...snap.pods, ...pods] }, OPTS);
  t.ok([...r.chains.keys()].some((c) => c.startsWith('SKIFF-NP-IB-')), 'block chains rendered');
  const tracer = new FilterTracer(r);
  t.equal(tracer.trace({ src: '10.244.0.13', dst: '10.244.0.45', protocol: 'tcp', dport: 80 }).verdict, 'DROP');
  t.equal(tracer.trace({ src: '10.244.0.45', dst: '10.244.0.13', protocol: 'tcp', dport: 80 }).verdict, 'ACCEPT');
});

t.test('several ports of one protocol share a multiport rule, 15 slots per rule', async (t) => {
  const ports = Array.from({ length: 20 }, (_, i) => ({ port: 1000 + 2 * i, ...(i % 4 === 0 ? { endPort: 1001 + 2 * i } : {}) }));
  const snap = xyz([['x', 'many', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: {} }], ports }] }]]);
  const r = renderNetpol(snap, OPTS);
  const chain = r.chains.get(r.pods.get('x/a')!.ingressChain!)!;
  const rules = chain.filter((l) => l.includes('-j RETURN'));
  t.ok(rules.every((l) => l.includes('-m multiport --dports ')), 'multiport rules');
  t.equal(rules.length, 2, '20 ports, 5 of them ranges: 25 slots in two rules');
  const tracer = new FilterTracer(r);
  for (let port = 999; port <= 1040; port++) {
    const want = ports.some((p) => port >= p.port && port <= (p.endPort ?? p.port));
    t.equal(tracer.trace({ src: '10.244.0.11', dst: '10.244.0.10', protocol: 'tcp', dport: port }).verdict, want ? 'ACCEPT' : 'DROP', `x/b -> x/a port ${port}`);
  }
});

t.test('a changed policy keeps its chain names; pods isolated by the same policies share a chain', async (t) => {
  const allow = (port: number): [string, string, NetworkPolicySpec] => ['x', 'allow', { podSelector: {}, ingress: [{ ports: [{ port }] }] }];
  const before = renderNetpol(xyz([allow(80)]), OPTS);
  const after = renderNetpol(xyz([allow(81)]), OPTS);
  const name = before.pods.get('x/a')!.ingressChain!;
  t.equal(after.pods.get('x/a')!.ingressChain, name, 'same name after the policy changed');
  t.not(after.chains.get(name)!.join('\n'), before.chains.get(name)!.join('\n'), 'new content');
  t.same(['x/b', 'x/c'].map((p) => before.pods.get(p)!.ingressChain), [name, name]);
  const more = renderNetpol(xyz([allow(80), ['x', 'other', { podSelector: { matchLabels: { pod: 'b' } } }]]), OPTS);
  t.not(more.pods.get('x/b')!.ingressChain, name, 'another isolating policy: another chain');
  t.equal(more.pods.get('x/a')!.ingressChain, name);
  // named ports resolve on the pod: pods with other named ports get their own chain
  const named = xyz([['x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-tcp' }] }] }]]);
  named.pods = named.pods.map((p) => (p.namespace === 'x' && p.name === 'c' ? { ...p, ports: [{ name: 'serve-80-tcp', port: 8080, protocol: 'TCP' as const }] } : p));
  const r = renderNetpol(named, OPTS);
  t.equal(r.pods.get('x/a')!.ingressChain, r.pods.get('x/b')!.ingressChain);
  t.not(r.pods.get('x/c')!.ingressChain, r.pods.get('x/a')!.ingressChain);
  t.equal(new FilterTracer(r).trace({ src: '10.244.0.13', dst: '10.244.0.12', protocol: 'tcp', dport: 8080 }).verdict, 'ACCEPT', 'x/c allows its own 8080');
  t.equal(new FilterTracer(r).trace({ src: '10.244.0.13', dst: '10.244.0.10', protocol: 'tcp', dport: 8080 }).verdict, 'DROP');
});

t.test('tracer rejects what the kernel would reject', async (t) => {
  const r = renderNetpol(xyz([]), OPTS);
  r.chains.set('SKIFF-NP-BAD', ['-A SKIFF-NP-BAD -j SKIFF-NP-MISSING']);
  t.throws(() => new FilterTracer(r), /does not exist/);
  r.chains.set('SKIFF-NP-BAD', ['-A SKIFF-NP-BAD -m set --match-set NOPE src -j DROP']);
  t.throws(() => new FilterTracer(r), /set NOPE/);
  r.chains.set('SKIFF-NP-BAD', ['-A SKIFF-NP-BAD -p tcp --sport 1 -j DROP']);
  t.throws(() => new FilterTracer(r), /unknown option/);
  r.chains.set('SKIFF-NP-BAD', ['-A SKIFF-NP-BAD -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16 -j DROP']);
  t.throws(() => new FilterTracer(r), /too many ports/);
  r.chains.set('SKIFF-NP-BAD', ['-A SKIFF-NP-BAD -m multiport --dports 1,2 -j DROP']);
  t.throws(() => new FilterTracer(r), /needs -p/);
});
