import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { WorkQueue } from '../../client/workqueue.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { runWhenSynced } from '../endpointslice/run.js';
import { desiredAggregatedRules, type ClusterRoleObj } from './reconcile.js';

const log = componentLogger('clusterrole-aggregation-controller');
const syncs = counter({ name: 'skiff_clusterrole_aggregation_syncs_total', help: 'ClusterRole aggregation syncs by result', labelNames: ['result'] as const });

/** Writes the union of matching ClusterRoles' rules into every aggregated ClusterRole (admin, edit, view ...). */
export function startClusterRoleAggregationController(ctx: ControllerContext): { stop(): void } {
  const roles = ctx.informers.get<ClusterRoleObj>(R.clusterroles);
  const queue = new WorkQueue();
  const enqueueAggregated = (): void => {
    for (const r of roles.list()) if (r.aggregationRule) queue.add(r.metadata!.name!);
  };
  roles.addHandlers({ add: enqueueAggregated, update: enqueueAggregated, delete: enqueueAggregated });
  const sync = async (name: string): Promise<void> => {
    const role = roles.get(name);
    if (!role) return;
    const rules = desiredAggregatedRules(role, roles.list());
    if (!rules) return;
    await ctx.client.patch(R.clusterroles, name, { rules }, { type: 'merge', fieldManager: 'clusterrole-aggregation-controller' });
  };
  return runWhenSynced({ informers: [roles], queue, workers: 1, sync, log, syncs });
}
