import { schemaName, schemas } from '../apiserver/openapi.js';

/**
 * Structural checks of an object against the generated OpenAPI schemas (src/api/openapi-schemas.json):
 * unknown fields at any depth and JSON type mismatches, named the way the upstream apiserver names
 * them (`spec.template.spec.containers[0].foo`; Go's decoding messages for type errors).
 * Each schema is compiled once into a walker closure and cached.
 */

type Obj = Record<string, unknown>;

export interface FieldTypeError {
  /** Kubernetes field path: spec.template.spec.containers[0].ports[0].containerPort */
  field: string;
  /** Go decoding style: json: cannot unmarshal string into Go struct field ContainerPort.spec...containerPort of type int32 */
  message: string;
}

export interface SchemaCheck {
  unknown: string[];
  typeErrors: FieldTypeError[];
}

/**
 * Where a value sits: the Go struct holding it, and (built only when a message needs them) its
 * field path and index-free JSON path. Walking a valid object builds no strings.
 */
class At {
  constructor(
    private readonly up: At | null,
    private readonly seg: string | number,
    /** a list index or map key: `[seg]` in the field path, nothing in the Go path */
    private readonly bracket: boolean,
    readonly struct: string,
  ) {}

  get path(): string {
    if (!this.up) return '';
    const p = this.up.path;
    if (this.bracket) return `${p}[${this.seg}]`;
    return p ? `${p}.${this.seg}` : String(this.seg);
  }

  get goPath(): string {
    if (!this.up) return '';
    const g = this.up.goPath;
    if (this.bracket) return g;
    return g ? `${g}.${this.seg}` : String(this.seg);
  }
}

type Walker = (v: unknown, at: At, out: SchemaCheck) => void;

const REF = '#/components/schemas/';
const INT32 = 2 ** 31;
const QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const compiled = new Map<string, Walker>();
const typeNames = new Map<string, string>();

const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function child(at: At, key: string, struct?: string): At {
  return new At(at, key, false, struct ?? at.struct);
}

function typeError(out: SchemaCheck, at: At, v: unknown, goType: string, shown?: string): void {
  const what = shown ?? jsonKind(v);
  out.typeErrors.push({ field: at.path, message: `json: cannot unmarshal ${what} into Go struct field ${at.struct}.${at.goPath} of type ${goType}` });
}

/** The Go type a schema decodes into, for messages: int32, []v1.Container, map[string]string. */
function goType(s: Obj): string {
  const ref = refName(s);
  if (ref) {
    const named = schemas()[ref] ?? {};
    if (named['x-kubernetes-int-or-string'] || named.type === 'string') return goType(named);
    return shortType(ref);
  }
  if (s['x-kubernetes-int-or-string']) return s.format === 'quantity' ? 'resource.Quantity' : 'intstr.IntOrString';
  switch (s.type) {
    case 'integer':
      return String(s.format ?? 'int64');
    case 'number':
      return 'float64';
    case 'boolean':
      return 'bool';
    case 'array':
      return `[]${goType((s.items ?? {}) as Obj)}`;
    case 'object':
      return s.additionalProperties ? `map[string]${goType(s.additionalProperties as Obj)}` : 'map[string]interface {}';
    default:
      return 'string';
  }
}

/** io.k8s.api.apps.v1.DeploymentSpec -> v1.DeploymentSpec */
function shortType(name: string): string {
  let t = typeNames.get(name);
  if (!t) {
    const parts = name.split('.');
    t = parts.slice(-2).join('.');
    typeNames.set(name, t);
  }
  return t;
}

/** A schema's single reference, whether direct ($ref) or upstream's described form (allOf: [{$ref}]). */
function refName(s: Obj): string | undefined {
  if (typeof s.$ref === 'string') return s.$ref.slice(REF.length);
  const all = s.allOf as Obj[] | undefined;
  if (all?.length === 1 && typeof all[0].$ref === 'string' && !s.properties) return all[0].$ref.slice(REF.length);
  return undefined;
}

/** The walker of a named schema; recursive references resolve lazily through the cache. */
function named(name: string): Walker {
  const hit = compiled.get(name);
  if (hit) return hit;
  const schema = schemas()[name];
  if (!schema) return () => undefined;
  let inner: Walker | undefined;
  const lazy: Walker = (v, at, out) => (inner ??= compileSchema(schema, shortType(name).split('.')[1]))(v, at, out);
  compiled.set(name, lazy);
  return lazy;
}

/** Compiles one schema; `struct` is the Go struct name when the schema is a named object type. */
function compileSchema(s: Obj, struct?: string): Walker {
  const ref = refName(s);
  if (ref) return named(ref);
  if (s['x-kubernetes-preserve-unknown-fields']) return () => undefined;
  if (s['x-kubernetes-int-or-string']) return compileIntOrString(s);
  switch (s.type) {
    case 'integer':
      return compileInteger(String(s.format ?? 'int64'));
    case 'number':
      return (v, at, out) => {
        if (v !== null && typeof v !== 'number') typeError(out, at, v, 'float64');
      };
    case 'boolean':
      return (v, at, out) => {
        if (v !== null && typeof v !== 'boolean') typeError(out, at, v, 'bool');
      };
    case 'string':
      return (v, at, out) => {
        if (v !== null && typeof v !== 'string') typeError(out, at, v, 'string');
      };
    case 'array':
      return compileArray(s);
    case 'object':
      return s.properties ? compileObject(s, struct ?? 'Object') : compileMap(s);
    default:
      return () => undefined;
  }
}

function compileIntOrString(s: Obj): Walker {
  if (s.format === 'quantity') {
    return (v, at, out) => {
      if (v !== null && typeof v !== 'string' && typeof v !== 'number') out.typeErrors.push({ field: at.path, message: QUANTITY_MSG });
    };
  }
  return (v, at, out) => {
    if (v === null || typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v))) return;
    typeError(out, at, v, 'intstr.IntOrString', typeof v === 'number' ? `number ${v}` : undefined);
  };
}

function compileInteger(format: string): Walker {
  const limit = format === 'int32' ? INT32 : Number.MAX_SAFE_INTEGER + 1;
  return (v, at, out) => {
    if (v === null) return;
    if (typeof v !== 'number') return typeError(out, at, v, format);
    if (!Number.isInteger(v) || v >= limit || v < -limit) typeError(out, at, v, format, `number ${v}`);
  };
}

function compileArray(s: Obj): Walker {
  const items = compileSchema((s.items ?? {}) as Obj);
  const gt = goType(s);
  return (v, at, out) => {
    if (v === null) return;
    if (!Array.isArray(v)) return typeError(out, at, v, gt);
    for (let i = 0; i < v.length; i++) items(v[i], new At(at, i, true, at.struct), out);
  };
}

function compileMap(s: Obj): Walker {
  const values = s.additionalProperties ? compileSchema(s.additionalProperties as Obj) : undefined;
  const gt = goType(s);
  return (v, at, out) => {
    if (v === null) return;
    if (!isObj(v)) return typeError(out, at, v, gt);
    if (values) for (const [k, x] of Object.entries(v)) values(x, new At(at, k, true, at.struct), out);
  };
}

function compileObject(s: Obj, struct: string): Walker {
  const props = new Map<string, Walker>();
  for (const [k, p] of Object.entries(s.properties as Record<string, Obj>)) props.set(k, compileSchema(p));
  return (v, at, out) => {
    if (v === null) return;
    if (!isObj(v)) return typeError(out, at, v, struct === 'Object' ? 'map[string]interface {}' : `v1.${struct}`);
    for (const k in v) {
      const w = props.get(k);
      const next = child(at, k, struct);
      if (w) w(v[k], next, out);
      else out.unknown.push(next.path);
    }
  };
}

/** The schema name of apiVersion/kind, or undefined when skiff has none for it. */
export function schemaFor(apiVersion: string, kind: string): string | undefined {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const name = schemaName({ group, version, kind });
  return schemas()[name] ? name : undefined;
}

/**
 * Walks `obj` against the schema of apiVersion/kind: unknown fields (any depth) and type errors.
 * A kind without a schema checks clean. `null` is accepted anywhere, as Go's decoder does.
 */
export function checkSchema(apiVersion: string, kind: string, obj: unknown): SchemaCheck {
  const out: SchemaCheck = { unknown: [], typeErrors: [] };
  const name = schemaFor(apiVersion, kind);
  if (!name) return out;
  named(name)(obj, new At(null, '', false, kind), out);
  return out;
}
