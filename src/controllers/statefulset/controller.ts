import type { ControllerRevision as K8sRevision, StatefulSet as K8sStatefulSet } from 'kubernetes-types/apps/v1.js';
import type { PersistentVolumeClaim as K8sPVC, Pod as K8sPod } from 'kubernetes-types/core/v1.js';
import { splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import { adoptPatch, errCode, ignoreNotFound, newControllerRef, type Kube } from '../replicaset/common.js';
import { Controller } from '../run.js';
import { podHandlers } from '../replicaset/controller.js';
import { statusChanged } from '../replicaset/reconcile.js';
import { applyHistory } from '../daemonset/controller.js';
import { REVISION_HASH_LABEL, planHistory, templateOf } from './history.js';
import { reconcileStatefulSet } from './reconcile.js';

const log = componentLogger('statefulset-controller');
type StatefulSet = Kube<K8sStatefulSet>;
type Pod = Kube<K8sPod>;
type PVC = Kube<K8sPVC>;
type Revision = Kube<K8sRevision>;

export function startStatefulSetController(ctx: ControllerContext): { stop(): void } {
  const stsInf = ctx.informers.get<StatefulSet>(R.statefulsets);
  const podInf = ctx.informers.get<Pod>(R.pods);
  const pvcInf = ctx.informers.get<PVC>(R.persistentvolumeclaims);
  const revInf = ctx.informers.get<Revision>(R.controllerrevisions);
  podInf.addIndex('namespace', byNamespace);
  revInf.addIndex('namespace', byNamespace);
  pvcInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('statefulset-controller');

  const sync = async (key: string): Promise<void> => {
    const sts = stsInf.get(key);
    if (!sts || sts.metadata?.deletionTimestamp) return;
    const ns = splitKey(key).namespace ?? 'default';
    const pods = podInf.byIndex('namespace', ns);
    const revisions = revInf.byIndex('namespace', ns);
    const inUse = new Set([sts.status?.currentRevision ?? '', ...pods.map((p) => p.metadata?.labels?.[REVISION_HASH_LABEL] ?? '')].filter(Boolean));
    const history = planHistory(sts, 'apps/v1', 'StatefulSet', revisions, inUse);
    await applyHistory(ctx, ns, history);
    const updateTemplate = sts.spec?.template;
    const currentHash = sts.status?.currentRevision || history.updateHash;
    const currentRev = revisions.find((r) => r.metadata?.labels?.[REVISION_HASH_LABEL] === currentHash && r.metadata?.ownerReferences?.some((o) => o.uid === sts.metadata?.uid));
    const currentTemplate = currentHash === history.updateHash ? updateTemplate : templateOf(currentRev);
    const pvcNames = new Set(pvcInf.byIndex('namespace', ns).map((c) => c.metadata!.name!));
    const plan = reconcileStatefulSet(sts, pods, pvcNames, { currentHash, currentTemplate, updateHash: history.updateHash, updateTemplate }, ctx.clock.now());
    const ref = newControllerRef(sts, 'apps/v1', 'StatefulSet');
    for (const p of plan.adopt) await ignoreNotFound(() => ctx.client.patch(R.pods, p.metadata!.name!, adoptPatch(p, ref), { namespace: ns, type: 'merge' }));
    for (const c of plan.createPVCs) {
      try {
        await ctx.client.create(R.persistentvolumeclaims, c as PVC, ns);
        recorder.event(sts, 'Normal', 'SuccessfulCreate', `create Claim ${c.metadata?.name} Pod ${sts.metadata?.name} in StatefulSet ${sts.metadata?.name} success`);
      } catch (err) {
        if (errCode(err) !== 409) throw err;
      }
    }
    await Promise.all(
      plan.createPods.map(async (p) => {
        try {
          await ctx.client.create(R.pods, p as Pod, ns);
          recorder.event(sts, 'Normal', 'SuccessfulCreate', `create Pod ${p.metadata?.name} in StatefulSet ${sts.metadata?.name} successful`);
        } catch (err) {
          if (errCode(err) !== 409) throw err;
        }
      }),
    );
    for (const p of plan.deletePods) {
      await ignoreNotFound(() => ctx.client.delete(R.pods, p.metadata!.name!, ns));
      recorder.event(sts, 'Normal', 'SuccessfulDelete', `delete Pod ${p.metadata?.name} in StatefulSet ${sts.metadata?.name} successful`);
    }
    if (statusChanged(sts.status, plan.status)) {
      await ignoreNotFound(() => ctx.client.patch(R.statefulsets, sts.metadata!.name!, { status: plan.status }, { namespace: ns, type: 'merge', subresource: 'status' }));
    }
  };

  const c = new Controller({ name: 'statefulset', log });
  stsInf.addHandlers(c.handlers());
  podInf.addHandlers(podHandlers('StatefulSet', stsInf, c.enqueue));
  return c.run({ informers: [stsInf, podInf, pvcInf, revInf], workers: ctx.options.workers, sync });
}
