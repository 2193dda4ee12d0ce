import t from 'tap';
import type { NetworkPolicySpec } from 'kubernetes-types/networking/v1.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type PodInfo, type PolicyInfo, type Snapshot } from './model.js';
import { NetpolRenderer, renderNetpol, renderText } from './render.js';
import { planRestore, stateOf } from './restore.js';
import { makeNamespace, makePod, makePolicy, XYZ_PORTS } from './testing.js';

/** The incremental renderer must produce exactly what a fresh render of the same snapshot does. */

const OPTS = { podCIDR: '10.244.0.0/22', dropLog: { tag: 'test', ratePerSec: 10 } };
const NS = ['x', 'y', 'z'];

/** A small deterministic PRNG (mulberry32), so a failure replays with its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const SPECS: ((r: () => number) => NetworkPolicySpec)[] = [
  () => ({ podSelector: {} }),
  (r) => ({ podSelector: { matchLabels: { app: `a${Math.floor(r() * 4)}` } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: `a${Math.floor(r() * 4)}` } } }], ports: [{ port: 'serve-80-tcp' }, { port: 81 }] }] }),
  (r) => ({ podSelector: { matchLabels: { app: `a${Math.floor(r() * 4)}` } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${Math.floor(r() * 2)}` } } }] }] }),
  (r) => ({ podSelector: {}, egress: [{ to: [{ namespaceSelector: { matchLabels: { team: `t${Math.floor(r() * 2)}` } }, podSelector: { matchLabels: { app: 'a1' } } }], ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] }),
  (r) => ({ podSelector: { matchLabels: { app: 'a2' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`10.244.${Math.floor(r() * 3)}.0/24`] } }] }] }),
];

function randomPod(r: () => number, i: number): PodInfo {
  const node = r() < 0.8 ? 'node-a' : 'node-b';
  return toPodInfo(makePod(NS[Math.floor(r() * 3)], `p${i}`, { labels: { app: `a${Math.floor(r() * 4)}` }, ip: `10.244.${Math.floor(i / 200)}.${(i % 200) + 2}`, node, ports: r() < 0.5 ? XYZ_PORTS : ['serve-80-tcp=8080/TCP'] }))!;
}

function randomPolicy(r: () => number, i: number): PolicyInfo {
  return toPolicyInfo(makePolicy(NS[Math.floor(r() * 3)], `pol${i}`, SPECS[Math.floor(r() * SPECS.length)](r)));
}

function mutate(r: () => number, snap: Snapshot, step: number): Snapshot {
  const pods = [...snap.pods];
  const policies = [...snap.policies];
  const namespaces = [...snap.namespaces];
  const op = Math.floor(r() * 7);
  const at = <T>(list: T[]) => Math.floor(r() * list.length);
  if (op === 0 && pods.length) pods.splice(at(pods), 1);
  else if (op === 1) pods.push(randomPod(r, 100 + step));
  else if (op === 2 && pods.length) {
    const i = at(pods);
    pods[i] = { ...pods[i], labels: { app: `a${Math.floor(r() * 4)}` } };
  } else if (op === 3 && policies.length) policies.splice(at(policies), 1);
  else if (op === 4) policies.push(randomPolicy(r, 100 + step));
  else if (op === 5 && policies.length) {
    const i = at(policies);
    policies[i] = { ...randomPolicy(r, 0), namespace: policies[i].namespace, name: policies[i].name };
  } else {
    const i = at(namespaces);
    namespaces[i] = toNamespaceInfo(makeNamespace(namespaces[i].name, { team: `t${Math.floor(r() * 2)}` }));
  }
  return { ...snap, pods, policies, namespaces };
}

t.test('incremental renders equal fresh renders over random change sequences', async (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    let snap: Snapshot = {
      nodeName: 'node-a',
      namespaces: NS.map((n, i) => toNamespaceInfo(makeNamespace(n, { team: `t${i % 2}` }))),
      pods: Array.from({ length: 40 }, (_, i) => randomPod(r, i)),
      policies: Array.from({ length: 6 }, (_, i) => randomPolicy(r, i)),
    };
    const renderer = new NetpolRenderer(OPTS);
    let mismatches = 0;
    for (let step = 0; step < 60; step++) {
      if (renderText(renderer.render(snap)) !== renderText(renderNetpol(snap, OPTS))) {
        mismatches++;
        t.fail(`seed ${seed} step ${step}: incremental and fresh renders differ`);
      }
      snap = mutate(r, snap, step);
    }
    t.equal(mismatches, 0, `seed ${seed}: 60 steps agree`);
  }
});

t.test('a change re-renders only what it touches', async (t) => {
  const ns = (n: string) => toNamespaceInfo(makeNamespace(n, { team: n }));
  const pods = Array.from({ length: 60 }, (_, i) => toPodInfo(makePod(NS[i % 3], `p${i}`, { labels: { app: `a${i % 6}` }, ip: `10.244.0.${i + 2}`, node: 'node-a', ports: XYZ_PORTS }))!);
  const pol = (n: string, app: string, port: number) => toPolicyInfo(makePolicy(n, `allow-${app}`, { podSelector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: {} }], ports: [{ port }] }] }));
  const snap: Snapshot = { nodeName: 'node-a', namespaces: NS.map(ns), pods, policies: [pol('x', 'a0', 80), pol('y', 'a1', 80), pol('z', 'a2', 80)] };
  const renderer = new NetpolRenderer(OPTS);
  const first = renderer.render(snap);
  const changed = { ...snap, policies: [pol('x', 'a0', 8080), snap.policies[1], snap.policies[2]] };
  const second = renderer.render(changed);
  const chainOf = (r: typeof first, pod: string) => r.chains.get(r.pods.get(pod)!.ingressChain!)!;
  t.equal(chainOf(second, 'y/p1'), chainOf(first, 'y/p1'), 'an untouched pod chain is the same array (not re-rendered)');
  t.not(chainOf(second, 'x/p0'), chainOf(first, 'x/p0'), 'the changed policy\'s chain is rebuilt');
  for (const [name, set] of second.sets) t.equal(set.entries, first.sets.get(name)?.entries, `set ${name} kept`);
  t.equal(second.pods.get('x/p0')!.ingressChain, first.pods.get('x/p0')!.ingressChain, 'the chain keeps its name');
  const plan = planRestore(stateOf(first), second, null);
  t.equal(plan.ipsetBefore, '', 'no set work');
  // the changed chain, rewritten in place: no chain deleted, no dispatch chain pointing to it touched
  t.equal(plan.changedChains, 1, `only the changed chain is rewritten (of ${second.chains.size})`);
  t.match(plan.iptables, new RegExp(`^\\*filter\\n:${first.pods.get('x/p0')!.ingressChain} - \\[0:0\\]\\n`));
  t.notMatch(plan.iptables, /-X /);
  t.equal(renderText(second), renderText(renderNetpol(changed, OPTS)), 'and it equals a fresh render');
});

t.test('peer membership changes are set del/add lines, no iptables', async (t) => {
  const ns = (n: string) => toNamespaceInfo(makeNamespace(n, { team: n }));
  const pods = Array.from({ length: 30 }, (_, i) => toPodInfo(makePod(NS[i % 3], `p${i}`, { labels: { app: `a${i % 2}` }, ip: `10.244.0.${i + 2}`, node: 'node-a', ports: XYZ_PORTS }))!);
  const pol = toPolicyInfo(makePolicy('x', 'from-a1', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: 'a1' } } }] }] }));
  const snap: Snapshot = { nodeName: 'node-a', namespaces: NS.map(ns), pods, policies: [pol] };
  const renderer = new NetpolRenderer(OPTS);
  const first = renderer.render(snap);
  // a pod of another node joins the peers, and a local one in y leaves them (relabelled)
  const remote = toPodInfo(makePod('z', 'remote', { labels: { app: 'a1' }, ip: '10.245.0.7', node: 'node-b' }))!;
  const relabelled = pods.map((p) => (p.name === 'p1' ? { ...p, labels: { app: 'a0' } } : p));
  const second = renderer.render({ ...snap, pods: [...relabelled, remote] });
  const plan = planRestore(stateOf(first), second, null);
  t.equal(plan.iptables, '', 'no chain changes');
  const set = [...second.sets.keys()].find((n) => n.startsWith('SKIFF-NPS-'))!;
  const lines = plan.ipsetBefore.trim().split('\n').filter((l) => !l.startsWith('create SKIFF-NP-KNOWN'));
  t.same(lines, [`del ${set} 10.244.0.3`, `add ${set} 10.245.0.7`], 'delete first, then add');
  t.equal(plan.ipsetAfter, '', 'nothing to add to KNOWN');
  t.equal(renderText(second), renderText(renderNetpol({ ...snap, pods: [...relabelled, remote] }, OPTS)));
});

t.test('a new pod joins KNOWN only after its chains, in the same ipset call when it needs none', async (t) => {
  const pods = Array.from({ length: 4 }, (_, i) => toPodInfo(makePod('x', `p${i}`, { labels: { app: `a${i % 2}` }, ip: `10.244.0.${i + 2}`, node: 'node-a', ports: XYZ_PORTS }))!);
  const pol = toPolicyInfo(makePolicy('x', 'deny-a0', { podSelector: { matchLabels: { app: 'a0' } } }));
  const snap: Snapshot = { nodeName: 'node-a', namespaces: [toNamespaceInfo(makeNamespace('x'))], pods, policies: [pol] };
  const renderer = new NetpolRenderer(OPTS);
  const first = renderer.render(snap);
  const open = renderer.render({ ...snap, pods: [...pods, toPodInfo(makePod('x', 'open', { labels: { app: 'a1' }, ip: '10.244.0.20', node: 'node-a' }))!] });
  let plan = planRestore(stateOf(first), open, null);
  t.equal(plan.iptables, '', 'not isolated: no chain');
  t.match(plan.ipsetBefore, /^add SKIFF-NP-KNOWN 10\.244\.0\.20$/m, 'KNOWN addition in the one ipset call');
  t.equal(plan.ipsetAfter, '');
  const isolated = renderer.render({ ...snap, pods: [...pods, toPodInfo(makePod('x', 'shut', { labels: { app: 'a0' }, ip: '10.244.0.21', node: 'node-a' }))!] });
  plan = planRestore(stateOf(open), isolated, null);
  t.match(plan.iptables, /-d 10\.244\.0\.21\/32 -g SKIFF-NP-I-/, 'dispatch to its chain');
  t.notMatch(plan.ipsetBefore, /add SKIFF-NP-KNOWN 10\.244\.0\.21/, 'not in KNOWN before its chains');
  t.match(plan.ipsetAfter, /^add SKIFF-NP-KNOWN 10\.244\.0\.21$/m, 'KNOWN after the iptables-restore');
  t.match(plan.ipsetBefore, /^del SKIFF-NP-KNOWN 10\.244\.0\.20$/m, 'a removed pod leaves KNOWN before its chains go');
});

t.test('sets nothing references anymore are destroyed in an ipset call that runs anyway', async (t) => {
  const pods = Array.from({ length: 6 }, (_, i) => toPodInfo(makePod('x', `p${i}`, { labels: { app: `a${i % 3}` }, ip: `10.244.0.${i + 2}`, node: 'node-a', ports: XYZ_PORTS }))!);
  const from = (app: string) => toPolicyInfo(makePolicy('x', 'allow', { podSelector: { matchLabels: { app: 'a0' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app } } }] }] }));
  const snap: Snapshot = { nodeName: 'node-a', namespaces: [toNamespaceInfo(makeNamespace('x'))], pods, policies: [from('a1')] };
  const renderer = new NetpolRenderer(OPTS);
  const setOf = (r: ReturnType<typeof renderer.render>) => [...r.sets.keys()].find((n) => n.startsWith('SKIFF-NPS-'))!;
  const first = renderer.render(snap);
  const oldSet = setOf(first);
  // the policy's peer changes: the new set is made before, the old one is still referenced until the restore
  const second = renderer.render({ ...snap, policies: [from('a2')] });
  let plan = planRestore(stateOf(first), second, null);
  t.match(plan.ipsetBefore, new RegExp(`^create ${setOf(second)} `, 'm'));
  t.notMatch(plan.ipsetBefore + plan.ipsetAfter, /destroy/, 'no ipset call of its own for the destroy');
  t.equal(plan.ipsetAfter, '');
  t.same(plan.orphans, [oldSet], 'left as an orphan');
  let state = stateOf(second, plan.orphans);
  // the next sync that calls ipset anyway (a peer pod added) destroys it first thing
  const more = [...pods, toPodInfo(makePod('x', 'q', { labels: { app: 'a2' }, ip: '10.245.0.9', node: 'node-b' }))!];
  const third = renderer.render({ ...snap, pods: more, policies: [from('a2')] });
  plan = planRestore(state, third, null);
  t.equal(plan.iptables, '');
  t.match(plan.ipsetBefore, new RegExp(`^destroy ${oldSet}$`, 'm'));
  t.same(plan.orphans, []);
  // an orphan wanted again is rebuilt from scratch (its kernel content is unknown)
  state = stateOf(second, [oldSet]);
  const back = renderer.render({ ...snap, policies: [from('a1')] });
  plan = planRestore(state, back, null);
  t.match(plan.ipsetBefore, new RegExp(`^swap \\S+ ${oldSet}$`, 'm'));
  t.notMatch(plan.ipsetBefore + plan.ipsetAfter, new RegExp(`destroy ${oldSet}`));
  t.same(plan.orphans, [setOf(second)], 'and the set of a2 is the orphan now');
  // a full sync destroys every unreferenced set of ours it finds
  plan = planRestore(null, back, { chains: new Set(), sets: new Set([oldSet, setOf(second), 'SKIFF-NPT-STALE', 'OTHER']), known: new Set() });
  t.match(plan.ipsetAfter, new RegExp(`^destroy ${setOf(second)}$`, 'm'));
  t.match(plan.ipsetAfter, /^destroy SKIFF-NPT-STALE$/m);
  t.notMatch(plan.ipsetAfter, /OTHER/, 'never a set that is not ours');
});
