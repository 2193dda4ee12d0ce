import type { KubeObject } from '../api/object.js';
import { errors, StatusError } from './errors.js';
import { applyStrategicMergePatch } from './patch.js';
import { fromFieldsV1, leafPaths, pathKey, setOwnership, valueAt, type FieldPath, type ManagedEntry } from './managedfields.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

function render(p: FieldPath): string {
  return p
    .filter((s) => s !== '.')
    .map((s) => (s.startsWith('f:') ? `.${s.slice(2)}` : `[${Object.entries(JSON.parse(s.slice(2)) as Obj).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`))
    .join('');
}

/** Is `a` equal to or inside `b` (or `b` inside `a`)? Ownership of a parent item covers its fields. */
function overlaps(a: FieldPath, b: FieldPath): boolean {
  const x = a.filter((s) => s !== '.');
  const y = b.filter((s) => s !== '.');
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  return x.length === y.length;
}

/**
 * Server-side apply of `applied` by `manager` onto `live` (null = create). Fields other managers
 * own with different values are conflicts (409) unless `force`; fields this manager applied before
 * and omits now are removed unless someone else owns them.
 */
export function serverSideApply(live: KubeObject | null, applied: KubeObject, manager: string, force: boolean): KubeObject {
  const appliedPaths = leafPaths(applied);
  if (!live) {
    const obj = structuredClone(applied);
    obj.metadata = { ...(obj.metadata ?? {}) };
    delete obj.metadata.managedFields;
    setOwnership(obj, [], manager, 'Apply', appliedPaths, undefined, true);
    return obj;
  }
  const entries = ((live.metadata?.managedFields ?? []) as unknown as ManagedEntry[]).map((e) => ({ ...e }));
  const others = entries.filter((e) => !(e.manager === manager && e.operation === 'Apply' && !e.subresource));
  const conflicts: { manager: string; apiVersion: string; path: FieldPath }[] = [];
  const forced: FieldPath[] = [];
  for (const p of appliedPaths) {
    const want = JSON.stringify(valueAt(applied, p));
    const have = JSON.stringify(valueAt(live, p));
    if (want === have) continue;
    for (const e of others) {
      if (e.manager === manager) continue;
      if (fromFieldsV1(e.fieldsV1).some((q) => overlaps(p, q))) {
        conflicts.push({ manager: e.manager, apiVersion: e.apiVersion, path: p });
        forced.push(p);
      }
    }
  }
  if (conflicts.length && !force) {
    const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}" using ${c.apiVersion}`, field: render(c.path) }));
    const msg = `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? 's' : ''}: ${causes.map((c) => `${c.message}: ${c.field}`).join('\n')}`;
    throw new StatusError(409, 'Conflict', msg, { name: live.metadata?.name, kind: String(live.kind).toLowerCase() + 's', causes });
  }
  const patch = structuredClone(applied) as Obj;
  delete (patch.metadata as Obj | undefined)?.managedFields;
  delete (patch.metadata as Obj | undefined)?.resourceVersion;
  const merged = applyStrategicMergePatch(live, patch) as KubeObject;
  // Remove what this manager applied before and no longer applies, unless another manager owns it.
  const prevMine = entries.find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
  if (prevMine) {
    const now = new Set(appliedPaths.map(pathKey));
    const ownedByOthers = others.filter((e) => e.manager !== manager || e.operation !== 'Apply').flatMap((e) => fromFieldsV1(e.fieldsV1));
    for (const p of fromFieldsV1(prevMine.fieldsV1)) {
      if (now.has(pathKey(p))) continue;
      if (appliedPaths.some((q) => overlaps(p, q) && q.length > p.length)) continue;
      if (ownedByOthers.some((q) => overlaps(p, q))) continue;
      removeAt(merged, p);
    }
  }
  setOwnership(merged, entries, manager, 'Apply', appliedPaths, undefined, true, forced);
  return merged;
}

function removeAt(obj: unknown, path: FieldPath): void {
  const segs = path[path.length - 1] === '.' ? path.slice(0, -1) : path;
  if (!segs.length) return;
  let cur: unknown = obj;
  for (let i = 0; i < segs.length - 1; i++) cur = step(cur, segs[i]);
  const last = segs[segs.length - 1];
  if (last.startsWith('f:') && isObj(cur)) delete cur[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(cur)) {
    const [k, v] = Object.entries(JSON.parse(last.slice(2)) as Obj)[0];
    const idx = cur.findIndex((x) => isObj(x) && x[k] === v);
    if (idx >= 0) cur.splice(idx, 1);
  }
}

function step(cur: unknown, seg: string): unknown {
  if (seg.startsWith('f:')) return isObj(cur) ? cur[seg.slice(2)] : undefined;
  if (seg.startsWith('k:') && Array.isArray(cur)) {
    const [k, v] = Object.entries(JSON.parse(seg.slice(2)) as Obj)[0];
    return cur.find((x) => isObj(x) && x[k] === v);
  }
  return undefined;
}

export function requireFieldManager(fm: string | undefined): string {
  if (!fm) throw errors.badRequest('PATCH, application/apply-patch+yaml requests must include a fieldManager query parameter');
  return fm;
}
