import fastJsonPatch from 'fast-json-patch';
import { errors } from './errors.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** RFC 7386 merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch; a failed test or bad path is a 422/400 like upstream. */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw errors.badRequest('json patch must be an array of operations');
  try {
    const doc = structuredClone(target);
    return fastJsonPatch.applyPatch(doc, ops as fastJsonPatch.Operation[], true, true).newDocument;
  } catch (err) {
    throw errors.invalid('Object', '', '', [{ reason: 'FieldValueInvalid', message: `the server rejected our request due to an error in our request: ${(err as Error).message}` }]);
  }
}

/**
 * The list fields of built-in types that merge by key in a strategic merge patch (patchMergeKey),
 * from the upstream Go struct tags. Lists not named here are replaced whole (atomic).
 */
export const MERGE_KEYS: Record<string, string | ((item: Obj) => string)> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  imagePullSecrets: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: (item) => ('containerPort' in item ? 'containerPort' : 'port'),
  conditions: 'type',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  ownerReferences: 'uid',
  taints: 'key',
  addresses: 'type',
  readinessGates: 'conditionType',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  podIPs: 'ip',
  resourceClaims: 'name',
};

/** Primitive lists merged as sets (patchStrategy:merge on []string). */
const SET_LISTS = new Set(['finalizers']);

export function mergeKeyFor(field: string, item: unknown): string | undefined {
  const k = MERGE_KEYS[field];
  if (!k || !isObj(item)) return undefined;
  return typeof k === 'string' ? k : k(item);
}

/** Strategic merge patch over built-in types (directives: $patch, $setElementOrder, $deleteFromPrimitiveList, $retainKeys). */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) throw errors.badRequest('strategic merge patch must be a JSON object');
  return smpMap(isObj(target) ? target : {}, patch);
}

function smpMap(target: Obj, patch: Obj): Obj {
  if (patch.$patch === 'replace') {
    const copy = { ...patch };
    delete copy.$patch;
    return structuredClone(copy);
  }
  if (patch.$patch === 'delete') return {};
  const out: Obj = { ...target };
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[field]) && Array.isArray(v)) out[field] = (out[field] as unknown[]).filter((x) => !v.includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      out[k] = smpList(k, Array.isArray(cur) ? cur : [], v, patch[`$setElementOrder/${k}`]);
    } else if (isObj(v)) {
      out[k] = smpMap(isObj(cur) ? cur : {}, v);
    } else {
      out[k] = v;
    }
  }
  if (Array.isArray(retain)) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}

function smpList(field: string, cur: unknown[], patch: unknown[], order: unknown): unknown[] {
  if (SET_LISTS.has(field)) {
    const out = [...cur];
    for (const x of patch) if (!out.includes(x)) out.push(x);
    return out;
  }
  const sample = patch.find(isObj) ?? cur.find(isObj);
  const key = sample ? mergeKeyFor(field, sample) : undefined;
  if (!key) {
    // atomic list, unless a $patch: replace marker item is present
    return structuredClone(patch.filter((x) => !(isObj(x) && x.$patch)));
  }
  if (patch.some((x) => isObj(x) && x.$patch === 'replace')) return structuredClone(patch.filter((x) => !(isObj(x) && x.$patch === 'replace')));
  const out: Obj[] = cur.filter(isObj).map((x) => ({ ...x }));
  for (const item of patch) {
    if (!isObj(item)) continue;
    const idx = out.findIndex((x) => x[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpMap(out[idx], item);
    else {
      const copy = { ...item };
      delete copy.$patch;
      out.push(smpMap({}, copy));
    }
  }
  if (Array.isArray(order)) {
    const rank = new Map(order.filter(isObj).map((o, i) => [o[key], i]));
    out.sort((a, b) => (rank.get(a[key]) ?? Number.MAX_SAFE_INTEGER) - (rank.get(b[key]) ?? Number.MAX_SAFE_INTEGER));
  }
  return out;
}
