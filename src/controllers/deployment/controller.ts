import type { Deployment as K8sDeployment, ReplicaSet as K8sReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { Pod as K8sPod } from 'kubernetes-types/core/v1.js';
import { objectKey, splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { adoptPatch, claimObjects, controllerRefOf, errCode, ignoreNotFound, newControllerRef, releasePatch, stableJson, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { statusChanged } from '../replicaset/reconcile.js';
import { equalIgnoreHash } from './rollout.js';
import { reconcileDeployment, type DeploymentPlan } from './reconcile.js';

const log = componentLogger('deployment-controller');

type Deployment = Kube<K8sDeployment>;
type ReplicaSet = Kube<K8sReplicaSet>;
type Pod = Kube<K8sPod>;

export function startDeploymentController(ctx: ControllerContext): { stop(): void } {
  const dInf = ctx.informers.get<Deployment>(R.deployments);
  const rsInf = ctx.informers.get<ReplicaSet>(R.replicasets);
  const podInf = ctx.informers.get<Pod>(R.pods);
  rsInf.addIndex('namespace', byNamespace);
  podInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('deployment-controller');
  const c = new Controller({ name: 'deployment', log });

  const sync = async (key: string): Promise<void> => {
    const d = dInf.get(key);
    if (!d) return;
    const { namespace } = splitKey(key);
    const ns = namespace ?? 'default';
    if (!d.spec?.selector || stableJson(d.spec.selector) === '{}') {
      recorder.event(d, 'Warning', 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
      return;
    }
    const claim = claimObjects(d, d.spec.selector, rsInf.byIndex('namespace', ns));
    const ref = newControllerRef(d, 'apps/v1', 'Deployment');
    for (const rs of claim.adopt) await ignoreNotFound(() => ctx.client.patch(R.replicasets, rs.metadata!.name!, adoptPatch(rs, ref), { namespace: ns, type: 'merge' }));
    for (const rs of claim.release) await ignoreNotFound(() => ctx.client.patch(R.replicasets, rs.metadata!.name!, releasePatch(rs, ref.uid), { namespace: ns, type: 'merge' }));
    const plan = reconcileDeployment(d, claim.owned, podInf.byIndex('namespace', ns), ctx.clock.now());
    await applyPlan(d, plan, ns);
    if (plan.requeueAfterMs !== undefined) c.queue.addAfter(key, plan.requeueAfterMs);
  };

  const applyPlan = async (d: Deployment, plan: DeploymentPlan, ns: string): Promise<void> => {
    const name = d.metadata!.name!;
    if (plan.createRS) await createReplicaSet(d, plan.createRS, ns);
    for (const c of plan.updateRS) {
      const patch: Record<string, unknown> = {};
      if (c.replicas !== undefined) patch.spec = { replicas: c.replicas };
      if (c.annotations) patch.metadata = { annotations: c.annotations };
      if (Object.keys(patch).length) await ctx.client.patch(R.replicasets, c.name, patch, { namespace: ns, type: 'merge' });
    }
    for (const rsName of plan.deleteRS) await ignoreNotFound(() => ctx.client.delete(R.replicasets, rsName, ns, { propagationPolicy: 'Background' }));
    for (const e of plan.events) recorder.event(d, e.type, e.reason, e.message);
    if (plan.annotations) await ignoreNotFound(() => ctx.client.patch(R.deployments, name, { metadata: { annotations: plan.annotations } }, { namespace: ns, type: 'merge' }));
    if (statusChanged(d.status, plan.status)) {
      await ignoreNotFound(() => ctx.client.patch(R.deployments, name, { status: plan.status }, { namespace: ns, type: 'merge', subresource: 'status' }));
    }
  };

  /** Creates the new RS; a name taken by a different template is a hash collision (bump collisionCount). */
  const createReplicaSet = async (d: Deployment, rs: K8sReplicaSet, ns: string): Promise<void> => {
    try {
      await ctx.client.create(R.replicasets, rs as ReplicaSet, ns);
    } catch (err) {
      if (errCode(err) !== 409) throw err;
      const existing = await ctx.client.get<ReplicaSet>(R.replicasets, rs.metadata!.name!, ns);
      const mine = controllerRefOf(existing)?.uid === d.metadata?.uid;
      if (mine && equalIgnoreHash(existing.spec?.template, d.spec?.template)) return;
      const collisionCount = (d.status?.collisionCount ?? 0) + 1;
      await ctx.client.patch(R.deployments, d.metadata!.name!, { status: { collisionCount } }, { namespace: ns, type: 'merge', subresource: 'status' });
      throw err;
    }
  };

  dInf.addHandlers(c.handlers());
  // a ReplicaSet concerns its controlling Deployment or, orphaned, every Deployment selecting it
  const deploymentsOf = (rs: ReplicaSet): string | string[] | undefined => {
    const ref = controllerRefOf(rs);
    if (ref) return ref.kind === 'Deployment' ? `${rs.metadata?.namespace}/${ref.name}` : undefined;
    return dInf.list(rs.metadata?.namespace).filter((d) => labelSelectorMatches(d.spec?.selector, rs.metadata?.labels)).map(objectKey);
  };
  rsInf.addHandlers(c.handlers(deploymentsOf));
  podInf.addHandlers({
    // Recreate waits for old pods to be gone: their deletion re-syncs the deployment
    delete: (p) => {
      const ref = controllerRefOf(p);
      if (ref?.kind !== 'ReplicaSet') return;
      const rs = rsInf.get(`${p.metadata?.namespace}/${ref.name}`);
      const dref = controllerRefOf(rs);
      if (dref?.kind !== 'Deployment') return;
      const d = dInf.get(`${p.metadata?.namespace}/${dref.name}`);
      if (d?.spec?.strategy?.type === 'Recreate') c.enqueue(objectKey(d));
    },
  });
  return c.run({ informers: [dInf, rsInf, podInf], workers: ctx.options.workers, sync });
}
