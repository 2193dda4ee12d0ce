/**
 * Helpers shared by the workload controllers (replicaset, deployment, statefulset, daemonset, job,
 * cronjob, garbagecollector, namespace): API error codes, controller references, pod state,
 * the adopt/orphan claim (ControllerRefManager), creation expectations and bounded concurrency
 * (the queue + workers wiring of every controller is ../run.ts).
 */
import { createHash } from 'node:crypto';
import type { Pod, PodTemplateSpec } from 'kubernetes-types/core/v1.js';
import type { LabelSelector, ObjectMeta as K8sMeta, OwnerReference } from 'kubernetes-types/meta/v1.js';
import type { KubeObject } from '../../api/object.js';
import { clone } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';

/** Any object with Kubernetes metadata (kubernetes-types interfaces as well as KubeObject). */
export interface HasMeta {
  metadata?: K8sMeta;
}

/** A kubernetes-types interface usable as an informer/client object. */
export type Kube<T> = T & KubeObject;

// ---------- API errors ----------

/** HTTP status of an API error, whatever client threw it (REST client, FakeApiClient). */
export function errCode(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown };
  for (const v of [e.statusCode, e.code, e.status]) if (typeof v === 'number') return v;
  return undefined;
}
export const isNotFound = (err: unknown): boolean => errCode(err) === 404;
export const isConflict = (err: unknown): boolean => errCode(err) === 409;

/** Runs `fn`, treating 404 as success (the object is already gone). */
export async function ignoreNotFound<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

// ---------- owner references ----------

export function controllerRefOf(obj: HasMeta | undefined): OwnerReference | undefined {
  return obj?.metadata?.ownerReferences?.find((r) => r.controller === true);
}

export function newControllerRef(owner: HasMeta, apiVersion: string, kind: string): OwnerReference {
  return { apiVersion, kind, name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

export interface ClaimResult<T> {
  /** objects that belong to the owner after the claim (already owned + to adopt) */
  owned: T[];
  adopt: T[];
  release: T[];
}

/**
 * The ControllerRefManager rule: an object controlled by the owner stays owned while its labels match
 * (else it is released); an orphan whose labels match is adopted unless it or the owner is being deleted.
 */
export function claimObjects<T extends HasMeta>(owner: HasMeta, selector: LabelSelector | undefined, objects: T[], canAdopt = true): ClaimResult<T> {
  const uid = owner.metadata?.uid;
  const out: ClaimResult<T> = { owned: [], adopt: [], release: [] };
  for (const o of objects) {
    const ref = controllerRefOf(o);
    const match = labelSelectorMatches(selector, o.metadata?.labels);
    if (ref) {
      if (ref.uid !== uid) continue;
      if (match || owner.metadata?.deletionTimestamp) out.owned.push(o);
      else if (!o.metadata?.deletionTimestamp) out.release.push(o);
      continue;
    }
    if (!match || !canAdopt || o.metadata?.deletionTimestamp || owner.metadata?.deletionTimestamp) continue;
    out.adopt.push(o);
    out.owned.push(o);
  }
  return out;
}

/** Merge patch that makes `owner` the controller of an object (keeps other non-controller refs). */
export function adoptPatch(obj: HasMeta, ref: OwnerReference): { metadata: { ownerReferences: OwnerReference[]; resourceVersion?: string } } {
  const others = (obj.metadata?.ownerReferences ?? []).filter((r) => r.uid !== ref.uid);
  return { metadata: { ownerReferences: [...others, ref] } };
}

/** Merge patch that removes `uid` from an object's ownerReferences (null drops the field). */
export function releasePatch(obj: HasMeta, uid: string): { metadata: { ownerReferences: OwnerReference[] | null } } {
  const rest = (obj.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid);
  return { metadata: { ownerReferences: rest.length ? rest : null } };
}

// ---------- pods ----------

export function podCondition(pod: Pod, type: string): { status?: string; lastTransitionTime?: string } | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export function isPodReady(pod: Pod): boolean {
  return podCondition(pod, 'Ready')?.status === 'True';
}

/** Ready for at least minReadySeconds at `now` (ms). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  if (!isPodReady(pod)) return false;
  if (!minReadySeconds) return true;
  const t = Date.parse(podCondition(pod, 'Ready')?.lastTransitionTime ?? '');
  return Number.isFinite(t) && t + minReadySeconds * 1000 <= now;
}

/** Not terminal and not being deleted: counts towards replicas. */
export function isPodActive(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata?.deletionTimestamp;
}

/** A pod object from a template, controlled by `ref`. */
export function podFromTemplate(template: PodTemplateSpec | undefined, ref: OwnerReference, namespace: string, name: { name?: string; generateName?: string }, extraLabels: Record<string, string> = {}): Kube<Pod> {
  const t = clone(template ?? {}) as { metadata?: Record<string, unknown>; spec?: Pod['spec'] };
  const meta = (t.metadata ?? {}) as { labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...name,
      namespace,
      labels: { ...(meta.labels ?? {}), ...extraLabels },
      ...(meta.annotations ? { annotations: meta.annotations } : {}),
      ...(meta.finalizers ? { finalizers: meta.finalizers } : {}),
      ownerReferences: [ref],
    },
    spec: t.spec ?? { containers: [] },
  } as Kube<Pod>;
}

// ---------- hashing ----------

/** Deterministic JSON (sorted keys) for hashing and template comparison. */
export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

const SAFE = 'bcdfghjklmnpqrstvwxz2456789';
/** A short label-safe hash (pod-template-hash, controller-revision-hash), with a collision counter. */
export function templateHash(template: unknown, collisionCount = 0): string {
  const h = createHash('sha256').update(stableJson(template)).update(collisionCount ? String(collisionCount) : '').digest();
  let s = '';
  for (let i = 0; i < 10; i++) s += SAFE[h[i] % SAFE.length];
  return s;
}

// ---------- expectations ----------

/**
 * Creations/deletions a controller issued and has not yet seen in its cache. A sync that manages
 * replicas waits until they are observed (or expire), so a stale cache never causes double creation.
 */
export class Expectations {
  private readonly pending = new Map<string, { add: number; del: Set<string>; at: number }>();
  constructor(private readonly ttlMs = 30_000) {}

  expect(key: string, adds: number, dels: string[] = []): void {
    this.pending.set(key, { add: adds, del: new Set(dels), at: Date.now() });
  }
  /** Lowers the expectation after a failed create (it will never be observed). */
  creationFailed(key: string): void {
    const e = this.pending.get(key);
    if (e && e.add > 0) e.add--;
  }
  deletionFailed(key: string, podKey: string): void {
    this.pending.get(key)?.del.delete(podKey);
  }
  observedAdd(key: string): void {
    const e = this.pending.get(key);
    if (e && e.add > 0) e.add--;
  }
  observedDelete(key: string, podKey: string): void {
    this.pending.get(key)?.del.delete(podKey);
  }
  satisfied(key: string): boolean {
    const e = this.pending.get(key);
    if (!e) return true;
    if ((e.add <= 0 && e.del.size === 0) || Date.now() - e.at > this.ttlMs) {
      this.pending.delete(key);
      return true;
    }
    return false;
  }
  forget(key: string): void {
    this.pending.delete(key);
  }
}

// ---------- concurrency ----------

/** Runs async tasks with bounded concurrency; returns the errors. */
export async function runBounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<unknown[]> {
  const errors: unknown[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return errors;
}
