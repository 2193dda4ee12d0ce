import type { PersistentVolume, PersistentVolumeClaim } from 'kubernetes-types/core/v1.js';
import type { StorageClass } from 'kubernetes-types/storage/v1.js';
import type { KubeObject } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import { parseBytes } from '../../scheduler/quantity.js';

export type PvObj = KubeObject & PersistentVolume;
export type PvcObj = KubeObject & PersistentVolumeClaim;
export type ScObj = KubeObject & StorageClass;

export const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class';
export const HOSTPATH_PROVISIONER = 'skiff.io/hostpath';
export const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
export const ANN_BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
export const ANN_BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';

/** The default StorageClass skiff installs: hostPath directories under the data dir. */
export function defaultStorageClass(): ScObj {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { [DEFAULT_CLASS_ANNOTATION]: 'true' } },
    provisioner: HOSTPATH_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}

export function findDefaultClass(classes: readonly ScObj[]): ScObj | undefined {
  return classes
    .filter((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true')
    .sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')) || (a.metadata!.name! < b.metadata!.name! ? -1 : 1))[0];
}

export const claimClass = (pvc: PvcObj): string => pvc.spec?.storageClassName ?? '';
export const requestedBytes = (pvc: PvcObj): number => parseBytes(pvc.spec?.resources?.requests?.storage as string | undefined);
export const capacityBytes = (pv: PvObj): number => parseBytes(pv.spec?.capacity?.storage as string | undefined);

/** Is the PV free for this claim (Available, or pre-bound to exactly this claim)? */
function availableFor(pv: PvObj, pvc: PvcObj): boolean {
  if (pv.metadata?.deletionTimestamp) return false;
  const ref = pv.spec?.claimRef;
  if (!ref) return pv.status?.phase !== 'Released' && pv.status?.phase !== 'Failed';
  return ref.namespace === pvc.metadata?.namespace && ref.name === pvc.metadata?.name && (!ref.uid || ref.uid === pvc.metadata?.uid);
}

/**
 * The best PV for a claim: same storageClassName, every requested access mode, the same
 * volumeMode, capacity >= request, labels matching spec.selector; the smallest such wins
 * (ties by name). A PV pre-bound to the claim wins outright.
 */
export function findMatchingVolume(pvc: PvcObj, pvs: readonly PvObj[]): PvObj | undefined {
  const want = requestedBytes(pvc);
  const modes = pvc.spec?.accessModes ?? [];
  const mode = pvc.spec?.volumeMode ?? 'Filesystem';
  const fits = pvs.filter(
    (pv) =>
      availableFor(pv, pvc) &&
      (pv.spec?.storageClassName ?? '') === claimClass(pvc) &&
      modes.every((m) => (pv.spec?.accessModes ?? []).includes(m)) &&
      (pv.spec?.volumeMode ?? 'Filesystem') === mode &&
      capacityBytes(pv) >= want &&
      (!pvc.spec?.selector || labelSelectorMatches(pvc.spec.selector, pv.metadata?.labels)),
  );
  const prebound = fits.find((pv) => pv.spec?.claimRef);
  if (prebound) return prebound;
  return fits.sort((a, b) => capacityBytes(a) - capacityBytes(b) || (a.metadata!.name! < b.metadata!.name! ? -1 : 1))[0];
}

/**
 * The PV the hostPath provisioner makes for a claim: pre-bound to it, directory under `root`;
 * pinned (node affinity on kubernetes.io/hostname) to `node` when the directory lives on one node.
 */
export function provisionedVolume(pvc: PvcObj, sc: ScObj, root: string, node?: string): PvObj {
  const name = `pvc-${pvc.metadata!.uid}`;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, annotations: { [ANN_PROVISIONED_BY]: sc.provisioner } },
    spec: {
      capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '1Gi' },
      accessModes: [...(pvc.spec?.accessModes ?? ['ReadWriteOnce'])],
      volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
      persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
      storageClassName: sc.metadata!.name,
      hostPath: { path: `${root}/${name}`, type: 'DirectoryOrCreate' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid },
      ...(node ? { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } } : {}),
    },
  };
}

export type VolumeAction = { action: 'none' } | { action: 'release' } | { action: 'delete' } | { action: 'available' } | { action: 'bound' };

/** What a PV needs given whether its claim still exists (the claim looked up by claimRef). */
export function planVolume(pv: PvObj, claim: PvcObj | undefined): VolumeAction {
  const ref = pv.spec?.claimRef;
  const phase = pv.status?.phase;
  if (!ref) return phase === 'Available' ? { action: 'none' } : { action: 'available' };
  const claimGone = !claim || (ref.uid && claim.metadata?.uid !== ref.uid);
  if (claimGone) {
    if (!ref.uid) return phase === 'Available' ? { action: 'none' } : { action: 'available' }; // pre-bound by a user, claim not there yet
    if ((pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain') === 'Delete') return { action: 'delete' };
    return phase === 'Released' ? { action: 'none' } : { action: 'release' };
  }
  if (claim.spec?.volumeName === pv.metadata?.name) return phase === 'Bound' ? { action: 'none' } : { action: 'bound' };
  return phase === 'Available' ? { action: 'none' } : { action: 'available' };
}
