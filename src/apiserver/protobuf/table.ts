import protobuf from 'protobufjs';
import { SkiffError } from '../../util/errors.js';

/** One field of a message, as the table describes it. */
export interface FieldDef {
  name: string;
  id: number;
  /** scalar name (string, int64, bytes, ...) or fully-qualified message name; for maps, the value type */
  type: string;
  /** map key type (always a scalar) when the field is a map */
  keyType?: string;
  repeated: boolean;
  /** Go pointer field: present on the wire only when set, so zero values are meaningful */
  pointer: boolean;
  /** embedded struct whose fields JSON inlines into the parent (Volume.volumeSource) */
  inline: boolean;
}

export interface MessageDef {
  fullName: string;
  fields: FieldDef[];
}

export interface Table {
  messages: Map<string, MessageDef>;
  root: protobuf.Root;
}

export const SCALAR_TYPES = new Set(['double', 'float', 'int64', 'uint64', 'int32', 'uint32', 'bool', 'string', 'bytes']);

const FIELD_RE = /^(\.\.\.)?([A-Za-z_][A-Za-z0-9_]*)(\?)?=(\d+):(.+)$/;
const MAP_RE = /^map<([^,>]+),([^>]+)>$/;

/**
 * Parses the compact schema text (see schema.ts) into message definitions.
 * `package ALIAS FULL.NAME` lines open a package; every other line is `Name field=N:type ...`.
 */
export function parseSchema(text: string): Map<string, MessageDef> {
  const aliases = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^package (\S+) (\S+)$/.exec(line.trim());
    if (m) aliases.set(m[1], m[2]);
  }
  const out = new Map<string, MessageDef>();
  let pkg = '';
  const resolve = (ref: string): string => {
    if (SCALAR_TYPES.has(ref)) return ref;
    const i = ref.indexOf(':');
    if (i < 0) return `${pkg}.${ref}`;
    const full = aliases.get(ref.slice(0, i));
    if (!full) throw new SkiffError('ERR_PROTOBUF_SCHEMA', `unknown package alias in ${ref}`);
    return `${full}.${ref.slice(i + 1)}`;
  };
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    if (words[0] === 'package') {
      pkg = words[2];
      continue;
    }
    if (!pkg) throw new SkiffError('ERR_PROTOBUF_SCHEMA', `line ${n + 1}: message before any package`);
    const fields = words.slice(1).map((w) => parseField(w, resolve, n + 1));
    out.set(`${pkg}.${words[0]}`, { fullName: `${pkg}.${words[0]}`, fields });
  }
  for (const m of out.values())
    for (const f of m.fields)
      if (!SCALAR_TYPES.has(f.type) && !out.has(f.type))
        throw new SkiffError('ERR_PROTOBUF_SCHEMA', `${m.fullName}.${f.name}: unknown message ${f.type}`);
  return out;
}

function parseField(word: string, resolve: (ref: string) => string, line: number): FieldDef {
  const m = FIELD_RE.exec(word);
  if (!m) throw new SkiffError('ERR_PROTOBUF_SCHEMA', `line ${line}: bad field ${word}`);
  const [, spread, name, ptr, id, typeText] = m;
  const map = MAP_RE.exec(typeText);
  if (map) return { name, id: Number(id), type: resolve(map[2]), keyType: resolve(map[1]), repeated: false, pointer: false, inline: false };
  const repeated = typeText.endsWith('[]');
  const type = resolve(repeated ? typeText.slice(0, -2) : typeText);
  if (spread && (repeated || SCALAR_TYPES.has(type))) throw new SkiffError('ERR_PROTOBUF_SCHEMA', `line ${line}: only a single message field can be inline: ${word}`);
  return { name, id: Number(id), type, repeated, pointer: ptr === '?', inline: !!spread };
}

/** Builds protobufjs reflection types (proto2) for every message of the table. */
export function buildRoot(messages: Map<string, MessageDef>): protobuf.Root {
  const root = new protobuf.Root();
  for (const m of messages.values()) {
    const dot = m.fullName.lastIndexOf('.');
    const type = new protobuf.Type(m.fullName.slice(dot + 1));
    for (const f of m.fields) {
      const ref = SCALAR_TYPES.has(f.type) ? f.type : `.${f.type}`;
      if (f.keyType) type.add(new protobuf.MapField(f.name, f.id, f.keyType, ref));
      else type.add(new protobuf.Field(f.name, f.id, ref, f.repeated ? 'repeated' : 'optional'));
    }
    root.define(m.fullName.slice(0, dot)).add(type);
  }
  root.resolveAll();
  return root;
}

export function loadTable(schemaText: string): Table {
  const messages = parseSchema(schemaText);
  return { messages, root: buildRoot(messages) };
}
