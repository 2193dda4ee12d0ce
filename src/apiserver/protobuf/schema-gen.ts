/**
 * Generates skiff's protobuf message table (schema.ts) from the message descriptors compiled into a
 * Kubernetes Go binary (kubectl 1.33 carries the gzipped FileDescriptorProto of every k8s.io/api
 * generated.proto, gogoproto options included). Only the messages reachable from the kinds skiff
 * decodes are kept. Dev tool, run by hand:
 *
 *   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs \
 *     src/apiserver/protobuf/schema-gen.ts path/to/kubectl > src/apiserver/protobuf/schema.ts
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import protobuf from 'protobufjs';
import { RESOURCES } from '../../api/registry.js';
import { ENVELOPE_MESSAGE, EXTRA_KINDS, messageNameFor, PACKAGE_ALIASES } from './names.js';

export interface DescField {
  name: string;
  number: number;
  repeated: boolean;
  /** proto scalar name (string, int32, ...) or a fully-qualified message name without the leading dot */
  type: string;
  /** gogoproto.nullable is not false: the Go field is a pointer (scalars) or a pointer struct */
  pointer: boolean;
}

/** What the Go struct tags add to the descriptors: JSON names that differ, embedded (inline) fields. */
export interface GoTags {
  /** proto field name → JSON name, where they differ (`uID` → `uid`) */
  renames: Map<string, string>;
  /** proto names of fields whose JSON is `,inline` (Volume.volumeSource, Probe.handler, ...) */
  inline: Set<string>;
}

export interface DescMessage {
  fullName: string;
  fields: DescField[];
  mapEntry: boolean;
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff]);
const SCALARS: Record<number, string> = { 1: 'double', 2: 'float', 3: 'int64', 4: 'uint64', 5: 'int32', 8: 'bool', 9: 'string', 12: 'bytes', 13: 'uint32' };
const TYPE_MESSAGE = 11;
const LABEL_REPEATED = 3;
const GOGO_NULLABLE = 65001;

/** Finds every gzipped FileDescriptorProto in a Go binary whose file name ends in generated.proto. */
export function findDescriptors(binary: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = binary.indexOf(GZIP_MAGIC); i >= 0; i = binary.indexOf(GZIP_MAGIC, i + 1)) {
    let raw: Buffer;
    try {
      raw = gunzipSync(binary.subarray(i, i + 4 * 1024 * 1024), { finishFlush: 2 /* Z_SYNC_FLUSH */ });
    } catch {
      continue;
    }
    const name = readFileName(raw);
    if (name?.endsWith('/generated.proto')) out.push(raw);
  }
  return out;
}

function readFileName(raw: Buffer): string | undefined {
  try {
    const r = protobuf.Reader.create(raw);
    if (r.uint32() !== ((1 << 3) | 2)) return undefined;
    return r.string();
  } catch {
    return undefined;
  }
}

/** Parses the parts of a FileDescriptorProto the table needs (messages, fields, gogoproto.nullable). */
export function parseFileDescriptor(raw: Uint8Array): { name: string; pkg: string; messages: DescMessage[] } {
  const r = protobuf.Reader.create(raw);
  let name = '';
  let pkg = '';
  const bodies: Uint8Array[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 0x0a) name = r.string();
    else if (tag === 0x12) pkg = r.string();
    else if (tag === 0x22) bodies.push(r.bytes());
    else r.skipType(tag & 7);
  }
  const messages: DescMessage[] = [];
  for (const b of bodies) parseMessage(b, pkg, messages);
  return { name, pkg, messages };
}

function parseMessage(raw: Uint8Array, scope: string, out: DescMessage[]): void {
  const r = protobuf.Reader.create(raw);
  const msg: DescMessage = { fullName: '', fields: [], mapEntry: false };
  const nested: Uint8Array[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 0x0a) msg.fullName = `${scope}.${r.string()}`;
    else if (tag === 0x12) msg.fields.push(parseField(r.bytes()));
    else if (tag === 0x1a) nested.push(r.bytes());
    else if (tag === 0x3a) msg.mapEntry = readVarintOption(r.bytes(), 7) === 1;
    else r.skipType(tag & 7);
  }
  out.push(msg);
  for (const n of nested) parseMessage(n, msg.fullName, out);
}

function parseField(raw: Uint8Array): DescField {
  const r = protobuf.Reader.create(raw);
  const f: DescField = { name: '', number: 0, repeated: false, type: '', pointer: true };
  let type = 0;
  let typeName = '';
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) f.name = r.string();
    else if (field === 3) f.number = r.int32();
    else if (field === 4) f.repeated = r.int32() === LABEL_REPEATED;
    else if (field === 5) type = r.int32();
    else if (field === 6) typeName = r.string();
    else if (field === 8) f.pointer = readVarintOption(r.bytes(), GOGO_NULLABLE) !== 0;
    else r.skipType(tag & 7);
  }
  if (type === TYPE_MESSAGE) f.type = typeName.replace(/^\./, '');
  else if (SCALARS[type]) f.type = SCALARS[type];
  else throw new Error(`field ${f.name}: unsupported descriptor type ${type}`);
  return f;
}

/** Value of a varint option in an options message (undefined when absent). */
function readVarintOption(raw: Uint8Array, number: number): number | undefined {
  const r = protobuf.Reader.create(raw);
  let value: number | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === number && (tag & 7) === 0) value = r.int32();
    else r.skipType(tag & 7);
  }
  return value;
}

/**
 * Reads the struct tags compiled into the binary (reflect keeps them next to the field name):
 * `VolumeSource` + `json:",inline" protobuf:"bytes,2,opt,name=volumeSource"`.
 */
export function findGoTags(binary: Buffer): GoTags {
  const text = binary.toString('latin1');
  const re = /([A-Za-z_][A-Za-z0-9_]*)[\s\S]json:"([^"]*)" protobuf:"([^"]*)"/g;
  const tags: GoTags = { renames: new Map(), inline: new Set() };
  for (const m of text.matchAll(re)) {
    const [, goName, json, proto] = m;
    const protoName = /(?:^|,)name=([^,]+)/.exec(proto)?.[1] ?? goName[0].toLowerCase() + goName.slice(1);
    const jsonName = json.split(',')[0];
    if (json.split(',').includes('inline')) tags.inline.add(protoName);
    else if (jsonName && jsonName !== '-' && jsonName !== protoName) {
      const prev = tags.renames.get(protoName);
      if (prev && prev !== jsonName) throw new Error(`proto field ${protoName} has two JSON names: ${prev}, ${jsonName}`);
      tags.renames.set(protoName, jsonName);
    }
  }
  return tags;
}

/** Messages reachable from the roots, in a stable order (by package alias, then name). */
export function reachable(all: Map<string, DescMessage>, roots: string[]): DescMessage[] {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    const m = all.get(name);
    if (!m) throw new Error(`message ${name} not found in the binary's descriptors`);
    seen.add(name);
    for (const f of m.fields) if (!SCALAR_NAMES.has(f.type)) stack.push(f.type);
  }
  return [...seen].sort().map((n) => all.get(n)!);
}

const SCALAR_NAMES = new Set(Object.values(SCALARS));

function aliasOf(pkg: string): string {
  const a = PACKAGE_ALIASES.find(([, full]) => full === pkg);
  if (!a) throw new Error(`no alias for package ${pkg}`);
  return a[0];
}

function splitName(fullName: string, all: Map<string, DescMessage>): { pkg: string; local: string } {
  for (const [, pkg] of PACKAGE_ALIASES) if (fullName.startsWith(pkg + '.') && all.has(fullName)) return { pkg, local: fullName.slice(pkg.length + 1) };
  throw new Error(`message ${fullName} is in no known package`);
}

function typeRef(type: string, pkg: string, all: Map<string, DescMessage>): string {
  if (SCALAR_NAMES.has(type)) return type;
  const t = splitName(type, all);
  return t.pkg === pkg ? t.local : `${aliasOf(t.pkg)}:${t.local}`;
}

function renderField(f: DescField, pkg: string, all: Map<string, DescMessage>, tags: GoTags): string {
  const target = all.get(f.type);
  const name = tags.renames.get(f.name) ?? f.name;
  if (target?.mapEntry) {
    const [k, v] = [target.fields.find((x) => x.number === 1)!, target.fields.find((x) => x.number === 2)!];
    return `${name}=${f.number}:map<${typeRef(k.type, pkg, all)},${typeRef(v.type, pkg, all)}>`;
  }
  const spread = target && tags.inline.has(f.name) ? '...' : '';
  const ptr = f.pointer && !f.repeated ? '?' : '';
  return `${spread}${name}${ptr}=${f.number}:${typeRef(f.type, pkg, all)}${f.repeated ? '[]' : ''}`;
}

/** Renders the compact table: one `package` line per proto package, then one line per message. */
export function renderTable(messages: DescMessage[], all: Map<string, DescMessage>, tags: GoTags): string {
  const lines: string[] = [];
  const byPkg = new Map<string, DescMessage[]>();
  for (const m of messages) {
    if (m.mapEntry) continue;
    const { pkg } = splitName(m.fullName, all);
    byPkg.set(pkg, [...(byPkg.get(pkg) ?? []), m]);
  }
  for (const [alias, pkg] of PACKAGE_ALIASES) {
    const ms = byPkg.get(pkg);
    if (!ms) continue;
    lines.push(`package ${alias} ${pkg}`);
    for (const m of ms) {
      const fields = [...m.fields].sort((a, b) => a.number - b.number).map((f) => renderField(f, pkg, all, tags));
      lines.push([splitName(m.fullName, all).local, ...fields].join(' '));
    }
  }
  return lines.join('\n') + '\n';
}

/** Every message skiff decodes as a request body: the served kinds plus options and reviews. */
export function rootMessages(): string[] {
  const kinds = [...RESOURCES.map((r) => ({ group: r.group, version: r.version, kind: r.kind })), ...EXTRA_KINDS];
  return [ENVELOPE_MESSAGE, ...new Set(kinds.map((k) => messageNameFor(k.group, k.version, k.kind)))];
}

export function generateSchemaModule(binary: Buffer): string {
  const all = new Map<string, DescMessage>();
  for (const raw of findDescriptors(binary)) for (const m of parseFileDescriptor(raw).messages) all.set(m.fullName, m);
  const table = renderTable(reachable(all, rootMessages()), all, findGoTags(binary));
  return [
    '// Generated by schema-gen.ts from the descriptors in kubectl v1.33 (k8s.io/api generated.proto). Do not edit.',
    '// One line per message: `Name field=number:type ...`, fields named as in JSON; `?` marks a Go pointer field',
    '// (zero values are kept), `...` an embedded struct whose fields JSON inlines, `[]` a repeated field,',
    '// `alias:Name` a message of another package, `map<K,V>` a map.',
    'export const SCHEMA = `',
    table + '`;',
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: schema-gen.ts KUBECTL_BINARY > schema.ts\n');
    process.exit(2);
  }
  process.stdout.write(generateSchemaModule(readFileSync(path)));
}
