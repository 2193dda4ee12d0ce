import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { objectKey, splitKey } from '../../api/object.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import { Controller } from '../run.js';
import type { SvcObj } from '../endpointslice/reconcile.js';
import { LoadBalancerPendingError, PoolProvider, type LoadBalancerProvider } from './provider.js';
import { statusPatch, wantsLoadBalancer } from './reconcile.js';

const log = componentLogger('lbipam-controller');
const pendingTotal = counter({ name: 'skiff_lbipam_pending_total', help: 'LoadBalancer allocations left pending, by reason', labelNames: ['reason'] as const });

/**
 * LoadBalancer IPAM: Services of type LoadBalancer get status.loadBalancer.ingress from a
 * provider (the --lb-pool address pool by default); released when the Service goes or changes type.
 * One worker, so two Services never take the same address.
 */
export function startLbIpamController(ctx: ControllerContext, provider: LoadBalancerProvider = new PoolProvider(ctx.options.lbPool)): { stop(): void } {
  const services = ctx.informers.get<SvcObj>(R.services);
  const recorder = ctx.recorder('lbipam-controller');
  const c = new Controller({ name: 'lbipam', log, baseDelayMs: 500 });
  const enqueue = (s: SvcObj) => c.enqueue(objectKey(s));
  services.addHandlers({
    ...c.handlers(),
    delete: (s) => {
      enqueue(s);
      // an address came free: pending Services may get it now
      if (s.status?.loadBalancer?.ingress?.length) for (const o of services.list()) if (wantsLoadBalancer(o) && !o.status?.loadBalancer?.ingress?.length) enqueue(o);
    },
  });

  const sync = async (key: string): Promise<void> => {
    const svc = services.get(key);
    if (!wantsLoadBalancer(svc)) {
      await provider.ensureLoadBalancerDeleted(key);
      if (svc?.status?.loadBalancer?.ingress?.length && svc.spec?.type !== 'LoadBalancer') {
        await writeStatus(svc, []);
        recorder.event(svc, 'Normal', 'DeletedLoadBalancer', 'Deleted load balancer');
        // freed: retry the ones still pending
        for (const o of services.list()) if (wantsLoadBalancer(o) && !o.status?.loadBalancer?.ingress?.length) enqueue(o);
      }
      return;
    }
    const lbServices = services.list().filter(wantsLoadBalancer);
    try {
      const ingress = await provider.ensureLoadBalancer(svc!, lbServices);
      if (await writeStatus(svc!, ingress)) recorder.event(svc!, 'Normal', 'EnsuredLoadBalancer', `Ensured load balancer: ${ingress.map((i) => i.ip ?? i.hostname).join(', ')}`);
    } catch (err) {
      if (!(err instanceof LoadBalancerPendingError)) throw err;
      pendingTotal.inc({ reason: err.reason });
      recorder.event(svc!, 'Warning', 'AllocationFailed', err.message);
      if (svc!.status?.loadBalancer?.ingress?.length) await writeStatus(svc!, []);
    }
  };

  const writeStatus = async (svc: SvcObj, ingress: Parameters<typeof statusPatch>[1]): Promise<boolean> => {
    const patch = statusPatch(svc, ingress);
    if (!patch) return false;
    const { namespace, name } = splitKey(objectKey(svc));
    try {
      await ctx.client.patch(R.services, name, patch, { namespace, subresource: 'status', type: 'merge' });
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    log.info({ svc: objectKey(svc), ingress }, 'load balancer status written');
    return true;
  };
  return c.run({ informers: [services], workers: 1, sync });
}
