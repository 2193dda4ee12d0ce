/**
 * ControllerRevisions for StatefulSets and DaemonSets: one per distinct pod template, named
 * `<owner>-<hash>`, numbered; the one matching the current template is the update revision.
 */
import type { ControllerRevision } from 'kubernetes-types/apps/v1.js';
import type { PodTemplateSpec } from 'kubernetes-types/core/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import { clone } from '../../api/object.js';
import { controllerRefOf, newControllerRef, stableJson, templateHash, type HasMeta } from '../replicaset/common.js';

export const REVISION_HASH_LABEL = 'controller-revision-hash';

export interface RevisionOwner extends HasMeta {
  spec?: { template?: PodTemplateSpec; selector?: LabelSelector; revisionHistoryLimit?: number };
  status?: { collisionCount?: number };
}

export interface HistoryPlan {
  /** hash of the revision for the current template (the update revision) */
  updateHash: string;
  updateName: string;
  create?: ControllerRevision;
  /** revision number bumps (a template went back to an older revision) */
  renumber: { name: string; revision: number }[];
  delete: string[];
}

const dataOf = (template: PodTemplateSpec | undefined): unknown => ({ spec: { template: clone(template ?? {}) } });

/** The pod template stored in a revision. */
export function templateOf(rev: ControllerRevision | undefined): PodTemplateSpec | undefined {
  return (rev?.data as { spec?: { template?: PodTemplateSpec } } | undefined)?.spec?.template;
}

/**
 * Revisions to create, renumber and truncate for `owner` (kind/apiVersion for the owner reference).
 * `inUse` are hashes still referenced (current revision, pods' labels) and never truncated.
 */
export function planHistory(owner: RevisionOwner, apiVersion: string, kind: string, revisions: ControllerRevision[], inUse: Set<string>): HistoryPlan {
  const mine = revisions.filter((r) => controllerRefOf(r)?.uid === owner.metadata?.uid).sort((a, b) => (a.revision ?? 0) - (b.revision ?? 0));
  const max = mine.reduce((m, r) => Math.max(m, r.revision ?? 0), 0);
  const want = stableJson(dataOf(owner.spec?.template));
  const match = mine.find((r) => stableJson(r.data) === want);
  const plan: HistoryPlan = { updateHash: '', updateName: '', renumber: [], delete: [] };
  if (match) {
    plan.updateName = match.metadata!.name!;
    plan.updateHash = match.metadata?.labels?.[REVISION_HASH_LABEL] ?? match.metadata!.name!.slice(owner.metadata!.name!.length + 1);
    if ((match.revision ?? 0) < max) plan.renumber.push({ name: plan.updateName, revision: max + 1 });
  } else {
    const hash = templateHash(owner.spec?.template, owner.status?.collisionCount ?? 0);
    plan.updateHash = hash;
    plan.updateName = `${owner.metadata!.name}-${hash}`;
    plan.create = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name: plan.updateName,
        namespace: owner.metadata?.namespace,
        labels: { ...(owner.spec?.selector?.matchLabels ?? {}), [REVISION_HASH_LABEL]: hash },
        ownerReferences: [newControllerRef(owner, apiVersion, kind)],
      },
      data: dataOf(owner.spec?.template) as ControllerRevision['data'],
      revision: max + 1,
    };
  }
  const limit = owner.spec?.revisionHistoryLimit ?? 10;
  const removable = mine.filter((r) => r.metadata?.name !== plan.updateName && !inUse.has(r.metadata?.labels?.[REVISION_HASH_LABEL] ?? ''));
  const excess = mine.length + (plan.create ? 1 : 0) - 1 - limit;
  for (const r of removable.slice(0, Math.max(0, Math.min(excess, removable.length)))) plan.delete.push(r.metadata!.name!);
  return plan;
}
