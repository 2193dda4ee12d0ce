import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import { isConflict } from '../../scheduler/apierr.js';
import { Controller } from '../run.js';
import { REQUIRED_SERVICE_ACCOUNTS, missingServiceAccounts, type NamespaceObj, type ServiceAccountObj } from './reconcile.js';

const log = componentLogger('serviceaccount-controller');

/** Keeps a `default` ServiceAccount in every active namespace (re-created if deleted). */
export function startServiceAccountController(ctx: ControllerContext): { stop(): void } {
  const namespaces = ctx.informers.get<NamespaceObj>(R.namespaces);
  const sas = ctx.informers.get<ServiceAccountObj>(R.serviceaccounts);
  sas.addIndex('namespace', byNamespace);
  const c = new Controller({ name: 'serviceaccount', log });
  const { add, update } = c.handlers<NamespaceObj>();
  namespaces.addHandlers({ add, update });
  sas.addHandlers({ delete: c.handlers<ServiceAccountObj>((sa) => (REQUIRED_SERVICE_ACCOUNTS.includes(sa.metadata?.name ?? '') ? sa.metadata?.namespace : undefined)).delete });
  const sync = async (ns: string): Promise<void> => {
    const existing = sas.byIndex('namespace', ns).map((s) => s.metadata!.name!);
    for (const sa of missingServiceAccounts(namespaces.get(ns), existing)) {
      await ctx.client.create(R.serviceaccounts, sa, ns).catch((err) => {
        if (!isConflict(err)) throw err; // already there: the cache was behind
      });
    }
  };
  return c.run({ informers: [namespaces, sas], workers: ctx.options.workers, sync });
}
