import type { ControllerContext } from '../context.js';
import type { ApiClient, Informer } from '../../client/types.js';
import { R } from '../../api/registry.js';
import { objectKey, splitKey } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { byNamespace } from '../../client/informer.js';
import { Controller } from '../run.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import type { PodObj } from './podutil.js';
import {
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  MANAGED_BY_CONTROLLER,
  MANAGED_BY_MIRRORING,
  desiredEndpointsForService,
  planSlices,
  type SliceObj,
  type SlicePlan,
  type SvcObj,
} from './reconcile.js';
import { desiredEndpointsFromEndpoints, shouldMirror, type EndpointsObj } from './mirror.js';

const log = componentLogger('endpointslice-controller');
const writes = counter({ name: 'skiff_endpointslice_writes_total', help: 'EndpointSlice writes by verb', labelNames: ['verb'] as const });

const OURS = new Set([MANAGED_BY_CONTROLLER, MANAGED_BY_MIRRORING]);

/** Keys of the selector Services (of an informer with the `namespace` index) whose selector matches the pod. */
export function servicesSelecting(services: Informer<SvcObj>, pod: PodObj): string[] {
  const out: string[] = [];
  for (const svc of services.byIndex('namespace', pod.metadata?.namespace ?? '')) {
    const sel = svc.spec?.selector;
    if (sel && Object.keys(sel).length > 0 && labelSelectorMatches({ matchLabels: sel }, pod.metadata?.labels)) out.push(objectKey(svc));
  }
  return out;
}

/** The `ns/name` of the Service a slice we manage belongs to. */
function serviceKeyOf(s: SliceObj): string | undefined {
  const svc = s.metadata?.labels?.[LABEL_SERVICE_NAME];
  return svc && OURS.has(s.metadata?.labels?.[LABEL_MANAGED_BY] ?? '') ? `${s.metadata?.namespace}/${svc}` : undefined;
}

/** What this controller last wrote per slice, so a sync never acts on a cache that has not seen its own writes. */
type Written = { oldRv?: string; deleted?: boolean; at: number };
/** Give up waiting for the cache after this long (the object may have come and gone meanwhile). */
const WRITE_VISIBLE_TIMEOUT_MS = 5000;

/**
 * EndpointSlice controller (discovery.k8s.io/v1) with mirroring: selector Services get slices
 * from their pods; selector-less Services with manual Endpoints get mirrored slices.
 */
export function startEndpointSliceController(ctx: ControllerContext): { stop(): void } {
  const services = ctx.informers.get<SvcObj>(R.services);
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('namespace', byNamespace);
  const slices = ctx.informers.get<SliceObj>(R.endpointslices);
  const endpoints = ctx.informers.get<EndpointsObj>(R.endpoints);
  services.addIndex('namespace', byNamespace);
  slices.addIndex('service', (s) => {
    const key = serviceKeyOf(s);
    return key ? [key] : [];
  });
  const c = new Controller({ name: 'endpointslice', log });

  services.addHandlers(c.handlers());
  pods.addHandlers(c.handlers<PodObj>((p) => servicesSelecting(services, p)));
  slices.addHandlers(c.handlers<SliceObj>((s) => serviceKeyOf(s)));
  endpoints.addHandlers(c.handlers());

  const writer = new SliceWriter(ctx.client, slices);

  const sync = async (key: string): Promise<void> => {
    if (writer.cacheIsStale(key)) {
      c.queue.addAfter(key, 20);
      return;
    }
    const svc = services.get(key);
    const existing = slices.byIndex('service', key);
    const mine = (m: string) => existing.filter((s) => s.metadata?.labels?.[LABEL_MANAGED_BY] === m);
    let plan: SlicePlan;
    if (!svc || svc.spec?.type === 'ExternalName') {
      plan = { create: [], update: [], delete: existing };
    } else if (svc.spec?.selector && Object.keys(svc.spec.selector).length > 0) {
      const desired = desiredEndpointsForService(svc, pods.byIndex('namespace', svc.metadata?.namespace ?? ''));
      plan = planSlices(svc, desired, mine(MANAGED_BY_CONTROLLER), MANAGED_BY_CONTROLLER);
      plan.delete.push(...mine(MANAGED_BY_MIRRORING));
    } else {
      const ep = endpoints.get(key);
      if (shouldMirror(svc, ep)) {
        plan = planSlices(svc, desiredEndpointsFromEndpoints(ep!), mine(MANAGED_BY_MIRRORING), MANAGED_BY_MIRRORING);
        plan.delete.push(...mine(MANAGED_BY_CONTROLLER));
      } else plan = { create: [], update: [], delete: existing };
    }
    await writer.apply(key, plan);
  };

  return c.run({ informers: [services, pods, slices, endpoints], workers: ctx.options.workers, sync });
}

/**
 * Applies slice plans and remembers what it wrote per Service, so a sync never acts on a cache
 * that has not seen its own previous writes (a second slice for the same endpoints, say).
 */
class SliceWriter {
  private readonly written = new Map<string, Map<string, Written>>();
  constructor(
    private readonly client: ApiClient,
    private readonly slices: Informer<SliceObj>,
  ) {}

  /** True when the cache still misses one of our earlier writes for this Service. */
  cacheIsStale(key: string): boolean {
    const w = this.written.get(key);
    if (!w) return false;
    for (const [name, rec] of w) {
      const cached = this.slices.get(`${splitKey(key).namespace}/${name}`);
      const seen = rec.deleted ? !cached || cached.metadata?.resourceVersion !== rec.oldRv : !!cached && cached.metadata?.resourceVersion !== rec.oldRv;
      if (seen || Date.now() - rec.at > WRITE_VISIBLE_TIMEOUT_MS) w.delete(name);
    }
    if (w.size === 0) this.written.delete(key);
    return w.size > 0;
  }

  async apply(key: string, plan: SlicePlan): Promise<void> {
    const rec = new Map<string, Written>();
    this.written.set(key, rec);
    for (const s of plan.delete) {
      rec.set(s.metadata!.name!, { oldRv: s.metadata?.resourceVersion, deleted: true, at: Date.now() });
      await this.client.delete(R.endpointslices, s.metadata!.name!, s.metadata!.namespace).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      writes.inc({ verb: 'delete' });
    }
    for (const s of plan.update) {
      rec.set(s.metadata!.name!, { oldRv: s.metadata?.resourceVersion, at: Date.now() });
      await this.client.update(R.endpointslices, s);
      writes.inc({ verb: 'update' });
    }
    for (const s of plan.create) {
      const made = await this.client.create(R.endpointslices, s, s.metadata!.namespace);
      rec.set(made.metadata!.name!, { at: Date.now() });
      writes.inc({ verb: 'create' });
    }
    if (rec.size === 0) this.written.delete(key);
  }
}
