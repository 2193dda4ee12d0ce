import type { Namespace as K8sNamespace } from 'kubernetes-types/core/v1.js';
import { R, RESOURCES } from '../../api/registry.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { ignoreNotFound, runBounded, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { NS_FINALIZER, hasNamespaceFinalizer, reconcileNamespace, type NamespaceContent } from './reconcile.js';

const log = componentLogger('namespace-controller');
type Namespace = Kube<K8sNamespace>;

/** Namespaced resources emptied on namespace deletion. */
const NAMESPACED = RESOURCES.filter((r) => r.namespaced && r.verbs.includes('list') && r.verbs.includes('delete'));

export function startNamespaceController(ctx: ControllerContext, opts: { recheckMs?: number } = {}): { stop(): void } {
  const nsInf = ctx.informers.get<Namespace>(R.namespaces);
  const recheckMs = opts.recheckMs ?? 1000;
  const c = new Controller({ name: 'namespace', log });

  const sync = async (name: string): Promise<void> => {
    const ns = nsInf.get(name);
    if (!ns?.metadata?.deletionTimestamp) return;
    if (!hasNamespaceFinalizer(ns)) {
      await ignoreNotFound(() => ctx.client.delete(R.namespaces, name));
      return;
    }
    const content: NamespaceContent[] = await Promise.all(NAMESPACED.map(async (info) => ({ info, items: (await ctx.client.list(info, { namespace: name })).items })));
    const plan = reconcileNamespace(ns, content, ctx.clock.now());
    const errors = await runBounded(plan.delete, 20, async ({ info, name: obj }) => {
      await ignoreNotFound(() => ctx.client.delete(info, obj, name, { propagationPolicy: 'Background' }));
    });
    if (plan.status) await ignoreNotFound(() => ctx.client.patch(R.namespaces, name, { status: plan.status }, { type: 'merge', subresource: 'status' }));
    if (errors.length) throw errors[0];
    if (!plan.finalize) {
      log.debug({ namespace: name, remaining: plan.remaining }, 'namespace content remaining');
      c.queue.addAfter(name, recheckMs);
      return;
    }
    await finalize(name);
  };

  /** Drops the `kubernetes` finalizer (finalize subresource, and metadata), then deletes the namespace again. */
  const finalize = async (name: string): Promise<void> => {
    const cur = await ignoreNotFound(() => ctx.client.get<Namespace>(R.namespaces, name));
    if (!cur) return;
    if ((cur.spec?.finalizers ?? []).includes(NS_FINALIZER)) {
      const next = structuredClone(cur) as Namespace;
      next.spec = { ...(next.spec ?? {}), finalizers: (cur.spec?.finalizers ?? []).filter((f) => f !== NS_FINALIZER) };
      await ignoreNotFound(() => ctx.client.update(R.namespaces, next, { subresource: 'finalize' }));
    }
    const again = await ignoreNotFound(() => ctx.client.get<Namespace>(R.namespaces, name));
    if (again && (again.metadata?.finalizers ?? []).includes(NS_FINALIZER)) {
      again.metadata!.finalizers = again.metadata!.finalizers!.filter((f) => f !== NS_FINALIZER);
      await ignoreNotFound(() => ctx.client.update(R.namespaces, again));
    }
    await ignoreNotFound(() => ctx.client.delete(R.namespaces, name));
    log.info({ namespace: name }, 'namespace finalized');
  };

  const { add, update } = c.handlers<Namespace>((ns) => (ns.metadata?.deletionTimestamp ? ns.metadata.name : undefined));
  nsInf.addHandlers({ add, update });
  return c.run({ informers: [nsInf], workers: ctx.options.workers, sync });
}
