import protobuf from 'protobufjs';
import { SkiffError } from '../../util/errors.js';
import { convertMessage, type ConvertContext } from './convert.js';
import { ENVELOPE_MESSAGE, messageNameFor, splitApiVersion } from './names.js';
import { SCHEMA } from './schema.js';
import { loadTable, type Table } from './table.js';

/** The 4-byte prefix of every Kubernetes protobuf body: `k8s\0`. */
export const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Nesting limit for RawExtensions that embed further protobuf objects. */
const MAX_DEPTH = 8;

interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Buffer;
  contentEncoding: string;
  contentType: string;
}

let table: Table | undefined;

/** The message table, parsed and resolved once on first use. */
export function protobufTable(): Table {
  table ??= loadTable(SCHEMA);
  return table;
}

/**
 * Decodes a Kubernetes protobuf body (`k8s\0` + runtime.Unknown) into the JSON object the API
 * serves, with `apiVersion` and `kind` from the envelope. Throws SkiffError with code
 * ERR_PROTOBUF_DECODE (malformed input) or ERR_PROTOBUF_KIND (a kind the table does not know).
 */
export function decodeKubeProtobuf(body: Buffer, depth = 0): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw new SkiffError('ERR_PROTOBUF_DECODE', 'protobuf objects nested too deeply');
  const env = decodeEnvelope(body);
  const head = { apiVersion: env.apiVersion, kind: env.kind };
  if (env.contentEncoding) throw new SkiffError('ERR_PROTOBUF_DECODE', `unsupported content encoding ${JSON.stringify(env.contentEncoding)}`);
  if (env.contentType && env.contentType !== 'application/vnd.kubernetes.protobuf') {
    if (env.contentType !== 'application/json') throw new SkiffError('ERR_PROTOBUF_DECODE', `unsupported embedded content type ${JSON.stringify(env.contentType)}`);
    return { ...parseJsonObject(env.raw), ...head };
  }
  const { group, version } = splitApiVersion(env.apiVersion);
  const name = messageNameFor(group, version, env.kind);
  const t = protobufTable();
  const def = t.messages.get(name);
  if (!def || !env.kind) {
    throw new SkiffError('ERR_PROTOBUF_KIND', `no kind ${JSON.stringify(env.kind)} is registered for version ${JSON.stringify(env.apiVersion)} in the protobuf decoder`, { details: { ...head } });
  }
  const msg = decodeMessage(t.root.lookupType(name), env.raw, name);
  const ctx: ConvertContext = { messages: t.messages, decodeEmbedded: (raw) => decodeKubeProtobuf(raw, depth + 1) };
  return { ...head, ...convertMessage(ctx, def, msg) };
}

function decodeEnvelope(body: Buffer): Envelope {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SkiffError('ERR_PROTOBUF_DECODE', 'protobuf body does not start with the k8s\\0 prefix');
  }
  const type = protobufTable().root.lookupType(ENVELOPE_MESSAGE);
  const u = decodeMessage(type, body.subarray(MAGIC.length), 'runtime.Unknown');
  const tm = (u.typeMeta ?? {}) as Record<string, unknown>;
  return {
    apiVersion: String(tm.apiVersion ?? ''),
    kind: String(tm.kind ?? ''),
    raw: Buffer.from((u.raw as Uint8Array | undefined) ?? []),
    contentEncoding: String(u.contentEncoding ?? ''),
    contentType: String(u.contentType ?? ''),
  };
}

function decodeMessage(type: protobuf.Type, raw: Uint8Array, what: string): Record<string, unknown> {
  try {
    return type.decode(raw) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new SkiffError('ERR_PROTOBUF_DECODE', `malformed ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (err) {
    throw new SkiffError('ERR_PROTOBUF_DECODE', `embedded JSON is malformed: ${(err as Error).message}`, { cause: err });
  }
  throw new SkiffError('ERR_PROTOBUF_DECODE', 'embedded JSON is not an object');
}
