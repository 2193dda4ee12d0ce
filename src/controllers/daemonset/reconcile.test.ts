import t from 'tap';
import type { DaemonSet } from 'kubernetes-types/apps/v1.js';
import type { Node, Pod } from 'kubernetes-types/core/v1.js';
import { nodeShouldRunDaemonPod, reconcileDaemonSet } from './reconcile.js';
import { daemonPod } from './controller.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
function ds(o: { nodeSelector?: Record<string, string>; tolerations?: DaemonSet['spec'] extends infer _ ? { key: string; operator: string; effect?: string }[] : never; maxUnavailable?: number } = {}): DaemonSet {
  return {
    metadata: { name: 'agent', namespace: 'default', uid: 'ds-uid', generation: 1 },
    spec: {
      selector: { matchLabels: { app: 'agent' } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: o.maxUnavailable ?? 1 } },
      template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'i' }], nodeSelector: o.nodeSelector, tolerations: o.tolerations } },
    },
  };
}
const node = (name: string, o: { labels?: Record<string, string>; taints?: { key: string; effect: string; value?: string }[] } = {}): Node => ({ metadata: { name, labels: o.labels }, spec: { taints: o.taints } });
function pod(name: string, nodeName: string, o: { hash?: string; ready?: boolean; phase?: string } = {}): Pod {
  return {
    metadata: { name, namespace: 'default', labels: { app: 'agent', 'controller-revision-hash': o.hash ?? 'h1' }, creationTimestamp: '2026-01-01T00:00:00Z', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true }] },
    spec: { containers: [], nodeName },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

t.test('one pod per eligible node; taints and nodeSelector exclude nodes', async (t) => {
  const nodes = [node('a'), node('b', { taints: [{ key: 'x', effect: 'NoSchedule' }] }), node('c', { labels: { disk: 'ssd' } }), node('d', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] })];
  const plan = reconcileDaemonSet(ds(), nodes, [pod('p-a', 'a')], 'h1', NOW);
  t.same(plan.create, ['c', 'd'], 'tainted b skipped; unreachable tolerated by default');
  t.match(plan.status, { desiredNumberScheduled: 3, currentNumberScheduled: 1, numberReady: 1, numberAvailable: 1, numberUnavailable: 2, updatedNumberScheduled: 1 });
  const sel = reconcileDaemonSet(ds({ nodeSelector: { disk: 'ssd' } }), nodes, [pod('p-a', 'a')], 'h1', NOW);
  t.same(sel.create, ['c']);
  t.same(sel.delete.map((p) => p.metadata?.name), ['p-a'], 'misscheduled pod removed');
  t.equal(sel.status.numberMisscheduled, 1);
  t.ok(nodeShouldRunDaemonPod(ds({ tolerations: [{ key: 'x', operator: 'Exists', effect: 'NoSchedule' }] }), nodes[1]));
});

t.test('duplicates, failed pods and pods of vanished nodes are deleted', async (t) => {
  const plan = reconcileDaemonSet(ds(), [node('a'), node('b')], [pod('p1', 'a'), pod('p2', 'a'), pod('f', 'b', { phase: 'Failed' }), pod('gone', 'z')], 'h1', NOW);
  t.same(plan.delete.map((p) => p.metadata?.name).sort(), ['f', 'gone', 'p2']);
  t.same(plan.create, ['b']);
});

t.test('rolling update: out-of-date pods replaced within maxUnavailable', async (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  let plan = reconcileDaemonSet(ds(), nodes, [pod('pa', 'a'), pod('pb', 'b'), pod('pc', 'c')], 'h2', NOW);
  t.equal(plan.delete.length, 1);
  plan = reconcileDaemonSet(ds({ maxUnavailable: 2 }), nodes, [pod('pa', 'a'), pod('pb', 'b'), pod('pc', 'c')], 'h2', NOW);
  t.equal(plan.delete.length, 2);
  plan = reconcileDaemonSet(ds(), nodes, [pod('pa', 'a', { hash: 'h2', ready: false }), pod('pb', 'b'), pod('pc', 'c')], 'h2', NOW);
  t.equal(plan.delete.length, 0, 'one unavailable already');
  plan = reconcileDaemonSet(ds(), nodes, [pod('pa', 'a', { hash: 'h2' }), pod('pb', 'b', { ready: false }), pod('pc', 'c')], 'h2', NOW);
  t.same(plan.delete.map((p) => p.metadata?.name), ['pb'], 'an unavailable old pod is replaced first');
});

t.test('daemon pods are pinned by node affinity and tolerate node conditions', async (t) => {
  const p = daemonPod(ds(), 'a', 'h1');
  t.same(p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }] }]);
  t.ok(p.spec?.tolerations?.some((x) => x.key === 'node.kubernetes.io/unreachable'));
  t.equal(p.metadata?.labels?.['controller-revision-hash'], 'h1');
});
