import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { splitKey } from '../../api/object.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import { isNotFound } from '../../scheduler/apierr.js';
import { Controller } from '../run.js';
import type { PodObj } from '../endpointslice/podutil.js';
import type { SvcObj } from '../endpointslice/reconcile.js';
import { servicesSelecting } from '../endpointslice/controller.js';
import { LABEL_SKIP_MIRROR, planEndpoints, renderEndpoints, type EndpointsObj } from './reconcile.js';

const log = componentLogger('endpoints-controller');

const hasSelector = (svc: SvcObj | undefined): boolean => !!svc?.spec?.selector && Object.keys(svc.spec.selector).length > 0;

/** core/v1 Endpoints for selector Services (manual Endpoints of selector-less Services are left alone). */
export function startEndpointsController(ctx: ControllerContext): { stop(): void } {
  const services = ctx.informers.get<SvcObj>(R.services);
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('namespace', byNamespace);
  const endpoints = ctx.informers.get<EndpointsObj>(R.endpoints);
  services.addIndex('namespace', byNamespace);
  const c = new Controller({ name: 'endpoints', log });
  services.addHandlers(c.handlers());
  endpoints.addHandlers(c.handlers());
  pods.addHandlers(c.handlers<PodObj>((p) => servicesSelecting(services, p)));

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
  return c.run({ informers: [services, pods, endpoints], workers: ctx.options.workers, sync });
}
