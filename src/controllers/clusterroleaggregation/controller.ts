import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { componentLogger } from '../../util/log.js';
import { Controller } from '../run.js';
import { desiredAggregatedRules, type ClusterRoleObj } from './reconcile.js';

const log = componentLogger('clusterrole-aggregation-controller');

/** Writes the union of matching ClusterRoles' rules into every aggregated ClusterRole (admin, edit, view ...). */
export function startClusterRoleAggregationController(ctx: ControllerContext): { stop(): void } {
  const roles = ctx.informers.get<ClusterRoleObj>(R.clusterroles);
  const c = new Controller({ name: 'clusterroleaggregation', log });
  const enqueueAggregated = (): void => {
    for (const r of roles.list()) if (r.aggregationRule) c.enqueue(r.metadata!.name!);
  };
  roles.addHandlers({ add: enqueueAggregated, update: enqueueAggregated, delete: enqueueAggregated });
  const sync = async (name: string): Promise<void> => {
    const role = roles.get(name);
    if (!role) return;
    const rules = desiredAggregatedRules(role, roles.list());
    if (!rules) return;
    await ctx.client.patch(R.clusterroles, name, { rules }, { type: 'merge', fieldManager: 'clusterrole-aggregation-controller' });
  };
  return c.run({ informers: [roles], workers: 1, sync });
}
