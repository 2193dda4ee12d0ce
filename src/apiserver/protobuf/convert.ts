import { SkiffError } from '../../util/errors.js';
import type { FieldDef, MessageDef } from './table.js';

/**
 * Converts a decoded protobuf message into the JSON form the API uses, following the table:
 * well-known wrapper messages become their JSON scalars, bytes become base64, and the zero values
 * Go always writes for non-pointer fields are dropped (JSON's omitempty would not send them).
 */

type Decoded = Record<string, unknown>;

const META = 'k8s.io.apimachinery.pkg.apis.meta.v1';
const TIME = `${META}.Time`;
const MICRO_TIME = `${META}.MicroTime`;
const DURATION = `${META}.Duration`;
const FIELDS_V1 = `${META}.FieldsV1`;
const QUANTITY = 'k8s.io.apimachinery.pkg.api.resource.Quantity';
const INT_OR_STRING = 'k8s.io.apimachinery.pkg.util.intstr.IntOrString';
const RAW_EXTENSION = 'k8s.io.apimachinery.pkg.runtime.RawExtension';

export interface ConvertContext {
  messages: Map<string, MessageDef>;
  /** decodes an embedded `k8s\0` protobuf object (RawExtension holding protobuf) */
  decodeEmbedded(raw: Buffer): unknown;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export function convertMessage(ctx: ConvertContext, def: MessageDef, msg: Decoded): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of def.fields) {
    if (!hasOwn(msg, f.name) || msg[f.name] === null || msg[f.name] === undefined) continue;
    const v = convertField(ctx, f, msg[f.name]);
    if (v === undefined) continue;
    if (f.inline) Object.assign(out, v);
    else out[f.name] = v;
  }
  return out;
}

function convertField(ctx: ConvertContext, f: FieldDef, value: unknown): unknown {
  if (f.keyType) {
    const entries = Object.entries(value as Decoded);
    if (!entries.length) return undefined;
    // map values are always kept, even empty ones (a Secret key with an empty value)
    return Object.fromEntries(entries.map(([k, v]) => [k, convertValue(ctx, f.type, v, true) ?? zeroOf(f.type)]));
  }
  if (f.repeated) {
    const items = value as unknown[];
    if (!items.length) return undefined;
    return items.map((x) => convertValue(ctx, f.type, x, true) ?? zeroOf(f.type));
  }
  return convertValue(ctx, f.type, value, f.pointer);
}

function zeroOf(type: string): unknown {
  if (type === 'string' || type === 'bytes' || type === QUANTITY) return '';
  if (type === 'bool') return false;
  if (type === TIME || type === MICRO_TIME) return null;
  return type.includes('.') ? {} : 0;
}

/** One value; `keepZero` is true for Go pointer fields, list items and map values. */
function convertValue(ctx: ConvertContext, type: string, v: unknown, keepZero: boolean): unknown {
  switch (type) {
    case 'string':
      return v === '' && !keepZero ? undefined : v;
    case 'bool':
      return v === false && !keepZero ? undefined : v;
    case 'bytes': {
      const b = toBuffer(v);
      return b.length === 0 && !keepZero ? undefined : b.toString('base64');
    }
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'uint64':
    case 'double':
    case 'float': {
      const n = toNumber(v);
      return n === 0 && !keepZero ? undefined : n;
    }
  }
  const m = v as Decoded;
  switch (type) {
    case TIME:
      return formatTime(m, false);
    case MICRO_TIME:
      return formatTime(m, true);
    case DURATION:
      return formatDuration(toBigInt(m.duration));
    case QUANTITY:
      return typeof m.string === 'string' && m.string !== '' ? m.string : undefined;
    case INT_OR_STRING:
      return convertIntOrString(m, keepZero);
    case FIELDS_V1:
      return parseEmbeddedJson(m.Raw, 'FieldsV1');
    case RAW_EXTENSION:
      return convertRawExtension(ctx, m.raw);
  }
  const def = ctx.messages.get(type);
  if (!def) throw new SkiffError('ERR_PROTOBUF_SCHEMA', `no definition for message ${type}`);
  return convertMessage(ctx, def, m);
}

function convertIntOrString(m: Decoded, keepZero: boolean): unknown {
  const isString = toNumber(m.type ?? 0) === 1;
  if (isString) return typeof m.strVal === 'string' ? m.strVal : '';
  const n = toNumber(m.intVal ?? 0);
  return n === 0 && !keepZero ? undefined : n;
}

function convertRawExtension(ctx: ConvertContext, raw: unknown): unknown {
  const b = toBuffer(raw ?? []);
  if (!b.length) return undefined;
  if (b.subarray(0, 4).toString('latin1') === 'k8s\0') return ctx.decodeEmbedded(b);
  return parseEmbeddedJson(b, 'RawExtension');
}

function parseEmbeddedJson(raw: unknown, what: string): unknown {
  const b = toBuffer(raw ?? []);
  if (!b.length) return undefined;
  try {
    return JSON.parse(b.toString('utf8')) as unknown;
  } catch (err) {
    throw new SkiffError('ERR_PROTOBUF_DECODE', `${what} does not hold JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * metav1.Time → RFC3339 in seconds (`2024-05-01T10:00:00Z`); MicroTime → RFC3339 with 6 fraction
 * digits. A zero time travels as an empty message and means "unset".
 */
export function formatTime(m: Decoded, micro: boolean): string | undefined {
  const seconds = toNumber(m.seconds ?? 0);
  const nanos = toNumber(m.nanos ?? 0);
  if (seconds === 0 && nanos === 0) return undefined;
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (!micro) return `${base}Z`;
  return `${base}.${String(Math.floor(nanos / 1000)).padStart(6, '0')}Z`;
}

const UNITS: Array<[bigint, string]> = [
  [3600_000_000_000n, 'h'],
  [60_000_000_000n, 'm'],
];

/** Go's time.Duration.String(): `1h2m3.5s`, `1.5s`, `250ms`, `0s`. */
export function formatDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  let rest = ns < 0n ? -ns : ns;
  if (rest < 1_000_000_000n) {
    const [unit, div] = rest < 1000n ? ['ns', 1n] : rest < 1_000_000n ? ['µs', 1000n] : ['ms', 1_000_000n];
    return `${sign}${fraction(rest, div)}${unit}`;
  }
  let out = '';
  for (const [div, unit] of UNITS) {
    const q = rest / div;
    if (q > 0n || out) out += `${q}${unit}`;
    rest %= div;
  }
  return `${sign}${out}${fraction(rest, 1_000_000_000n)}s`;
}

function fraction(value: bigint, div: bigint): string {
  const whole = value / div;
  const frac = value % div;
  if (frac === 0n) return String(whole);
  const digits = String(div).length - 1;
  return `${whole}.${String(frac).padStart(digits, '0').replace(/0+$/, '')}`;
}

function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return Buffer.from(v as number[]);
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  throw new SkiffError('ERR_PROTOBUF_DECODE', `expected bytes, got ${typeof v}`);
}

/** protobufjs gives int64 as a Long (or a number when it fits); JSON numbers are doubles. */
function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return Number(toBigInt(v));
}

function toBigInt(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  if (typeof v === 'bigint') return v;
  if (typeof v === 'object' && 'toString' in v) return BigInt(String(v));
  throw new SkiffError('ERR_PROTOBUF_DECODE', `expected an integer, got ${typeof v}`);
}
