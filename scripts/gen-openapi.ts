/**
 * Generates src/api/openapi-schemas.json: OpenAPI v3 schemas (name -> schema, names as upstream:
 * io.k8s.api.apps.v1.Deployment) for every kind in src/api/registry.ts and everything it references.
 *
 * Sources, all local:
 * - the `kubernetes-types` .d.ts files (fields, required fields, upstream descriptions from the doc
 *   comments), read with the TypeScript compiler API;
 * - skiff's protobuf table (src/apiserver/protobuf/schema.ts, from kubectl v1.33's generated.proto):
 *   integer widths (int32/int64), floats, and the fields newer than the kubernetes-types release;
 * - MERGE_KEYS of src/apiserver/patch.ts: x-kubernetes-patch-merge-key / x-kubernetes-patch-strategy.
 *
 * Run: node --import @tapjs/typescript/import scripts/gen-openapi.ts   (deterministic output; the test
 * src/api/openapi-schemas.test.ts fails when the committed JSON is stale).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { RESOURCES } from '../src/api/registry.js';
import { schemaName } from '../src/apiserver/openapi.js';
import { MERGE_KEYS } from '../src/apiserver/patch.js';
import { SCHEMA } from '../src/apiserver/protobuf/schema.js';
import { parseSchema, type FieldDef, type MessageDef } from '../src/apiserver/protobuf/table.js';

type Obj = Record<string, unknown>;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES_DIR = dirname(createRequire(import.meta.url).resolve('kubernetes-types/package.json'));
const OUT = join(ROOT, 'src/api/openapi-schemas.json');

export const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
const REF = '#/components/schemas/';

/** kubernetes-types module path (core/v1) -> upstream schema package (io.k8s.api.core.v1). */
export function modulePackage(mod: string): string {
  if (mod === 'meta/v1') return 'io.k8s.apimachinery.pkg.apis.meta.v1';
  if (mod === 'api/resource') return 'io.k8s.apimachinery.pkg.api.resource';
  if (mod === 'runtime') return 'io.k8s.apimachinery.pkg.runtime';
  if (mod === 'version') return 'io.k8s.apimachinery.pkg.version';
  if (mod === 'apiextensions/v1') return 'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1';
  return `io.k8s.api.${mod.replace(/\//g, '.')}`;
}

/** Types whose JSON form is not their Go struct: upstream's OpenAPI overrides. */
const SPECIAL: Record<string, Obj> = {
  'io.k8s.apimachinery.pkg.apis.meta.v1.Time': { type: 'string', format: 'date-time' },
  'io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime': { type: 'string', format: 'date-time' },
  'io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1': { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  'io.k8s.apimachinery.pkg.runtime.RawExtension': { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  [QUANTITY]: { 'x-kubernetes-int-or-string': true, format: 'quantity' },
  [INT_OR_STRING]: {
    'x-kubernetes-int-or-string': true,
    format: 'int-or-string',
    description:
      'IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.',
  },
};

interface Decl {
  node: ts.InterfaceDeclaration | ts.TypeAliasDeclaration;
  /** local name -> schema package of the module it is imported from */
  imports: Map<string, string>;
  pkg: string;
}

/** Parses every .d.ts of kubernetes-types (syntax only) into declarations by schema name. */
function loadDecls(): Map<string, Decl> {
  const decls = new Map<string, Decl>();
  const files = ts.sys.readDirectory(TYPES_DIR, ['.d.ts']);
  for (const file of files.sort()) {
    const mod = relative(TYPES_DIR, file).replace(/\.d\.ts$/, '');
    const pkg = modulePackage(mod);
    const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const imports = new Map<string, string>();
    for (const st of src.statements) {
      if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
      const target = modulePackage(join(dirname(mod), st.moduleSpecifier.text).replace(/\\/g, '/'));
      const named = st.importClause?.namedBindings;
      if (named && ts.isNamedImports(named)) for (const el of named.elements) imports.set(el.name.text, target);
    }
    for (const st of src.statements) {
      if (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st)) decls.set(`${pkg}.${st.name.text}`, { node: st, imports, pkg });
    }
  }
  return decls;
}

/** The doc comment of a node, as plain text. */
function docOf(node: ts.Node): string {
  const docs = (node as { jsDoc?: ts.JSDoc[] }).jsDoc ?? [];
  return docs
    .map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? ''))
    .join('\n')
    .trim();
}

/** Proto messages by upstream schema name (k8s.io.api.apps.v1.X -> io.k8s.api.apps.v1.X). */
function loadProto(): Map<string, MessageDef> {
  const out = new Map<string, MessageDef>();
  for (const [name, def] of parseSchema(SCHEMA)) out.set(protoToSchemaName(name), def);
  return out;
}

function protoToSchemaName(full: string): string {
  if (full === 'k8s.io.apimachinery.pkg.util.intstr.IntOrString') return INT_OR_STRING;
  return full.replace(/^k8s\.io\./, 'io.k8s.');
}

const NUMERIC: Record<string, Obj> = {
  int32: { type: 'integer', format: 'int32' },
  uint32: { type: 'integer', format: 'int32' },
  int64: { type: 'integer', format: 'int64' },
  uint64: { type: 'integer', format: 'int64' },
  double: { type: 'number', format: 'double' },
  float: { type: 'number', format: 'double' },
};

class Generator {
  readonly out: Record<string, Obj> = {};
  private readonly decls = loadDecls();
  private readonly proto = loadProto();

  /** Emits the schema `name` (and, recursively, what it references); returns false if unknown. */
  emit(name: string): boolean {
    if (this.out[name]) return true;
    const special = SPECIAL[name];
    const decl = this.decls.get(name);
    if (special) {
      this.out[name] = { ...(decl ? { description: docOf(decl.node) } : {}), ...special };
      return true;
    }
    if (decl && ts.isInterfaceDeclaration(decl.node)) {
      this.out[name] = {};
      this.out[name] = this.fromInterface(name, decl.node, decl);
      return true;
    }
    const msg = this.proto.get(name);
    if (msg) {
      this.out[name] = {};
      this.out[name] = this.fromProto(msg, { type: 'object', properties: {} });
      return true;
    }
    return false;
  }

  private fromInterface(name: string, node: ts.InterfaceDeclaration, decl: Decl): Obj {
    const props: Obj = {};
    const required: string[] = [];
    const msg = this.proto.get(name);
    for (const m of node.members) {
      if (!ts.isPropertySignature(m) || !m.type) continue;
      const field = m.name.getText().replace(/^"|"$/g, '');
      const pf = msg?.fields.find((f) => f.name === field);
      const s = this.typeSchema(m.type, decl, pf);
      const doc = docOf(m);
      props[field] = withDescription(s, doc);
      if (!m.questionToken) required.push(field);
    }
    const doc = docOf(node);
    const schema: Obj = { ...(doc ? { description: doc } : {}), type: 'object', properties: props };
    if (required.length) schema.required = required.sort();
    if (msg) this.fromProto(msg, schema);
    addPatchExtensions(schema, this.out);
    return schema;
  }

  /** Adds the fields the proto knows and the .d.ts does not (newer upstream fields). */
  private fromProto(msg: MessageDef, schema: Obj): Obj {
    const props = schema.properties as Obj;
    for (const f of msg.fields) {
      if (f.inline) {
        const inner = this.proto.get(protoToSchemaName(f.type));
        if (inner) this.fromProto(inner, schema);
        continue;
      }
      if (!props[f.name] && f.name !== 'Raw' && f.name !== 'raw') props[f.name] = this.protoFieldSchema(f);
    }
    addPatchExtensions(schema, this.out);
    return schema;
  }

  private protoFieldSchema(f: FieldDef): Obj {
    const one = (type: string): Obj => {
      if (NUMERIC[type]) return { ...NUMERIC[type] };
      if (type === 'string') return { type: 'string' };
      if (type === 'bool') return { type: 'boolean' };
      if (type === 'bytes') return { type: 'string', format: 'byte' };
      const ref = protoToSchemaName(type);
      return this.emit(ref) ? refTo(ref) : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    };
    if (f.keyType) return { type: 'object', additionalProperties: one(f.type) };
    return f.repeated ? { type: 'array', items: one(f.type) } : one(f.type);
  }

  /** Converts a .d.ts type to a schema; `pf` (the proto field) tells integer widths. */
  private typeSchema(t: ts.TypeNode, decl: Decl, pf?: FieldDef): Obj {
    if (ts.isParenthesizedTypeNode(t)) return this.typeSchema(t.type, decl, pf);
    if (ts.isArrayTypeNode(t)) return { type: 'array', items: this.typeSchema(t.elementType, decl, pf) };
    if (ts.isUnionTypeNode(t)) {
      const kinds = new Set(t.types.map((x) => (ts.isLiteralTypeNode(x) ? 'literal' : x.kind)));
      if (kinds.has(ts.SyntaxKind.NumberKeyword) && kinds.has(ts.SyntaxKind.StringKeyword)) return this.ref(INT_OR_STRING);
      if ([...kinds].every((k) => k === 'literal')) return { type: 'string' };
      return this.typeSchema(t.types[0], decl, pf);
    }
    if (ts.isLiteralTypeNode(t)) return ts.isStringLiteral(t.literal) ? { type: 'string' } : { type: 'boolean' };
    switch (t.kind) {
      case ts.SyntaxKind.StringKeyword:
        return { type: 'string' };
      case ts.SyntaxKind.BooleanKeyword:
        return { type: 'boolean' };
      case ts.SyntaxKind.NumberKeyword:
        return { ...(NUMERIC[pf?.type ?? 'int32'] ?? NUMERIC.int32) };
      case ts.SyntaxKind.AnyKeyword:
      case ts.SyntaxKind.UnknownKeyword:
        return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    }
    if (ts.isTypeLiteralNode(t)) {
      const idx = t.members.find(ts.isIndexSignatureDeclaration);
      if (idx) return { type: 'object', additionalProperties: this.typeSchema(idx.type, decl, pf) };
      return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    }
    if (ts.isTypeReferenceNode(t)) {
      const id = t.typeName.getText();
      if ((id === 'Array' || id === 'ReadonlyArray') && t.typeArguments?.length) return { type: 'array', items: this.typeSchema(t.typeArguments[0], decl, pf) };
      if (id === 'Record' && t.typeArguments?.length === 2) return { type: 'object', additionalProperties: this.typeSchema(t.typeArguments[1], decl, pf) };
      const name = `${decl.imports.get(id) ?? decl.pkg}.${id}`;
      return this.ref(name);
    }
    throw new Error(`gen-openapi: unsupported type ${t.getText()} in ${decl.pkg}`);
  }

  private ref(name: string): Obj {
    if (!this.emit(name)) throw new Error(`gen-openapi: unknown type ${name}`);
    return refTo(name);
  }
}

function refTo(name: string): Obj {
  return { $ref: `${REF}${name}` };
}

/** Upstream style: a described reference is `allOf: [{$ref}]` (siblings of $ref are ignored in 3.0). */
function withDescription(s: Obj, doc: string): Obj {
  if (!doc) return s;
  if (s.$ref) return { allOf: [s], description: doc };
  return { ...s, description: doc };
}

/** x-kubernetes-patch-merge-key / -strategy for the merge-by-key lists of patch.ts. */
function addPatchExtensions(schema: Obj, all: Record<string, Obj>): void {
  const props = schema.properties as Record<string, Obj>;
  for (const [field, p] of Object.entries(props)) {
    if (p.type !== 'array') continue;
    if (field === 'finalizers') {
      p['x-kubernetes-patch-strategy'] = 'merge';
      continue;
    }
    const rule = MERGE_KEYS[field];
    const items = p.items as Obj;
    const ref = typeof items.$ref === 'string' ? items.$ref.slice(REF.length) : undefined;
    const itemProps = (ref ? (all[ref]?.properties as Obj | undefined) : undefined) ?? {};
    if (!rule || !ref) continue;
    const key = typeof rule === 'string' ? rule : 'containerPort' in itemProps ? 'containerPort' : 'port';
    if (Object.keys(itemProps).length && !(key in itemProps)) continue;
    p['x-kubernetes-patch-merge-key'] = key;
    p['x-kubernetes-patch-strategy'] = field === 'volumes' ? 'merge,retainKeys' : 'merge';
  }
}

/** Sorts object keys so the output is byte-identical for the same inputs. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Obj)[k])]));
}

export function generate(): Record<string, Obj> {
  const g = new Generator();
  const kinds = [...RESOURCES.map((r) => ({ group: r.group, version: r.version, kind: r.kind })), { group: 'autoscaling', version: 'v1', kind: 'Scale' }];
  for (const k of kinds) {
    const name = schemaName(k);
    if (!g.emit(name)) throw new Error(`gen-openapi: no type for ${name}`);
    g.out[name]['x-kubernetes-group-version-kind'] = [{ group: k.group, kind: k.kind, version: k.version }];
  }
  // items that are merge-keyed lists resolved before their item schema existed: second pass
  for (const s of Object.values(g.out)) if (s.properties) addPatchExtensions(s, g.out);
  return sorted(g.out) as Record<string, Obj>;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = generate();
  const text = JSON.stringify(out);
  writeFileSync(OUT, `${text}\n`);
  process.stdout.write(`${JSON.stringify({ schemas: Object.keys(out).length, bytes: text.length, file: relative(ROOT, OUT) })}\n`);
}
