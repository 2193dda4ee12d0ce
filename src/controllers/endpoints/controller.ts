import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { objectKey, splitKey } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { byNamespace } from '../../client/informer.js';
import { WorkQueue } from '../../client/workqueue.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import { runWhenSynced } from '../endpointslice/run.js';
import type { PodObj } from '../endpointslice/podutil.js';
import type { SvcObj } from '../endpointslice/reconcile.js';
import { LABEL_SKIP_MIRROR, planEndpoints, renderEndpoints, type EndpointsObj } from './reconcile.js';

const log = componentLogger('endpoints-controller');
const syncs = counter({ name: 'skiff_endpoints_syncs_total', help: 'Endpoints controller syncs by result', labelNames: ['result'] as const });

const hasSelector = (svc: SvcObj | undefined): boolean => !!svc?.spec?.selector && Object.keys(svc.spec.selector).length > 0;

/** core/v1 Endpoints for selector Services (manual Endpoints of selector-less Services are left alone). */
export function startEndpointsController(ctx: ControllerContext): { stop(): void } {
  const services = ctx.informers.get<SvcObj>(R.services);
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('namespace', byNamespace);
  const endpoints = ctx.informers.get<EndpointsObj>(R.endpoints);
  services.addIndex('namespace', byNamespace);
  const queue = new WorkQueue();
  const enqueueForPod = (pod: PodObj) => {
    for (const svc of services.byIndex('namespace', pod.metadata?.namespace ?? '')) {
      if (hasSelector(svc) && labelSelectorMatches({ matchLabels: svc.spec!.selector! }, pod.metadata?.labels)) queue.add(objectKey(svc));
    }
  };
  const enqueue = (o: SvcObj | EndpointsObj) => queue.add(objectKey(o));
  services.addHandlers({ add: enqueue, update: (_o, n) => enqueue(n), delete: enqueue });
  endpoints.addHandlers({ add: enqueue, update: (_o, n) => enqueue(n), delete: enqueue });
  pods.addHandlers({
    add: enqueueForPod,
    update: (o, n) => {
      enqueueForPod(o);
      enqueueForPod(n);
    },
    delete: enqueueForPod,
  });

  const sync = async (key: string): Promise<void> => {
    const svc = services.get(key);
    const current = endpoints.get(key);
    const { namespace, name } = splitKey(key);
    if (!svc || !hasSelector(svc) || svc.spec?.type === 'ExternalName') {
      // Only Endpoints this controller wrote are removed: manual ones belong to their author.
      if (current && current.metadata?.labels?.[LABEL_SKIP_MIRROR] === 'true') {
        await ctx.client.delete(R.endpoints, name, namespace).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      }
      return;
    }
    const plan = planEndpoints(renderEndpoints(svc, pods.byIndex('namespace', namespace ?? '')), current);
    if (plan.create) await ctx.client.create(R.endpoints, plan.create, namespace);
    else if (plan.update) await ctx.client.update(R.endpoints, plan.update);
  };
  return runWhenSynced({ informers: [services, pods, endpoints], queue, workers: ctx.options.workers, sync, log, syncs });
}
