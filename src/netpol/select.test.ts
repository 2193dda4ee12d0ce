import t from 'tap';
import type { NetworkPolicySpec } from 'kubernetes-types/networking/v1.js';
import { toPodInfo, toPolicyInfo, type Protocol, type Snapshot } from './model.js';
import { endpointOf, evaluate, Selection } from './select.js';
import { makePod, makePolicy, xyz } from './testing.js';

function allowed(snap: Snapshot, from: string, to: string, port = 80, proto: Protocol = 'TCP'): boolean {
  const sel = new Selection(snap);
  return evaluate(sel, endpointOf(sel, from)!, endpointOf(sel, to)!, port, proto).allowed;
}

t.test('policyTypes defaulting', async (t) => {
  const p1 = toPolicyInfo(makePolicy('x', 'p', { podSelector: {} }));
  t.same([p1.ingressIsolation, p1.egressIsolation], [true, false], 'no rules: ingress only');
  const p2 = toPolicyInfo(makePolicy('x', 'p', { podSelector: {}, egress: [{}] }));
  t.same([p2.ingressIsolation, p2.egressIsolation], [true, true], 'egress rules: both');
  const p3 = toPolicyInfo(makePolicy('x', 'p', { podSelector: {}, policyTypes: ['Egress'] }));
  t.same([p3.ingressIsolation, p3.egressIsolation], [false, true], 'explicit Egress only');
});

t.test('selection semantics (table)', async (t) => {
  type Case = [string, [string, string, NetworkPolicySpec][], string, string, number, Protocol, boolean];
  const denyAll: NetworkPolicySpec = { podSelector: {} };
  const cases: Case[] = [
    ['no policy allows', [], 'y/a', 'x/a', 80, 'TCP', true],
    ['deny-all ingress isolates x', [['x', 'deny', denyAll]], 'y/a', 'x/a', 80, 'TCP', false],
    ['deny-all ingress leaves y open', [['x', 'deny', denyAll]], 'x/a', 'y/a', 80, 'TCP', true],
    ['deny-all ingress does not isolate egress', [['x', 'deny', denyAll]], 'x/a', 'z/b', 81, 'UDP', true],
    ['podSelector peer, same namespace', [['x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'x/b', 'x/a', 80, 'TCP', true],
    ['podSelector peer is namespace-local', [['x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'y/b', 'x/a', 80, 'TCP', false],
    ['unselected pod stays open', [['x', 'p', { podSelector: { matchLabels: { pod: 'a' } } }]], 'y/b', 'x/b', 80, 'TCP', true],
    ['namespaceSelector peer', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }]], 'y/c', 'x/a', 80, 'TCP', true],
    ['namespaceSelector peer excludes others', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }]], 'z/c', 'x/a', 80, 'TCP', false],
    ['ns AND pod in one peer: match', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'y/b', 'x/a', 80, 'TCP', true],
    ['ns AND pod in one peer: wrong pod', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'y/c', 'x/a', 80, 'TCP', false],
    ['ns OR pod as two peers: other ns pod b', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'z/b', 'x/a', 80, 'TCP', false],
    ['ns OR pod as two peers: same ns pod b', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] }]], 'x/b', 'x/a', 80, 'TCP', true],
    ['matchExpressions In', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] } }] }] }]], 'x/c', 'x/a', 80, 'TCP', true],
    ['matchExpressions NotIn', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['b', 'c'] }] } }] }] }]], 'x/c', 'x/a', 80, 'TCP', false],
    ['matchExpressions Exists on ns', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'Exists' }] } }] }] }]], 'z/c', 'x/a', 80, 'TCP', true],
    ['matchExpressions DoesNotExist', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'DoesNotExist' }] } }] }] }]], 'x/b', 'x/a', 80, 'TCP', false],
    ['port by number allows 80', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }]], 'y/a', 'x/a', 80, 'TCP', true],
    ['port by number denies 81', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }]], 'y/a', 'x/a', 81, 'TCP', false],
    ['port default protocol is TCP', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }]], 'y/a', 'x/a', 80, 'UDP', false],
    ['named port resolved on destination', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] }]], 'y/a', 'x/a', 81, 'UDP', true],
    ['named port with wrong protocol matches nothing', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp' }] }] }]], 'y/a', 'x/a', 81, 'TCP', false],
    ['endPort range', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 79, endPort: 81 }] }] }]], 'y/a', 'x/a', 81, 'TCP', true],
    ['protocol only = all ports', [['x', 'p', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] }]], 'y/a', 'x/a', 81, 'UDP', true],
    ['ipBlock allows', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/24' } }] }] }]], 'z/c', 'x/a', 80, 'TCP', true],
    ['ipBlock except denies', [['x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/24', except: ['10.244.0.18/32'] } }] }] }]], 'z/c', 'x/a', 80, 'TCP', false],
    ['egress deny-all isolates source', [['x', 'e', { podSelector: {}, policyTypes: ['Egress'] }]], 'x/a', 'y/a', 80, 'TCP', false],
    ['egress named port resolved on each peer', [['x', 'e', { podSelector: {}, egress: [{ ports: [{ port: 'serve-80-udp', protocol: 'UDP' }] }] }]], 'x/a', 'y/b', 80, 'UDP', true],
    ['policies are additive', [['x', 'd', denyAll], ['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }]], 'y/a', 'x/b', 80, 'TCP', true],
    ['egress allowed but ingress denies', [['x', 'e', { podSelector: {}, egress: [{}] }], ['y', 'd', denyAll]], 'x/a', 'y/a', 80, 'TCP', false],
    ['empty ingress rule allows all', [['x', 'p', { podSelector: {}, ingress: [{}] }]], 'z/b', 'x/c', 81, 'UDP', true],
  ];
  for (const [name, pols, from, to, port, proto, want] of cases) t.equal(allowed(xyz(pols), from, to, port, proto), want, name);
});

t.test('verdict names isolating and allowing policies', async (t) => {
  const snap = xyz([['x', 'd', { podSelector: {} }], ['x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] }]]);
  const sel = new Selection(snap);
  const v = evaluate(sel, endpointOf(sel, 'y/a')!, endpointOf(sel, 'x/b')!, 80, 'TCP');
  t.same(v.ingress.isolatedBy, ['x/d', 'x/p']);
  t.same(v.ingress.allowedBy, [{ policy: 'x/p', direction: 'ingress', rule: 0 }]);
  t.equal(v.egress.isolatedBy.length, 0);
});

t.test('pods without IPv4, host-network and finished pods are ignored', async (t) => {
  t.equal(toPodInfo(makePod('x', 'a', {})), null);
  const hn = makePod('x', 'a', { ip: '10.0.0.1' });
  t.equal(toPodInfo({ ...hn, spec: { ...hn.spec!, hostNetwork: true } }), null);
  t.equal(toPodInfo({ ...hn, status: { ...hn.status, phase: 'Succeeded' } }), null);
  t.ok(toPodInfo(hn));
});
