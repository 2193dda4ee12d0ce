import t from 'tap';
import { SchedulerCache, type NodeObj, type PodObj } from './cache.js';

const node = (name: string): NodeObj => ({ metadata: { name, labels: { 'kubernetes.io/hostname': name } }, status: { allocatable: { cpu: '4', memory: '8Gi', pods: '110' } } }) as NodeObj;
const pod = (name: string, o: { owner?: string; anti?: boolean; nodeName?: string } = {}): PodObj =>
  ({
    metadata: { name, namespace: 'default', uid: `u-${name}`, labels: { app: 'x' }, ownerReferences: o.owner ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner, uid: o.owner, controller: true }] : [] },
    spec: {
      nodeName: o.nodeName,
      containers: [{ name: 'c', image: 'i', resources: { requests: { cpu: '100m' } } }],
      ...(o.anti ? { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'x' } }, topologyKey: 'kubernetes.io/hostname' }] } } } : {}),
    },
  }) as PodObj;

t.test('per-node aggregates follow assume, confirm, forget and removal', async (t) => {
  const cache = new SchedulerCache();
  cache.upsertNode(node('b'));
  cache.upsertNode(node('a'));
  const list = cache.nodeList();
  t.same(list.map((n) => n.name), ['a', 'b'], 'sorted by name');
  t.equal(cache.nodeList(), list, 'the same list until nodes come or go');

  cache.assume(pod('p1', { owner: 'rs1', anti: true }), 'a');
  cache.assume(pod('p2', { owner: 'rs1' }), 'a');
  const a = cache.nodes.get('a')!;
  t.equal(a.ownerCounts.get('rs1'), 2);
  t.same([...a.podsWithRequiredAntiAffinity.keys()], ['default/p1']);
  t.equal(a.requested.cpu, 200);

  // the informer confirms p1 on a, then shows p2 on b (a different node than assumed)
  cache.upsertPod(pod('p1', { owner: 'rs1', anti: true, nodeName: 'a' }));
  cache.upsertPod(pod('p2', { owner: 'rs1', nodeName: 'b' }));
  t.equal(a.ownerCounts.get('rs1'), 1);
  t.equal(cache.nodes.get('b')!.ownerCounts.get('rs1'), 1);
  t.equal(a.requested.cpu, 100);

  cache.forget('default/p1'); // confirmed: forget is a no-op
  t.equal(a.podsWithRequiredAntiAffinity.size, 1);
  cache.removePod('default/p1');
  t.equal(a.podsWithRequiredAntiAffinity.size, 0);
  t.notOk(a.ownerCounts.has('rs1'), 'a count that drops to zero is removed');
  t.equal(a.requested.cpu, 0);

  cache.upsertNode(node('c'));
  t.not(cache.nodeList(), list, 'a new node makes a new list');
  cache.removeNode('b'); // p2 still there: its accounting stays until it goes
  t.same(cache.nodeList().map((n) => n.name), ['a', 'c']);
  t.equal(cache.nodes.get('b')!.ownerCounts.get('rs1'), 1);
  cache.removePod('default/p2');
  t.notOk(cache.nodes.has('b'), 'a removed node goes with its last pod');
});
