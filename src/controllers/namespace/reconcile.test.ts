import t from 'tap';
import { R } from '../../api/registry.js';
import { hasNamespaceFinalizer, reconcileNamespace } from './reconcile.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const ns = (deleting: boolean) => ({ metadata: { name: 'team', deletionTimestamp: deleting ? '2026-01-01T00:00:00Z' : undefined }, spec: { finalizers: ['kubernetes'] } });

t.test('a live namespace is left alone', async (t) => {
  const plan = reconcileNamespace(ns(false), [{ info: R.pods, items: [{ metadata: { name: 'p' } }] }], NOW);
  t.same(plan, { delete: [], remaining: {}, finalize: false });
});

t.test('terminating: deletes what is not yet deleting, waits, reports remaining', async (t) => {
  const plan = reconcileNamespace(
    ns(true),
    [
      { info: R.pods, items: [{ metadata: { name: 'a' } }, { metadata: { name: 'b', deletionTimestamp: '2026-01-01T00:00:00Z' } }] },
      { info: R.configmaps, items: [{ metadata: { name: 'cm' } }] },
      { info: R.secrets, items: [] },
    ],
    NOW,
  );
  t.same(plan.delete.map((d) => `${d.info.resource}/${d.name}`), ['pods/a', 'configmaps/cm']);
  t.same(plan.remaining, { pods: 2, configmaps: 1 });
  t.equal(plan.finalize, false);
  t.equal(plan.status?.phase, 'Terminating');
  t.match(plan.status?.conditions?.[0], { type: 'NamespaceContentRemaining', status: 'True', message: /pods has 2 resource instances/ });
});

t.test('empty: finalize', async (t) => {
  const plan = reconcileNamespace(ns(true), [{ info: R.pods, items: [] }], NOW);
  t.equal(plan.finalize, true);
  t.same(plan.delete, []);
  t.ok(hasNamespaceFinalizer(ns(true)));
  t.notOk(hasNamespaceFinalizer({ metadata: { name: 'x' }, spec: { finalizers: [] } }));
});
