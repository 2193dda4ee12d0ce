import type { ControllerContext } from '../context.js';
import { objectKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { WorkQueue } from '../../client/workqueue.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { apiErrorStatus, isConflict, isNotFound } from '../../scheduler/apierr.js';
import { runWhenSynced } from '../endpointslice/run.js';
import { HostPathProvisioner, type VolumeProvisioner } from './provisioner.js';
import {
  ANN_BIND_COMPLETED,
  ANN_BOUND_BY_CONTROLLER,
  ANN_PROVISIONED_BY,
  defaultStorageClass,
  findDefaultClass,
  findMatchingVolume,
  planVolume,
  provisionedVolume,
  type PvObj,
  type PvcObj,
  type ScObj,
} from './reconcile.js';

const log = componentLogger('volume-controller');
const syncs = counter({ name: 'skiff_volume_syncs_total', help: 'PV/PVC controller syncs by result', labelNames: ['result'] as const });
const ops = counter({ name: 'skiff_volume_operations_total', help: 'PV/PVC operations', labelNames: ['op'] as const });

const ignoreNotFound = (err: unknown) => {
  if (!isNotFound(err)) throw err;
};

/**
 * PV/PVC binder with a hostPath dynamic provisioner: claims bind to the smallest matching PV,
 * claims of a class served by the provisioner get a new PV (a directory under DIR/volumes), and
 * a released PV is deleted (reclaim Delete) or kept as Released (Retain). Installs the default
 * StorageClass `standard` when no default class exists. One worker: two claims never race for a PV.
 */
export function startVolumeController(ctx: ControllerContext, provisioner: VolumeProvisioner = new HostPathProvisioner(ctx.options.dataDir)): { stop(): void } {
  const pvs = ctx.informers.get<PvObj>(R.persistentvolumes);
  const pvcs = ctx.informers.get<PvcObj>(R.persistentvolumeclaims);
  const classes = ctx.informers.get<ScObj>(R.storageclasses);
  const recorder = ctx.recorder('persistentvolume-controller');
  const queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 30_000 });
  pvcs.addHandlers({
    add: (c) => queue.add(`pvc:${objectKey(c)}`),
    update: (_o, c) => queue.add(`pvc:${objectKey(c)}`),
    delete: (c) => {
      if (c.spec?.volumeName) queue.add(`pv:${c.spec.volumeName}`);
    },
  });
  pvs.addHandlers({
    add: (v) => queue.add(`pv:${v.metadata!.name}`),
    update: (_o, v) => {
      queue.add(`pv:${v.metadata!.name}`);
      const ref = v.spec?.claimRef;
      if (ref) queue.add(`pvc:${ref.namespace}/${ref.name}`);
      // a volume became free: pending claims may fit now
      if (!ref) for (const c of pvcs.list()) if (!c.spec?.volumeName) queue.add(`pvc:${objectKey(c)}`);
    },
  });
  classes.addHandlers({ add: () => queue.add('classes'), delete: () => queue.add('classes') });

  const syncClasses = async () => {
    if (findDefaultClass(classes.list())) return;
    await ctx.client.create(R.storageclasses, defaultStorageClass()).catch((err) => {
      if (!isConflict(err)) throw err;
    });
    for (const c of pvcs.list()) if (c.spec?.storageClassName === undefined) queue.add(`pvc:${objectKey(c)}`);
  };

  const setClaimStatus = async (pvc: PvcObj, pv: PvObj | undefined, phase: 'Bound' | 'Pending' | 'Lost') => {
    const status = phase === 'Bound' ? { phase, capacity: pv!.spec?.capacity, accessModes: pv!.spec?.accessModes } : { phase };
    if (pvc.status?.phase === phase && (phase !== 'Bound' || JSON.stringify(pvc.status.capacity) === JSON.stringify(pv!.spec?.capacity))) return;
    await ctx.client.patch(R.persistentvolumeclaims, pvc.metadata!.name!, { status }, { namespace: pvc.metadata!.namespace, subresource: 'status', type: 'merge' }).catch(ignoreNotFound);
  };

  const setVolumePhase = async (pv: PvObj, phase: string, message?: string) => {
    if (pv.status?.phase === phase) return;
    await ctx.client.patch(R.persistentvolumes, pv.metadata!.name!, { status: { phase, message: message ?? null } }, { subresource: 'status', type: 'merge' }).catch(ignoreNotFound);
  };

  const bind = async (pvc: PvcObj, pv: PvObj) => {
    const ref = pv.spec?.claimRef;
    if (!ref?.uid) {
      // claim the volume first: the update fails with a conflict if someone else got it
      const claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid, resourceVersion: pvc.metadata!.resourceVersion };
      const annotations = { ...(pv.metadata?.annotations ?? {}), [ANN_BOUND_BY_CONTROLLER]: 'yes' };
      pv = await ctx.client.update(R.persistentvolumes, { ...pv, metadata: { ...pv.metadata, annotations }, spec: { ...pv.spec, claimRef } });
    }
    await setVolumePhase(pv, 'Bound');
    if (pvc.spec?.volumeName !== pv.metadata!.name) {
      const annotations = { ...(pvc.metadata?.annotations ?? {}), [ANN_BIND_COMPLETED]: 'yes', [ANN_BOUND_BY_CONTROLLER]: 'yes' };
      const stored = pvcs.get(objectKey(pvc)) ?? pvc; // not the copy with an effective default class
      pvc = await ctx.client.update(R.persistentvolumeclaims, { ...stored, metadata: { ...stored.metadata, annotations }, spec: { ...stored.spec, volumeName: pv.metadata!.name } });
    }
    await setClaimStatus(pvc, pv, 'Bound');
    ops.inc({ op: 'bind' });
    log.info({ pvc: objectKey(pvc), pv: pv.metadata!.name }, 'claim bound');
  };

  const syncClaim = async (key: string) => {
    const cached = pvcs.get(key);
    if (!cached || cached.metadata?.deletionTimestamp) return;
    let pvc = cached;
    if (pvc.spec?.storageClassName === undefined || pvc.spec.storageClassName === null) {
      const def = findDefaultClass(classes.list());
      if (def) {
        // retroactive default class (Kubernetes 1.28+); where the apiserver refuses the write, use it anyway
        const written = await ctx.client
          .patch(R.persistentvolumeclaims, pvc.metadata!.name!, { spec: { storageClassName: def.metadata!.name } }, { namespace: pvc.metadata!.namespace, type: 'merge' })
          .then(
            () => true,
            (err) => {
              if (apiErrorStatus(err) !== 422) throw err;
              return false;
            },
          );
        if (written) return;
        pvc = { ...pvc, spec: { ...pvc.spec, storageClassName: def.metadata!.name } } as PvcObj;
      }
    }
    if (pvc.spec?.volumeName) {
      const pv = pvs.get(pvc.spec.volumeName);
      if (!pv) {
        if (pvc.status?.phase === 'Bound') {
          recorder.event(pvc, 'Warning', 'ClaimLost', `Bound claim has lost reference to PersistentVolume ${pvc.spec.volumeName}. Data on the volume is lost!`);
          await setClaimStatus(pvc, undefined, 'Lost');
        }
        return;
      }
      const ref = pv.spec?.claimRef;
      if (ref?.uid === pvc.metadata?.uid && pvc.status?.phase === 'Bound' && pv.status?.phase === 'Bound') return; // done
      if (!ref?.uid || ref.uid === pvc.metadata?.uid) return bind(pvc, pv);
      recorder.event(pvc, 'Warning', 'FailedBinding', `volume "${pv.metadata!.name}" already bound to a different claim`);
      return setClaimStatus(pvc, undefined, 'Pending');
    }
    const match = findMatchingVolume(pvc, pvs.list());
    if (match) return bind(pvc, match);
    const cls = classes.get(pvc.spec?.storageClassName ?? '');
    if (cls && cls.provisioner === provisioner.name && (cls.volumeBindingMode ?? 'Immediate') === 'Immediate') {
      const pv = provisionedVolume(pvc, cls, provisioner.root);
      if (pvs.get(pv.metadata!.name!)) return; // made already; the cache will show it bound soon
      await provisioner.create(pv);
      await ctx.client.create(R.persistentvolumes, pv).catch((err) => {
        if (!isConflict(err)) throw err;
      });
      ops.inc({ op: 'provision' });
      recorder.event(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pv.metadata!.name} using ${provisioner.name}`);
      return;
    }
    await setClaimStatus(pvc, undefined, 'Pending');
    recorder.event(
      pvc,
      'Normal',
      cls ? 'ExternalProvisioning' : 'FailedBinding',
      cls ? `Waiting for a volume to be created by the external provisioner "${cls.provisioner}"` : pvc.spec?.storageClassName ? `storageclass.storage.k8s.io "${pvc.spec.storageClassName}" not found` : 'no persistent volumes available for this claim and no storage class is set',
    );
  };

  const syncVolume = async (name: string) => {
    const pv = pvs.get(name);
    if (!pv) return;
    const ref = pv.spec?.claimRef;
    let claim = ref ? pvcs.get(`${ref.namespace}/${ref.name}`) : undefined;
    if (ref?.uid && (!claim || claim.metadata?.uid !== ref.uid)) {
      // never release on a stale cache: ask the server
      claim = await ctx.client.get<PvcObj>(R.persistentvolumeclaims, ref.name!, ref.namespace).catch((err) => {
        ignoreNotFound(err);
        return undefined;
      });
    }
    const plan = planVolume(pv, claim);
    switch (plan.action) {
      case 'none':
        return;
      case 'available':
        return setVolumePhase(pv, 'Available');
      case 'bound':
        return setVolumePhase(pv, 'Bound');
      case 'release':
        recorder.event(pv, 'Normal', 'VolumeReleased', `claim ${ref!.namespace}/${ref!.name} is gone; volume retained`);
        return setVolumePhase(pv, 'Released');
      case 'delete':
        if (pv.metadata?.annotations?.[ANN_PROVISIONED_BY] !== provisioner.name) {
          recorder.event(pv, 'Warning', 'VolumeFailedDelete', 'no provisioner can delete this volume');
          return setVolumePhase(pv, 'Failed', 'no provisioner can delete this volume');
        }
        await setVolumePhase(pv, 'Released');
        await provisioner.delete(pv);
        await ctx.client.delete(R.persistentvolumes, name).catch(ignoreNotFound);
        ops.inc({ op: 'delete' });
        log.info({ pv: name }, 'released volume deleted');
        return;
    }
  };

  const sync = async (key: string): Promise<void> => {
    if (key === 'classes') return syncClasses();
    if (key.startsWith('pvc:')) return syncClaim(key.slice(4));
    return syncVolume(key.slice(3));
  };
  queue.add('classes');
  return runWhenSynced({ informers: [pvs, pvcs, classes], queue, workers: 1, sync, log, syncs });
}
