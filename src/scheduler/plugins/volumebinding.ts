import type { NodeSelectorTerm } from 'kubernetes-types/core/v1.js';
import type { FilterPlugin } from '../framework.js';
import { nodeSelectorMatches } from './nodeaffinity.js';

/**
 * VolumeBinding: every PVC the pod mounts must exist and be bound; a bound PV with node affinity
 * (a local PV) pins the pod to the nodes it names.
 */
export const volumeBinding: FilterPlugin = {
  name: 'VolumeBinding',
  preFilter: (s) => {
    const pinned: (readonly NodeSelectorTerm[])[] = [];
    for (const v of s.pod.pod.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const pvc = s.lookups.pvc(s.pod.namespace, claim);
      if (!pvc) return `persistentvolumeclaim "${claim}" not found`;
      if (pvc.metadata?.deletionTimestamp) return `persistentvolumeclaim "${claim}" is being deleted`;
      const pvName = pvc.spec?.volumeName;
      if (!pvName || pvc.status?.phase !== 'Bound') return 'pod has unbound immediate PersistentVolumeClaims';
      const terms = s.lookups.pv(pvName)?.spec?.nodeAffinity?.required?.nodeSelectorTerms;
      if (terms) pinned.push(terms);
    }
    s.data.set('VolumeBinding', pinned);
    return undefined;
  },
  filter: (s, n) => {
    const pinned = (s.data.get('VolumeBinding') as (readonly NodeSelectorTerm[])[] | undefined) ?? [];
    return pinned.every((terms) => nodeSelectorMatches(terms, n)) ? undefined : 'node(s) had volume node affinity conflict';
  },
};
