import type { KubeObject } from '../api/object.js';
import { mergeKeyFor } from './patch.js';
import { apiVersionOf, findKind } from '../api/registry.js';
import { nowIso } from './clock.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * A field path as server-side apply tracks it: map keys `f:name`, keyed list items
 * `k:{"name":"web"}`. Leaves are the set's members; lists without a merge key are atomic leaves.
 */
export type FieldPath = string[];

const IGNORED_TOP = new Set(['apiVersion', 'kind']);
const IGNORED_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink']);

/** Leaf field paths of an object (what a manager sets). */
export function leafPaths(obj: unknown, prefix: FieldPath = [], parentField = ''): FieldPath[] {
  const out: FieldPath[] = [];
  if (isObj(obj)) {
    const keys = Object.keys(obj);
    if (keys.length === 0 && prefix.length) out.push(prefix);
    for (const k of keys) {
      if (prefix.length === 0 && IGNORED_TOP.has(k)) continue;
      if (prefix.length === 1 && prefix[0] === 'f:metadata' && IGNORED_META.has(k)) continue;
      out.push(...leafPaths(obj[k], [...prefix, `f:${k}`], k));
    }
    return out;
  }
  if (Array.isArray(obj)) {
    const key = obj.length && isObj(obj[0]) ? mergeKeyFor(parentField, obj[0]) : undefined;
    if (!key) {
      out.push(prefix);
      return out;
    }
    for (const item of obj) {
      if (!isObj(item)) continue;
      const p = [...prefix, `k:${JSON.stringify({ [key]: item[key] })}`];
      out.push(p.concat('.'));
      for (const [k, v] of Object.entries(item)) out.push(...leafPaths(v, [...p, `f:${k}`], k));
    }
    return out;
  }
  out.push(prefix);
  return out;
}

export function pathKey(p: FieldPath): string {
  return p.join('\u0000');
}

/** FieldsV1 JSON from a set of paths. */
export function toFieldsV1(paths: FieldPath[]): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const seg of p) {
      if (seg === '.') {
        cur['.'] = {};
        break;
      }
      cur = (cur[seg] ??= {}) as Obj;
    }
  }
  return root;
}

export function fromFieldsV1(f: unknown, prefix: FieldPath = []): FieldPath[] {
  if (!isObj(f)) return [];
  const keys = Object.keys(f);
  if (keys.length === 0) return prefix.length ? [prefix] : [];
  const out: FieldPath[] = [];
  for (const k of keys) {
    if (k === '.') out.push([...prefix, '.']);
    else out.push(...fromFieldsV1(f[k], [...prefix, k]));
  }
  return out;
}

/** The value at a field path, or undefined. */
export function valueAt(obj: unknown, path: FieldPath): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (seg === '.') return cur;
    if (seg.startsWith('f:')) cur = isObj(cur) ? cur[seg.slice(2)] : undefined;
    else if (seg.startsWith('k:')) {
      const want = JSON.parse(seg.slice(2)) as Obj;
      const [k, v] = Object.entries(want)[0];
      cur = Array.isArray(cur) ? cur.find((x) => isObj(x) && x[k] === v) : undefined;
    } else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

export interface ManagedEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Obj;
  subresource?: string;
}


/**
 * Records an Update by `manager`: it takes ownership of every leaf whose value it changed (all
 * leaves on create), and those leaves leave other managers' sets.
 */
export function recordManagedFields(obj: KubeObject, old: KubeObject | undefined, manager: string | undefined, operation: 'Apply' | 'Update', subresource?: string): void {
  const entries = ((old?.metadata?.managedFields ?? obj.metadata?.managedFields ?? []) as unknown as ManagedEntry[]).map((e) => ({ ...e }));
  if (!manager) {
    obj.metadata!.managedFields = entries as never;
    if (!entries.length) delete obj.metadata!.managedFields;
    return;
  }
  // A new object nobody manages yet: the manager owns every leaf, built as FieldsV1 in one walk.
  if (!old && !entries.length) {
    const fields = newObjectFields(obj, '', ROOT);
    if (fields !== null) {
      const out: ManagedEntry[] = fields || operation === 'Apply' ? [{ manager, operation, apiVersion: managedApiVersion(obj), time: nowIso(), fieldsType: 'FieldsV1', fieldsV1: fields ?? {}, ...(subresource ? { subresource } : {}) }] : [];
      obj.metadata!.managedFields = out as never;
      if (!out.length) delete obj.metadata!.managedFields;
      return;
    }
  }
  const leaves = leafPaths(stripMeta(obj));
  const changed = old ? leaves.filter((p) => JSON.stringify(valueAt(obj, p)) !== JSON.stringify(valueAt(old, p))) : leaves;
  setOwnership(obj, entries, manager, operation, changed, subresource, false);
}

/** Moves `paths` to `manager` (adding to, or with `replace` replacing, its set). */
export function setOwnership(
  obj: KubeObject,
  entries: ManagedEntry[],
  manager: string,
  operation: 'Apply' | 'Update',
  paths: FieldPath[],
  subresource: string | undefined,
  replace: boolean,
  takeFromOthers: FieldPath[] = paths,
): void {
  const taken = new Set(takeFromOthers.map(pathKey));
  const out: ManagedEntry[] = [];
  let mine: ManagedEntry | undefined;
  const apiVersion = managedApiVersion(obj);
  for (const e of entries) {
    const own = e.manager === manager && e.operation === operation && (e.subresource ?? '') === (subresource ?? '');
    if (own) {
      mine = e;
      continue;
    }
    const rest = fromFieldsV1(e.fieldsV1).filter((p) => !taken.has(pathKey(p)));
    if (rest.length) out.push({ ...e, fieldsV1: toFieldsV1(rest) });
  }
  const prev = mine && !replace ? fromFieldsV1(mine.fieldsV1) : [];
  const all = new Map<string, FieldPath>();
  for (const p of [...prev, ...paths]) all.set(pathKey(p), p);
  // drop paths that no longer exist in the object
  const live = [...all.values()].filter((p) => valueAt(obj, p) !== undefined);
  if (live.length || operation === 'Apply') {
    out.push({ manager, operation, apiVersion, time: nowIso(), fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(live), ...(subresource ? { subresource } : {}) });
  }
  obj.metadata!.managedFields = out as never;
  if (!out.length) delete obj.metadata!.managedFields;
}

function managedApiVersion(obj: KubeObject): string {
  const info = findKind(String(obj.apiVersion), String(obj.kind));
  return info ? apiVersionOf(info) : String(obj.apiVersion);
}

const ROOT = 0;
const META = 1;
const INNER = 2;

/**
 * FieldsV1 of every leaf of a new object: what toFieldsV1(leafPaths(obj)) gives, minus leaves that
 * valueAt cannot reach, in one walk without path arrays. undefined: no leaf at all. null: a keyed
 * list whose keys valueAt would not resolve one to one (missing, non-scalar or repeated keys),
 * left to the general path.
 */
function newObjectFields(v: unknown, parentField: string, level: number): Obj | undefined | null {
  if (v === undefined) return undefined;
  if (isObj(v)) {
    const keys = Object.keys(v);
    if (keys.length === 0) return level === ROOT ? undefined : {};
    const node: Obj = {};
    let any = false;
    for (const k of keys) {
      if (level === ROOT && IGNORED_TOP.has(k)) continue;
      if (level === META && IGNORED_META.has(k)) continue;
      const c = newObjectFields(v[k], k, level === ROOT && k === 'metadata' ? META : INNER);
      if (c === null) return null;
      if (c === undefined) continue;
      node[`f:${k}`] = c;
      any = true;
    }
    return any ? node : undefined;
  }
  if (Array.isArray(v)) {
    const key = v.length && isObj(v[0]) ? mergeKeyFor(parentField, v[0]) : undefined;
    if (!key) return {};
    const node: Obj = {};
    for (const item of v) {
      if (!isObj(item)) continue;
      const kv = item[key];
      if (kv === undefined || (kv !== null && typeof kv === 'object')) return null;
      const seg = `k:${JSON.stringify({ [key]: kv })}`;
      if (seg in node) return null;
      const sub: Obj = { '.': {} };
      for (const [k, x] of Object.entries(item)) {
        const c = newObjectFields(x, k, INNER);
        if (c === null) return null;
        if (c !== undefined) sub[`f:${k}`] = c;
      }
      node[seg] = sub;
    }
    return node;
  }
  return {};
}

function stripMeta(obj: KubeObject): KubeObject {
  const o = { ...obj, metadata: { ...obj.metadata } };
  delete o.metadata.managedFields;
  return o;
}
