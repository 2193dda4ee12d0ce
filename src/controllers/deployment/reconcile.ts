import type { Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { clone } from '../../api/object.js';
import { isPodActive, newControllerRef, templateHash } from '../replicaset/common.js';
import {
  DESIRED_REPLICAS,
  HASH_LABEL,
  MAX_REPLICAS,
  REVISION,
  REVISION_HISTORY,
  byCreation,
  copyableAnnotations,
  countStatus,
  equalIgnoreHash,
  isComplete,
  isProgressing,
  maxRevision,
  maxSurge,
  maxUnavailable,
  newRSReplicas,
  replicasOf,
  revisionOf,
  setCondition,
  sumSpec,
} from './rollout.js';

export interface RSChange {
  name: string;
  replicas?: number;
  annotations?: Record<string, string>;
}

export interface DeploymentPlan {
  createRS?: ReplicaSet;
  updateRS: RSChange[];
  deleteRS: string[];
  /** deployment metadata annotations to set (revision) */
  annotations?: Record<string, string>;
  status: DeploymentStatus;
  /** re-sync after this many ms (progress deadline check) */
  requeueAfterMs?: number;
  events: { type: 'Normal' | 'Warning'; reason: string; message: string }[];
}

/** A working view of the ReplicaSets with the plan's changes applied. */
class View {
  readonly plan: DeploymentPlan = { updateRS: [], deleteRS: [], status: {}, events: [] };
  constructor(readonly d: Deployment, public all: ReplicaSet[], public newRS: ReplicaSet | undefined) {}

  get old(): ReplicaSet[] {
    return this.all.filter((rs) => rs !== this.newRS);
  }

  change(rs: ReplicaSet, c: Omit<RSChange, 'name'>): void {
    const name = rs.metadata!.name!;
    let entry = this.plan.updateRS.find((x) => x.name === name);
    if (!entry) this.plan.updateRS.push((entry = { name }));
    if (c.replicas !== undefined) {
      const prev = rs.spec?.replicas ?? 0;
      if (prev === c.replicas) return;
      entry.replicas = c.replicas;
      (rs.spec as { replicas?: number }).replicas = c.replicas;
      const verb = c.replicas > prev ? 'up' : 'down';
      this.plan.events.push({ type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled ${verb} replica set ${name} from ${prev} to ${c.replicas}` });
    }
    if (c.annotations) {
      entry.annotations = { ...(entry.annotations ?? {}), ...c.annotations };
      rs.metadata!.annotations = { ...(rs.metadata!.annotations ?? {}), ...c.annotations };
    }
  }

  scale(rs: ReplicaSet, replicas: number): boolean {
    const before = rs.spec?.replicas ?? 0;
    const want = String(replicasOf(this.d));
    const max = String(replicasOf(this.d) + maxSurge(this.d));
    const ann = rs.metadata?.annotations ?? {};
    const annotations = ann[DESIRED_REPLICAS] !== want || ann[MAX_REPLICAS] !== max ? { [DESIRED_REPLICAS]: want, [MAX_REPLICAS]: max } : undefined;
    if (before !== replicas || annotations) this.change(rs, { replicas, annotations });
    return before !== replicas;
  }
}

/** The ReplicaSet a deployment's current template maps to, if it exists yet. */
export function findNewRS(d: Deployment, owned: ReplicaSet[]): ReplicaSet | undefined {
  return [...owned].sort(byCreation).find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
}

function buildNewRS(d: Deployment, all: ReplicaSet[], replicas: number): ReplicaSet {
  const hash = templateHash(d.spec?.template, d.status?.collisionCount ?? 0);
  const template = clone(d.spec!.template!);
  template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [HASH_LABEL]: hash } };
  const selector = clone(d.spec!.selector!);
  (selector as { matchLabels?: Record<string, string> }).matchLabels = { ...(selector.matchLabels ?? {}), [HASH_LABEL]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${d.metadata!.name}-${hash}`,
      namespace: d.metadata!.namespace,
      labels: { ...(template.metadata.labels ?? {}) },
      annotations: {
        ...copyableAnnotations(d),
        [REVISION]: String(maxRevision(all) + 1),
        [DESIRED_REPLICAS]: String(replicasOf(d)),
        [MAX_REPLICAS]: String(replicasOf(d) + maxSurge(d)),
      },
      ownerReferences: [newControllerRef(d, 'apps/v1', 'Deployment')],
    },
    spec: { replicas, minReadySeconds: d.spec?.minReadySeconds ?? 0, selector, template },
  };
}

/** Ensures the new RS carries the newest revision (a rollback re-uses an old RS and bumps it). */
function ensureNewRevision(v: View): boolean {
  const rs = v.newRS!;
  const maxOld = maxRevision(v.old);
  const cur = revisionOf(rs);
  if (cur > maxOld) return false;
  const history = [rs.metadata?.annotations?.[REVISION_HISTORY], String(cur)].filter(Boolean).join(',');
  v.change(rs, { annotations: { [REVISION]: String(maxOld + 1), ...(cur ? { [REVISION_HISTORY]: history } : {}) } });
  return true;
}

function scaleOldForRollingUpdate(v: View): boolean {
  const d = v.d;
  const old = v.old.filter((rs) => (rs.spec?.replicas ?? 0) > 0).sort(byCreation);
  if (old.length === 0) return false;
  const minAvailable = replicasOf(d) - maxUnavailable(d);
  const newUnavailable = v.newRS ? (v.newRS.spec?.replicas ?? 0) - (v.newRS.status?.availableReplicas ?? 0) : 0;
  let budget = sumSpec(v.all) - minAvailable - Math.max(0, newUnavailable);
  if (budget <= 0) return false;
  let changed = false;
  // unhealthy old replicas go first: they cost no availability
  for (const rs of old) {
    if (budget <= 0) break;
    const unhealthy = (rs.spec?.replicas ?? 0) - (rs.status?.availableReplicas ?? 0);
    const n = Math.min(budget, Math.max(0, unhealthy));
    if (n > 0) {
      changed = v.scale(rs, (rs.spec?.replicas ?? 0) - n) || changed;
      budget -= n;
    }
  }
  const available = v.all.reduce((s, rs) => s + Math.min(rs.status?.availableReplicas ?? 0, rs.spec?.replicas ?? 0), 0);
  let total = Math.min(budget, available - minAvailable);
  for (const rs of old) {
    if (total <= 0) break;
    const n = Math.min(total, rs.spec?.replicas ?? 0);
    if (n > 0) {
      changed = v.scale(rs, (rs.spec?.replicas ?? 0) - n) || changed;
      total -= n;
    }
  }
  return changed;
}

/** Scaling while no rollout is in flight (paused, or a replicas change): proportional across active RSs. */
function scaleActive(v: View): boolean {
  const d = v.d;
  const want = replicasOf(d);
  const active = v.all.filter((rs) => (rs.spec?.replicas ?? 0) > 0);
  if (v.newRS && (v.newRS.spec?.replicas ?? 0) === want && active.length === 1) return v.scale(v.newRS, want);
  if (active.length === 0) return v.newRS ? v.scale(v.newRS, want) : false;
  if (active.length === 1) return v.scale(active[0], want);
  const allowed = want + maxSurge(d);
  const current = sumSpec(active);
  const delta = allowed - current;
  if (delta === 0) return false;
  const sorted = [...active].sort((a, b) => (delta > 0 ? (b.spec?.replicas ?? 0) - (a.spec?.replicas ?? 0) || -byCreation(a, b) : (a.spec?.replicas ?? 0) - (b.spec?.replicas ?? 0) || byCreation(a, b)));
  let left = delta;
  const targets = sorted.map((rs) => {
    const share = Math.trunc(((rs.spec?.replicas ?? 0) * delta) / current);
    left -= share;
    return { rs, n: (rs.spec?.replicas ?? 0) + share };
  });
  targets[0].n = Math.max(0, targets[0].n + left);
  let changed = false;
  for (const t of targets) changed = v.scale(t.rs, Math.max(0, t.n)) || changed;
  return changed;
}

function isScalingEvent(v: View): boolean {
  const want = String(replicasOf(v.d));
  return v.all.some((rs) => (rs.spec?.replicas ?? 0) > 0 && (rs.metadata?.annotations?.[DESIRED_REPLICAS] ?? want) !== want);
}

function cleanupOld(v: View): void {
  const limit = v.d.spec?.revisionHistoryLimit ?? 10;
  const cleanable = v.old
    .filter((rs) => !rs.metadata?.deletionTimestamp && (rs.spec?.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0)
    .sort((a, b) => revisionOf(a) - revisionOf(b) || byCreation(a, b));
  const n = cleanable.length - limit;
  for (let i = 0; i < n; i++) v.plan.deleteRS.push(cleanable[i].metadata!.name!);
}

function createNewRS(v: View): void {
  const rs = buildNewRS(v.d, v.all, newRSReplicas(v.d, v.all, undefined));
  v.plan.createRS = rs;
  v.all = [...v.all, rs];
  v.newRS = rs;
  if ((rs.spec?.replicas ?? 0) > 0) v.plan.events.push({ type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled up replica set ${rs.metadata!.name} from 0 to ${rs.spec!.replicas}` });
}

function rolloutStep(v: View, pods: Pod[]): void {
  const d = v.d;
  if (d.spec?.strategy?.type === 'Recreate') {
    for (const rs of v.old) v.scale(rs, 0);
    const oldUids = new Set(v.old.map((rs) => rs.metadata?.uid));
    const oldRunning = pods.some((p) => p.metadata?.ownerReferences?.some((r) => oldUids.has(r.uid)) && (isPodActive(p) || !!p.metadata?.deletionTimestamp));
    if (oldRunning || v.plan.updateRS.some((c) => c.replicas !== undefined)) return;
    if (v.newRS) v.scale(v.newRS, replicasOf(d));
    else createNewRS(v);
    return;
  }
  if (v.newRS) {
    const cur = v.newRS.spec?.replicas ?? 0;
    const want = replicasOf(d);
    if (cur > want) {
      v.scale(v.newRS, want);
      return;
    }
    if (v.scale(v.newRS, cur < want ? newRSReplicas(d, v.all, v.newRS) : cur)) return;
  }
  scaleOldForRollingUpdate(v);
}

function condition(type: string, status: string, reason: string, message: string, now: string): DeploymentCondition {
  return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

function computeStatus(v: View, now: number): DeploymentPlan['status'] {
  const d = v.d;
  const s = countStatus(d, v.all, v.newRS);
  const ts = new Date(now).toISOString();
  let conds = [...(d.status?.conditions ?? [])] as DeploymentCondition[];
  const avail = (s.availableReplicas ?? 0) >= replicasOf(d) - maxUnavailable(d);
  conds = setCondition(
    conds,
    avail
      ? condition('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.', ts)
      : condition('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.', ts),
  );
  const keepAvail = conds.find((c) => c.type === 'Available');
  const old = d.status?.conditions?.find((c) => c.type === 'Available');
  if (keepAvail && old && old.status === keepAvail.status) keepAvail.lastUpdateTime = old.lastUpdateTime;
  const deadline = d.spec?.progressDeadlineSeconds ?? 600;
  const prog = conds.find((c) => c.type === 'Progressing');
  const rsName = v.newRS?.metadata?.name ?? '';
  if (d.spec?.paused) {
    if (prog?.reason !== 'DeploymentPaused') conds = setCondition(conds, condition('Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused', ts));
  } else if (prog?.reason === 'DeploymentPaused') {
    conds = setCondition(conds, condition('Progressing', 'Unknown', 'DeploymentResumed', 'Deployment is resumed', ts));
  } else if (isComplete(d, s)) {
    if (prog?.reason !== 'NewReplicaSetAvailable' || prog.message !== `ReplicaSet "${rsName}" has successfully progressed.`)
      conds = setCondition(conds, condition('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`, ts));
  } else if (prog?.reason === 'ProgressDeadlineExceeded') {
    // stays failed until the template changes (a new RS resets it)
  } else if (isProgressing(d, s) || !prog || prog.reason === 'NewReplicaSetAvailable') {
    conds = setCondition(conds, condition('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`, ts));
  } else {
    const last = Date.parse(prog.lastUpdateTime ?? '') || now;
    if (last + deadline * 1000 <= now) {
      conds = setCondition(conds, condition('Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rsName}" has timed out progressing.`, ts));
      v.plan.events.push({ type: 'Warning', reason: 'ProgressDeadlineExceeded', message: `Deployment "${d.metadata?.name}" has timed out progressing.` });
    } else v.plan.requeueAfterMs = last + deadline * 1000 - now + 10;
  }
  return { ...s, conditions: conds.sort((a, b) => a.type.localeCompare(b.type)) };
}

/**
 * One sync of a Deployment. `owned` are the ReplicaSets it controls (after adoption), `pods` its
 * namespace's pods (Recreate waits for old pods to go). Returns one step of the rollout: the RS to
 * create, RS scale/annotation changes, RSs to delete, the deployment's revision annotation and status.
 */
export function reconcileDeployment(d: Deployment, owned: ReplicaSet[], pods: Pod[], now: number): DeploymentPlan {
  const all = owned.map((rs) => clone(rs));
  const v = new View(d, all, findNewRS(d, all));
  const ts = new Date(now).toISOString();
  if (d.metadata?.deletionTimestamp) {
    v.plan.status = computeStatus(v, now);
    return v.plan;
  }
  let fresh: DeploymentCondition | undefined;
  if (v.newRS && ensureNewRevision(v)) fresh = condition('Progressing', 'True', 'FoundNewReplicaSet', `Found new replica set "${v.newRS.metadata!.name}"`, ts);
  if (d.spec?.paused || isScalingEvent(v)) {
    scaleActive(v);
  } else {
    if (!v.newRS && d.spec?.strategy?.type !== 'Recreate') createNewRS(v);
    else rolloutStep(v, pods);
  }
  if (v.plan.createRS) fresh = condition('Progressing', 'True', 'NewReplicaSetCreated', `Created new replica set "${v.plan.createRS.metadata!.name}"`, ts);
  const s = countStatus(d, v.all, v.newRS);
  if (isComplete(d, s) && v.plan.updateRS.every((c) => c.replicas === undefined) && !v.plan.createRS) cleanupOld(v);
  const rev = v.newRS ? String(revisionOf(v.newRS)) : undefined;
  if (rev && d.metadata?.annotations?.[REVISION] !== rev) v.plan.annotations = { [REVISION]: rev };
  v.plan.status = computeStatus(v, now);
  if (fresh) v.plan.status.conditions = setCondition(v.plan.status.conditions ?? [], fresh).sort((a, b) => a.type.localeCompare(b.type));
  return v.plan;
}
