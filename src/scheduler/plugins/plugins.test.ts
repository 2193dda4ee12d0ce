import t from 'tap';
import { SchedulerCache, toPodInfo, type NodeObj, type PodObj } from '../cache.js';
import { schedulePod, type CycleState, type PvcObj, type PvObj } from '../framework.js';
import { defaultFilters, defaultScores } from './index.js';
import { tolerates } from './basic.js';

function node(name: string, o: { cpu?: string; mem?: string; pods?: string; labels?: Record<string, string>; taints?: unknown[]; unschedulable?: boolean } = {}): NodeObj {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) } },
    spec: { taints: o.taints ?? [], unschedulable: o.unschedulable },
    status: { allocatable: { cpu: o.cpu ?? '4', memory: o.mem ?? '8Gi', pods: o.pods ?? '110' } },
  } as NodeObj;
}

function pod(name: string, spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): PodObj {
  return { metadata: { name, namespace: 'default', uid: `u-${name}`, labels: {}, ...meta }, spec: { containers: [{ name: 'c', image: 'x' }], ...spec } } as PodObj;
}

const cpu = (c: string) => ({ containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: c } } }] });

function cluster(nodes: NodeObj[], placed: [PodObj, string][] = []) {
  const cache = new SchedulerCache();
  for (const n of nodes) cache.upsertNode(n);
  for (const [p, n] of placed) cache.upsertPod({ ...p, spec: { ...p.spec, nodeName: n } } as PodObj);
  return cache;
}

function run(cache: SchedulerCache, p: PodObj, lookups: Partial<CycleState['lookups']> = {}) {
  return schedulePod(
    { pod: toPodInfo(p), nodes: cache.nodeList(), lookups: { pvc: () => undefined, pv: () => undefined, ...lookups }, data: new Map() },
    defaultFilters,
    defaultScores,
  );
}

t.test('NodeResourcesFit: message counts failing nodes per reason', async (t) => {
  const cache = cluster([node('a', { cpu: '1' }), node('b', { cpu: '1' }), node('c', { cpu: '8', taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] })]);
  const r = run(cache, pod('big', cpu('2')));
  t.equal(r.node, undefined);
  t.equal((r as { message: string }).message, '0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.');
  const ok = run(cache, pod('small', cpu('500m')));
  t.ok(ok.node === 'a' || ok.node === 'b');
  const tooMany = cluster([node('a', { pods: '1' })], [[pod('x'), 'a']]);
  t.match(run(tooMany, pod('y')), { message: '0/1 nodes are available: 1 Too many pods.' });
  const mem = cluster([node('a', { mem: '1Gi' })]);
  t.match(run(mem, pod('m', { containers: [{ name: 'c', resources: { limits: { memory: '2Gi' } } }] })), { message: /Insufficient memory/ }, 'limits count as requests when requests are absent');
});

t.test('TaintToleration and NodeUnschedulable', async (t) => {
  t.ok(tolerates({ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' }, { key: 'k', value: 'v', effect: 'NoSchedule' }));
  t.notOk(tolerates({ key: 'k', operator: 'Equal', value: 'w' }, { key: 'k', value: 'v', effect: 'NoSchedule' }));
  t.ok(tolerates({ operator: 'Exists' }, { key: 'any', effect: 'NoExecute' }));
  t.notOk(tolerates({ key: 'k', operator: 'Exists', effect: 'NoExecute' }, { key: 'k', effect: 'NoSchedule' }));
  const cache = cluster([node('a', { taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }] }), node('b', { unschedulable: true })]);
  t.match(run(cache, pod('p')), { message: '0/2 nodes are available: 1 node(s) had untolerated taint {k: v}, 1 node(s) were unschedulable.' });
  t.equal(run(cache, pod('p', { tolerations: [{ key: 'k', operator: 'Exists' }] })).node, 'a');
  t.equal(run(cache, pod('p', { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] })).node, 'b');
  const pref = cluster([node('a', { taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] }), node('b')]);
  t.equal(run(pref, pod('p')).node, 'b', 'PreferNoSchedule lowers the score');
});

t.test('NodeSelector, required and preferred NodeAffinity, NodeName', async (t) => {
  const cache = cluster([node('a', { labels: { disk: 'ssd', zone: 'z1' } }), node('b', { labels: { disk: 'hdd', zone: 'z2', gen: '5' } })]);
  t.equal(run(cache, pod('p', { nodeSelector: { disk: 'hdd' } })).node, 'b');
  t.match(run(cache, pod('p', { nodeSelector: { disk: 'nvme' } })), { message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector." });
  const req = (exprs: unknown[], fields: unknown[] = []) => ({
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: exprs, matchFields: fields }] } } },
  });
  t.equal(run(cache, pod('p', req([{ key: 'gen', operator: 'Gt', values: ['4'] }]))).node, 'b');
  t.equal(run(cache, pod('p', req([{ key: 'zone', operator: 'NotIn', values: ['z2'] }]))).node, 'a');
  t.equal(run(cache, pod('p', req([], [{ key: 'metadata.name', operator: 'In', values: ['b'] }]))).node, 'b');
  t.equal(run(cache, pod('p', req([{ key: 'gen', operator: 'DoesNotExist' }]))).node, 'a');
  const preferred = { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z2'] }] } }] } } };
  t.equal(run(cache, pod('p', preferred)).node, 'b');
  t.match(run(cache, pod('p', { nodeName: 'zzz' })), { message: /2 node\(s\) didn't match the requested node name/ });
});

t.test('InterPodAffinity: required affinity and anti-affinity by topologyKey', async (t) => {
  const nodes = [node('a', { labels: { zone: 'z1' } }), node('b', { labels: { zone: 'z1' } }), node('c', { labels: { zone: 'z2' } })];
  const db = pod('db', {}, { labels: { app: 'db' } });
  const cache = cluster(nodes, [[db, 'a']]);
  const affinity = (kind: 'podAffinity' | 'podAntiAffinity', key: string, app: string) => ({
    affinity: { [kind]: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app } }, topologyKey: key }] } },
  });
  const withZone = run(cache, pod('web', affinity('podAffinity', 'zone', 'db')));
  t.ok(withZone.node === 'a' || withZone.node === 'b', 'same zone as db');
  t.equal(run(cache, pod('web', affinity('podAntiAffinity', 'zone', 'db'))).node, 'c');
  t.match(run(cache, pod('web', affinity('podAffinity', 'zone', 'nothing'))), { message: "0/3 nodes are available: 3 node(s) didn't match pod affinity rules." });
  t.ok(run(cache, pod('first', affinity('podAffinity', 'zone', 'self'), { labels: { app: 'self' } })).node, 'first pod of a self-selecting group may go anywhere');
  // an existing pod's anti-affinity keeps matching pods away from its host
  const lonely = pod('lonely', affinity('podAntiAffinity', 'kubernetes.io/hostname', 'web'), { labels: { app: 'lonely' } });
  const c2 = cluster(nodes.slice(0, 2), [[lonely, 'a']]);
  t.equal(run(c2, pod('w', {}, { labels: { app: 'web' } })).node, 'b');
  const c3 = cluster([nodes[0]], [[lonely, 'a']]);
  t.match(run(c3, pod('w', {}, { labels: { app: 'web' } })), { message: "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules." });
  const prefAnti = { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'zone' } }] } } };
  t.equal(run(cache, pod('w', prefAnti)).node, 'c', 'preferred anti-affinity scores the other zone higher');
});

t.test('VolumeBinding: unbound claims block; a local PV pins the node', async (t) => {
  const cache = cluster([node('a'), node('b')]);
  const pvcs: Record<string, PvcObj> = {
    'default/bound': { metadata: { name: 'bound', namespace: 'default' }, spec: { volumeName: 'pv1' }, status: { phase: 'Bound' } } as PvcObj,
    'default/pending': { metadata: { name: 'pending', namespace: 'default' }, spec: {}, status: { phase: 'Pending' } } as PvcObj,
  };
  const pv1 = {
    metadata: { name: 'pv1' },
    spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['b'] }] }] } } },
  } as PvObj;
  const lookups = { pvc: (ns: string, n: string) => pvcs[`${ns}/${n}`], pv: (n: string) => (n === 'pv1' ? pv1 : undefined) };
  const vol = (claimName: string) => ({ volumes: [{ name: 'v', persistentVolumeClaim: { claimName } }] });
  t.equal(run(cache, pod('p', vol('bound')), lookups).node, 'b');
  t.match(run(cache, pod('p', vol('pending')), lookups), { message: '0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.' });
  t.match(run(cache, pod('p', vol('missing')), lookups), { message: /persistentvolumeclaim "missing" not found/ });
  const onlyA = cluster([node('a')]);
  t.match(run(onlyA, pod('p', vol('bound')), lookups), { message: '0/1 nodes are available: 1 node(s) had volume node affinity conflict.' });
});

t.test('scores: least allocated, and replicas of one owner spread across nodes', async (t) => {
  const busy = cluster([node('a'), node('b')], [[pod('x', cpu('3')), 'a']]);
  t.equal(run(busy, pod('p', cpu('100m'))).node, 'b');
  const owner = { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'rs1', controller: true }] };
  const other = { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs2', uid: 'rs2', controller: true }] };
  // b is busier than a, but a already holds a sibling: spreading wins over a small resource difference
  const c = cluster([node('a'), node('b')], [[pod('s1', cpu('100m'), owner), 'a'], [pod('o1', cpu('200m'), other), 'b']]);
  t.equal(run(c, pod('s2', cpu('100m'), owner)).node, 'b');
});

t.test('cache: assume, forget, confirm, terminal pods free resources', async (t) => {
  const cache = cluster([node('a', { cpu: '1' })]);
  const p = pod('p', cpu('600m'));
  cache.assume(p, 'a');
  t.equal(cache.nodes.get('a')!.requested.cpu, 600);
  t.match(run(cache, pod('q', cpu('600m'))), { message: /Insufficient cpu/ });
  cache.forget('default/p');
  t.equal(cache.nodes.get('a')!.requested.cpu, 0);
  cache.assume(p, 'a');
  cache.upsertPod({ ...p, spec: { ...p.spec, nodeName: 'a' } } as PodObj);
  cache.forget('default/p');
  t.equal(cache.nodes.get('a')!.requested.cpu, 600, 'confirmed pods are not forgotten');
  cache.upsertPod({ ...p, spec: { ...p.spec, nodeName: 'a' }, status: { phase: 'Succeeded' } } as PodObj);
  t.equal(cache.nodes.get('a')!.requested.cpu, 0);
  t.equal(cache.nodes.get('a')!.pods.size, 0);
});

t.test('PodTopologySpread: maxSkew over zones (DoNotSchedule) and soft spreading (ScheduleAnyway)', async (t) => {
  const nodes = [node('a1', { labels: { zone: 'a' } }), node('a2', { labels: { zone: 'a' } }), node('b1', { labels: { zone: 'b' } }), node('x', {})];
  const web = (n: string) => pod(n, {}, { labels: { app: 'web' } });
  const cache = cluster(nodes, [[web('w1'), 'a1'], [web('w2'), 'a2']]);
  const spread = (when: string) => ({ topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: when, labelSelector: { matchLabels: { app: 'web' } } }] });
  t.equal(run(cache, pod('w3', spread('DoNotSchedule'), { labels: { app: 'web' } })).node, 'b1', 'zone a has 2, b has 0: only b keeps skew <= 1');
  const full = cluster([nodes[0], nodes[3]], [[web('w1'), 'a1']]);
  t.match(run(full, pod('w2', { ...spread('DoNotSchedule'), nodeSelector: { zone: 'a' } }, { labels: { app: 'web' } })), { node: 'a1' }, 'one domain: the skew is against itself');
  const blocked = cluster([nodes[0], node('b1', { labels: { zone: 'b' }, unschedulable: true }), nodes[3]], [[web('w1'), 'a1'], [web('w2'), 'a1']]);
  t.match(run(blocked, pod('w3', spread('DoNotSchedule'), { labels: { app: 'web' } })), {
    message:
      "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label), 1 node(s) were unschedulable.",
  }, 'a cordoned node still counts as an (empty) domain');
  t.match(run(cache, pod('w3', spread('DoNotSchedule'), { labels: { app: 'web' } })), { node: 'b1' });
  const soft = run(cache, pod('w3', spread('ScheduleAnyway'), { labels: { app: 'web' } }));
  t.ok(soft.node === 'b1' || soft.node === 'x', 'soft constraint prefers the empty zone (or an unlabelled node)');
});
