import t from 'tap';
import { desiredAggregatedRules, type ClusterRoleObj } from './reconcile.js';

const role = (name: string, labels: Record<string, string>, rules: ClusterRoleObj['rules'], agg?: Record<string, string>): ClusterRoleObj => ({
  metadata: { name, labels },
  rules,
  ...(agg ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: agg }] } } : {}),
});

t.test('aggregated role gets the union of matching roles, deduplicated, in name order', async (t) => {
  const view = role('view', {}, [], { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' });
  const a = role('b-pods', { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' }, [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }]);
  const b = role('a-svc', { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' }, [
    { verbs: ['list'], apiGroups: [''], resources: ['services'] },
    { verbs: ['get'], apiGroups: [''], resources: ['pods'] },
  ]);
  const other = role('other', { x: 'y' }, [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]);
  const rules = desiredAggregatedRules(view, [view, a, b, other]);
  t.same(rules, [
    { verbs: ['list'], apiGroups: [''], resources: ['services'] },
    { verbs: ['get'], apiGroups: [''], resources: ['pods'] },
  ]);
  t.equal(desiredAggregatedRules({ ...view, rules: rules! }, [view, a, b, other]), null, 'no write when already aggregated');
  t.equal(desiredAggregatedRules(a, [view, a, b]), null, 'non-aggregated roles are left alone');
});
