import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isConflict } from '../../scheduler/apierr.js';
import { runWhenSynced } from '../endpointslice/run.js';
import { REQUIRED_SERVICE_ACCOUNTS, missingServiceAccounts, type NamespaceObj, type ServiceAccountObj } from './reconcile.js';

const log = componentLogger('serviceaccount-controller');
const syncs = counter({ name: 'skiff_serviceaccount_syncs_total', help: 'ServiceAccount controller syncs by result', labelNames: ['result'] as const });

/** Keeps a `default` ServiceAccount in every active namespace (re-created if deleted). */
export function startServiceAccountController(ctx: ControllerContext): { stop(): void } {
  const namespaces = ctx.informers.get<NamespaceObj>(R.namespaces);
  const sas = ctx.informers.get<ServiceAccountObj>(R.serviceaccounts);
  sas.addIndex('namespace', byNamespace);
  const queue = new WorkQueue();
  namespaces.addHandlers({ add: (ns) => queue.add(ns.metadata!.name!), update: (_o, ns) => queue.add(ns.metadata!.name!) });
  sas.addHandlers({
    delete: (sa) => {
      if (REQUIRED_SERVICE_ACCOUNTS.includes(sa.metadata?.name ?? '')) queue.add(sa.metadata!.namespace!);
    },
  });
  const sync = async (ns: string): Promise<void> => {
    const existing = sas.byIndex('namespace', ns).map((s) => s.metadata!.name!);
    for (const sa of missingServiceAccounts(namespaces.get(ns), existing)) {
      await ctx.client.create(R.serviceaccounts, sa, ns).catch((err) => {
        if (!isConflict(err)) throw err; // already there: the cache was behind
      });
    }
  };
  return runWhenSynced({ informers: [namespaces, sas], queue, workers: ctx.options.workers, sync, log, syncs });
}
