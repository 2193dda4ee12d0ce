import type { Pod as K8sPod } from 'kubernetes-types/core/v1.js';
import type { ReplicaSet as K8sReplicaSet } from 'kubernetes-types/apps/v1.js';
import { objectKey, splitKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { byNamespace } from '../../client/informer.js';
import type { Informer } from '../../client/types.js';
import { componentLogger } from '../../util/log.js';
import type { ControllerContext } from '../context.js';
import {
  Expectations,
  adoptPatch,
  controllerRefOf,
  ignoreNotFound,
  type Kube,
  isPodReady,
  newControllerRef,
  podFromTemplate,
  releasePatch,
  runBounded,
} from './common.js';
import { Controller } from '../run.js';
import { reconcileReplicaSet, statusChanged } from './reconcile.js';

const log = componentLogger('replicaset-controller');

type Pod = Kube<K8sPod>;
type ReplicaSet = Kube<K8sReplicaSet>;

/** Pods owned (controller ref) by an object of `kind`: index value `ns/name`. */
export function ownerIndex(kind: string): (obj: Pod) => string[] {
  return (obj) => {
    const ref = controllerRefOf(obj);
    return ref && ref.kind === kind ? [`${obj.metadata?.namespace}/${ref.name}`] : [];
  };
}

export function startReplicaSetController(ctx: ControllerContext): { stop(): void } {
  const rsInf = ctx.informers.get<ReplicaSet>(R.replicasets);
  const podInf = ctx.informers.get<Pod>(R.pods);
  podInf.addIndex('namespace', byNamespace);
  const recorder = ctx.recorder('replicaset-controller');
  const expectations = new Expectations();
  const c = new Controller({ name: 'replicaset', log });

  const sync = async (key: string): Promise<void> => {
    const rs = rsInf.get(key);
    if (!rs) {
      expectations.forget(key);
      return;
    }
    const { namespace } = splitKey(key);
    const pods = podInf.byIndex('namespace', namespace ?? '');
    const plan = reconcileReplicaSet(rs, pods, ctx.clock.now(), expectations.satisfied(key));
    const ref = newControllerRef(rs, 'apps/v1', 'ReplicaSet');
    for (const p of plan.adopt) await ignoreNotFound(() => ctx.client.patch(R.pods, p.metadata!.name!, adoptPatch(p, ref), { namespace, type: 'merge' }));
    for (const p of plan.release) await ignoreNotFound(() => ctx.client.patch(R.pods, p.metadata!.name!, releasePatch(p, ref.uid), { namespace, type: 'merge' }));

    if (plan.create > 0) await createPods(rs, plan.create, key);
    if (plan.delete.length > 0) await deletePods(rs, plan.delete, key);

    if (statusChanged(rs.status, plan.status)) {
      await ignoreNotFound(() => ctx.client.patch(R.replicasets, rs.metadata!.name!, { status: plan.status }, { namespace, type: 'merge', subresource: 'status' }));
    }
    const minReady = rs.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && (plan.status.readyReplicas ?? 0) > (plan.status.availableReplicas ?? 0)) c.queue.addAfter(key, minReady * 1000 + 50);
  };

  /** Slow-start batches (1, 2, 4 ...): a template the API refuses fails once, not `n` times. */
  const createPods = async (rs: ReplicaSet, n: number, key: string): Promise<void> => {
    const ref = newControllerRef(rs, 'apps/v1', 'ReplicaSet');
    const ns = rs.metadata!.namespace!;
    expectations.expect(key, n);
    let remaining = n;
    let batch = 1;
    let created = 0;
    while (remaining > 0) {
      const size = Math.min(batch, remaining);
      const errors = await runBounded(Array.from({ length: size }, (_, i) => i), size, async () => {
        try {
          await ctx.client.create(R.pods, podFromTemplate(rs.spec?.template, ref, ns, { generateName: `${rs.metadata!.name}-` }), ns);
          created++;
        } catch (err) {
          expectations.creationFailed(key);
          throw err;
        }
      });
      remaining -= size;
      if (errors.length) {
        for (let i = 0; i < remaining; i++) expectations.creationFailed(key);
        recorder.event(rs, 'Warning', 'FailedCreate', `Error creating: ${String((errors[0] as Error).message ?? errors[0])}`);
        throw errors[0];
      }
      batch *= 2;
    }
    recorder.event(rs, 'Normal', 'SuccessfulCreate', `Created ${created} pod(s)`);
  };

  const deletePods = async (rs: ReplicaSet, pods: K8sPod[], key: string): Promise<void> => {
    const ns = rs.metadata!.namespace!;
    expectations.expect(key, 0, pods.map((p) => objectKey(p)));
    const errors = await runBounded(pods, 50, async (p) => {
      try {
        await ignoreNotFound(() => ctx.client.delete(R.pods, p.metadata!.name!, ns));
      } catch (err) {
        expectations.deletionFailed(key, objectKey(p));
        throw err;
      }
    });
    recorder.event(rs, 'Normal', 'SuccessfulDelete', `Deleted pod(s): ${pods.map((p) => p.metadata?.name).join(', ')}`);
    if (errors.length) throw errors[0];
  };

  rsInf.addHandlers(c.handlers());
  podInf.addHandlers(podHandlers('ReplicaSet', rsInf, c.enqueue, expectations));
  return c.run({ informers: [rsInf, podInf], workers: ctx.options.workers, sync });
}

/**
 * Pod handlers for a controller of `kind`: an owned pod's change enqueues its owner (and lowers
 * expectations); an orphan enqueues every owner whose selector matches it, for adoption.
 */
export function podHandlers<O extends { spec?: { selector?: unknown }; metadata?: { namespace?: string; name?: string } }>(
  kind: string,
  owners: Informer<O & Record<string, unknown>>,
  enqueue: (key: string) => void,
  expectations?: Expectations,
): { add(p: Pod): void; update(o: Pod, n: Pod): void; delete(p: Pod): void } {
  const ownerKey = (p: Pod): string | undefined => {
    const ref = controllerRefOf(p);
    return ref && ref.kind === kind ? `${p.metadata?.namespace}/${ref.name}` : undefined;
  };
  const orphanOwners = (p: Pod): void => {
    if (controllerRefOf(p)) return;
    for (const o of owners.list(p.metadata?.namespace)) {
      if (labelSelectorMatches(o.spec?.selector as never, p.metadata?.labels)) enqueue(objectKey(o));
    }
  };
  return {
    add: (p) => {
      const k = ownerKey(p);
      if (k) {
        expectations?.observedAdd(k);
        enqueue(k);
      } else orphanOwners(p);
    },
    update: (o, n) => {
      const ko = ownerKey(o);
      const kn = ownerKey(n);
      if (ko && ko !== kn) enqueue(ko);
      if (kn) enqueue(kn);
      else orphanOwners(n);
      if (n.metadata?.deletionTimestamp && kn) expectations?.observedDelete(kn, objectKey(n));
      if (isPodReady(o) !== isPodReady(n) && kn) enqueue(kn);
    },
    delete: (p) => {
      const k = ownerKey(p);
      if (!k) return;
      expectations?.observedDelete(k, objectKey(p));
      enqueue(k);
    },
  };
}
