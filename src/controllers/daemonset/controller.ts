import type { ControllerRevision as K8sRevision, DaemonSet as K8sDaemonSet } from 'kubernetes-types/apps/v1.js';
import type { Node as K8sNode, Pod as K8sPod } from 'kubernetes-types/core/v1.js';
import { objectKey, splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { Expectations, adoptPatch, errCode, ignoreNotFound, newControllerRef, podFromTemplate, runBounded, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { podHandlers } from '../replicaset/controller.js';
import { statusChanged } from '../replicaset/reconcile.js';
import { REVISION_HASH_LABEL, planHistory, type HistoryPlan } from '../statefulset/history.js';
import { DAEMON_TOLERATIONS, reconcileDaemonSet } from './reconcile.js';

const log = componentLogger('daemonset-controller');
type DaemonSet = Kube<K8sDaemonSet>;
type Pod = Kube<K8sPod>;
type Node = Kube<K8sNode>;
type Revision = Kube<K8sRevision>;

/** A daemon pod for `node`: pinned with a matchFields affinity (the scheduler binds it), daemon tolerations. */
export function daemonPod(ds: K8sDaemonSet, node: string, hash: string): Pod {
  const pod = podFromTemplate(ds.spec?.template, newControllerRef(ds, 'apps/v1', 'DaemonSet'), ds.metadata!.namespace!, { generateName: `${ds.metadata!.name}-` }, { [REVISION_HASH_LABEL]: hash });
  const spec = pod.spec as NonNullable<K8sPod['spec']> & { affinity?: unknown; tolerations?: unknown[] };
  const affinity = (spec.affinity ?? {}) as Record<string, unknown>;
  spec.affinity = {
    ...affinity,
    nodeAffinity: {
      ...((affinity.nodeAffinity as object | undefined) ?? {}),
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] },
    },
  };
  const tols = [...((spec.tolerations as { key?: string; effect?: string }[] | undefined) ?? [])];
  for (const t of DAEMON_TOLERATIONS) if (!tols.some((x) => x.key === t.key && x.effect === t.effect)) tols.push(t);
  spec.tolerations = tols;
  return pod;
}

/** Applies a history plan: create/renumber/truncate ControllerRevisions. */
export async function applyHistory(ctx: ControllerContext, ns: string, plan: HistoryPlan): Promise<void> {
  if (plan.create) {
    try {
      await ctx.client.create(R.controllerrevisions, plan.create as Revision, ns);
    } catch (err) {
      if (errCode(err) !== 409) throw err;
    }
  }
  for (const r of plan.renumber) await ignoreNotFound(() => ctx.client.patch(R.controllerrevisions, r.name, { revision: r.revision }, { namespace: ns, type: 'merge' }));
  for (const name of plan.delete) await ignoreNotFound(() => ctx.client.delete(R.controllerrevisions, name, ns));
}

export function startDaemonSetController(ctx: ControllerContext): { stop(): void } {
  const dsInf = ctx.informers.get<DaemonSet>(R.daemonsets);
  const podInf = ctx.informers.get<Pod>(R.pods);
  const nodeInf = ctx.informers.get<Node>(R.nodes);
  const revInf = ctx.informers.get<Revision>(R.controllerrevisions);
  podInf.addIndex('namespace', byNamespace);
  revInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('daemonset-controller');
  const expectations = new Expectations();
  const c = new Controller({ name: 'daemonset', log });

  const sync = async (key: string): Promise<void> => {
    const ds = dsInf.get(key);
    if (!ds) {
      expectations.forget(key);
      return;
    }
    if (ds.metadata?.deletionTimestamp) return;
    const ns = splitKey(key).namespace ?? 'default';
    const pods = podInf.byIndex('namespace', ns);
    const inUse = new Set(pods.map((p) => p.metadata?.labels?.[REVISION_HASH_LABEL] ?? '').filter(Boolean));
    const history = planHistory(ds, 'apps/v1', 'DaemonSet', revInf.byIndex('namespace', ns), inUse);
    await applyHistory(ctx, ns, history);
    const plan = reconcileDaemonSet(ds, nodeInf.list(), pods, history.updateHash, ctx.clock.now(), expectations.satisfied(key));
    const ref = newControllerRef(ds, 'apps/v1', 'DaemonSet');
    for (const p of plan.adopt) await ignoreNotFound(() => ctx.client.patch(R.pods, p.metadata!.name!, adoptPatch(p, ref), { namespace: ns, type: 'merge' }));
    expectations.expect(key, plan.create.length, plan.delete.map((p) => objectKey(p)));
    const createErrors = await runBounded(plan.create, 20, async (node) => {
      try {
        await ctx.client.create(R.pods, daemonPod(ds, node, history.updateHash), ns);
      } catch (err) {
        expectations.creationFailed(key);
        throw err;
      }
    });
    const deleteErrors = await runBounded(plan.delete, 20, async (p) => {
      try {
        await ignoreNotFound(() => ctx.client.delete(R.pods, p.metadata!.name!, ns));
      } catch (err) {
        expectations.deletionFailed(key, objectKey(p));
        throw err;
      }
    });
    if (plan.create.length > createErrors.length) recorder.event(ds, 'Normal', 'SuccessfulCreate', `Created ${plan.create.length - createErrors.length} pod(s) on ${plan.create.join(', ')}`);
    if (plan.delete.length) recorder.event(ds, 'Normal', 'SuccessfulDelete', `Deleted pod(s): ${plan.delete.map((p) => p.metadata?.name).join(', ')}`);
    if (statusChanged(ds.status, plan.status)) {
      await ignoreNotFound(() => ctx.client.patch(R.daemonsets, ds.metadata!.name!, { status: plan.status }, { namespace: ns, type: 'merge', subresource: 'status' }));
    }
    const minReady = ds.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && (plan.status.numberReady ?? 0) > (plan.status.numberAvailable ?? 0)) c.queue.addAfter(key, minReady * 1000 + 50);
    const err = createErrors[0] ?? deleteErrors[0];
    if (err) throw err;
  };

  const all = (): void => dsInf.list().forEach((ds) => c.enqueue(objectKey(ds)));
  dsInf.addHandlers(c.handlers());
  nodeInf.addHandlers({ add: all, update: (o, n) => (JSON.stringify([o.metadata?.labels, o.spec?.taints]) !== JSON.stringify([n.metadata?.labels, n.spec?.taints]) ? all() : undefined), delete: all });
  podInf.addHandlers(podHandlers('DaemonSet', dsInf, c.enqueue, expectations));
  return c.run({ informers: [dsInf, podInf, nodeInf, revInf], workers: ctx.options.workers, sync });
}
