import type { ControllerContext } from '../context.js';
import type { Informer } from '../../client/types.js';
import type { EventRecorder } from '../../client/events.js';
import { objectKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { apiErrorStatus, isConflict, isNotFound } from '../../scheduler/apierr.js';
import { Controller } from '../run.js';
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
class VolumeController {
  readonly pvs: Informer<PvObj>;
  readonly pvcs: Informer<PvcObj>;
  readonly classes: Informer<ScObj>;
  readonly recorder: EventRecorder;
  readonly controller = new Controller({ name: 'volume', log, baseDelayMs: 100 });
  readonly queue = this.controller.queue;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly provisioner: VolumeProvisioner,
  ) {
    this.pvs = ctx.informers.get<PvObj>(R.persistentvolumes);
    this.pvcs = ctx.informers.get<PvcObj>(R.persistentvolumeclaims);
    this.classes = ctx.informers.get<ScObj>(R.storageclasses);
    this.recorder = ctx.recorder('persistentvolume-controller');
    this.pvcs.addHandlers({
      add: (c) => this.queue.add(`pvc:${objectKey(c)}`),
      update: (_o, c) => this.queue.add(`pvc:${objectKey(c)}`),
      delete: (c) => {
        if (c.spec?.volumeName) this.queue.add(`pv:${c.spec.volumeName}`);
      },
    });
    this.pvs.addHandlers({
      add: (v) => this.queue.add(`pv:${v.metadata!.name}`),
      update: (_o, v) => {
        this.queue.add(`pv:${v.metadata!.name}`);
        const ref = v.spec?.claimRef;
        if (ref) this.queue.add(`pvc:${ref.namespace}/${ref.name}`);
        // a volume became free: pending claims may fit now
        if (!ref) for (const c of this.pvcs.list()) if (!c.spec?.volumeName) this.queue.add(`pvc:${objectKey(c)}`);
      },
    });
    this.classes.addHandlers({ add: () => this.queue.add('classes'), delete: () => this.queue.add('classes') });
  }

  private async syncClasses(): Promise<void> {
    if (findDefaultClass(this.classes.list())) return;
    await this.ctx.client.create(R.storageclasses, defaultStorageClass()).catch((err) => {
      if (!isConflict(err)) throw err;
    });
    for (const c of this.pvcs.list()) if (c.spec?.storageClassName === undefined) this.queue.add(`pvc:${objectKey(c)}`);
  }

  private async setClaimStatus(pvc: PvcObj, pv: PvObj | undefined, phase: 'Bound' | 'Pending' | 'Lost'): Promise<void> {
    const status = phase === 'Bound' ? { phase, capacity: pv!.spec?.capacity, accessModes: pv!.spec?.accessModes } : { phase };
    if (pvc.status?.phase === phase && (phase !== 'Bound' || JSON.stringify(pvc.status.capacity) === JSON.stringify(pv!.spec?.capacity))) return;
    await this.ctx.client.patch(R.persistentvolumeclaims, pvc.metadata!.name!, { status }, { namespace: pvc.metadata!.namespace, subresource: 'status', type: 'merge' }).catch(ignoreNotFound);
  }

  private async setVolumePhase(pv: PvObj, phase: string, message?: string): Promise<void> {
    if (pv.status?.phase === phase) return;
    await this.ctx.client.patch(R.persistentvolumes, pv.metadata!.name!, { status: { phase, message: message ?? null } }, { subresource: 'status', type: 'merge' }).catch(ignoreNotFound);
  }

  private async bind(pvc: PvcObj, pv: PvObj): Promise<void> {
    const ref = pv.spec?.claimRef;
    if (!ref?.uid) {
      // claim the volume first: the update fails with a conflict if someone else got it
      const claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid, resourceVersion: pvc.metadata!.resourceVersion };
      const annotations = { ...(pv.metadata?.annotations ?? {}), [ANN_BOUND_BY_CONTROLLER]: 'yes' };
      pv = await this.ctx.client.update(R.persistentvolumes, { ...pv, metadata: { ...pv.metadata, annotations }, spec: { ...pv.spec, claimRef } });
    }
    await this.setVolumePhase(pv, 'Bound');
    if (pvc.spec?.volumeName !== pv.metadata!.name) {
      const annotations = { ...(pvc.metadata?.annotations ?? {}), [ANN_BIND_COMPLETED]: 'yes', [ANN_BOUND_BY_CONTROLLER]: 'yes' };
      const stored = this.pvcs.get(objectKey(pvc)) ?? pvc; // not the copy with an effective default class
      pvc = await this.ctx.client.update(R.persistentvolumeclaims, { ...stored, metadata: { ...stored.metadata, annotations }, spec: { ...stored.spec, volumeName: pv.metadata!.name } });
    }
    await this.setClaimStatus(pvc, pv, 'Bound');
    ops.inc({ op: 'bind' });
    log.info({ pvc: objectKey(pvc), pv: pv.metadata!.name }, 'claim bound');
  }

  private async syncClaim(key: string): Promise<void> {
    const cached = this.pvcs.get(key);
    if (!cached || cached.metadata?.deletionTimestamp) return;
    let pvc = cached;
    if (pvc.spec?.storageClassName === undefined || pvc.spec.storageClassName === null) {
      const def = findDefaultClass(this.classes.list());
      if (def) {
        // retroactive default class (Kubernetes 1.28+); where the apiserver refuses the write, use it anyway
        const written = await this.ctx.client
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
      const pv = this.pvs.get(pvc.spec.volumeName);
      if (!pv) {
        if (pvc.status?.phase === 'Bound') {
          this.recorder.event(pvc, 'Warning', 'ClaimLost', `Bound claim has lost reference to PersistentVolume ${pvc.spec.volumeName}. Data on the volume is lost!`);
          await this.setClaimStatus(pvc, undefined, 'Lost');
        }
        return;
      }
      const ref = pv.spec?.claimRef;
      if (ref?.uid === pvc.metadata?.uid && pvc.status?.phase === 'Bound' && pv.status?.phase === 'Bound') return; // done
      if (!ref?.uid || ref.uid === pvc.metadata?.uid) return this.bind(pvc, pv);
      this.recorder.event(pvc, 'Warning', 'FailedBinding', `volume "${pv.metadata!.name}" already bound to a different claim`);
      return this.setClaimStatus(pvc, undefined, 'Pending');
    }
    const match = findMatchingVolume(pvc, this.pvs.list());
    if (match) return this.bind(pvc, match);
    const cls = this.classes.get(pvc.spec?.storageClassName ?? '');
    if (cls && cls.provisioner === this.provisioner.name && (cls.volumeBindingMode ?? 'Immediate') === 'Immediate') {
      const pv = provisionedVolume(pvc, cls, this.provisioner.root, this.provisioner.node);
      if (this.pvs.get(pv.metadata!.name!)) return; // made already; the cache will show it bound soon
      await this.provisioner.create(pv);
      await this.ctx.client.create(R.persistentvolumes, pv).catch((err) => {
        if (!isConflict(err)) throw err;
      });
      ops.inc({ op: 'provision' });
      this.recorder.event(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pv.metadata!.name} using ${this.provisioner.name}`);
      return;
    }
    await this.setClaimStatus(pvc, undefined, 'Pending');
    this.recorder.event(
      pvc,
      'Normal',
      cls ? 'ExternalProvisioning' : 'FailedBinding',
      cls ? `Waiting for a volume to be created by the external this.provisioner "${cls.provisioner}"` : pvc.spec?.storageClassName ? `storageclass.storage.k8s.io "${pvc.spec.storageClassName}" not found` : 'no persistent volumes available for this claim and no storage class is set',
    );
  }

  private async syncVolume(name: string): Promise<void> {
    const pv = this.pvs.get(name);
    if (!pv) return;
    const ref = pv.spec?.claimRef;
    let claim = ref ? this.pvcs.get(`${ref.namespace}/${ref.name}`) : undefined;
    if (ref?.uid && (!claim || claim.metadata?.uid !== ref.uid)) {
      // never release on a stale cache: ask the server
      claim = await this.ctx.client.get<PvcObj>(R.persistentvolumeclaims, ref.name!, ref.namespace).catch((err) => {
        ignoreNotFound(err);
        return undefined;
      });
    }
    const plan = planVolume(pv, claim);
    switch (plan.action) {
      case 'none':
        return;
      case 'available':
        return this.setVolumePhase(pv, 'Available');
      case 'bound':
        return this.setVolumePhase(pv, 'Bound');
      case 'release':
        this.recorder.event(pv, 'Normal', 'VolumeReleased', `claim ${ref!.namespace}/${ref!.name} is gone; volume retained`);
        return this.setVolumePhase(pv, 'Released');
      case 'delete':
        if (pv.metadata?.annotations?.[ANN_PROVISIONED_BY] !== this.provisioner.name) {
          this.recorder.event(pv, 'Warning', 'VolumeFailedDelete', 'no this.provisioner can delete this volume');
          return this.setVolumePhase(pv, 'Failed', 'no this.provisioner can delete this volume');
        }
        await this.setVolumePhase(pv, 'Released');
        await this.provisioner.delete(pv);
        await this.ctx.client.delete(R.persistentvolumes, name).catch(ignoreNotFound);
        ops.inc({ op: 'delete' });
        log.info({ pv: name }, 'released volume deleted');
        return;
    }
  }

  async sync(key: string): Promise<void> {
    if (key === 'classes') return this.syncClasses();
    if (key.startsWith('pvc:')) return this.syncClaim(key.slice(4));
    return this.syncVolume(key.slice(3));
  }
}

export function startVolumeController(ctx: ControllerContext, provisioner: VolumeProvisioner = new HostPathProvisioner(ctx.options.dataDir)): { stop(): void } {
  const c = new VolumeController(ctx, provisioner);
  c.queue.add('classes');
  return c.controller.run({ informers: [c.pvs, c.pvcs, c.classes], workers: 1, sync: (key) => c.sync(key) });
}
