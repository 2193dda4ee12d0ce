/**
 * DNS wire format (RFC 1035, RFC 6891 OPT): a query parser that never throws on hostile input,
 * a message parser for upstream answers, and an encoder with name compression and truncation
 * (drop whole RRs until the message fits, TC when an answer or authority RR was dropped).
 * Names travel as label arrays (latin1 strings) so a `.` inside a label can never confuse them.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const T = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));
export const RCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(RCODE).map(([k, v]) => [v, k]));

export type Name = string[];

export type RData =
  | { kind: 'addr'; address: string }
  | { kind: 'name'; target: Name }
  | { kind: 'srv'; priority: number; weight: number; port: number; target: Name }
  | { kind: 'mx'; preference: number; target: Name }
  | { kind: 'txt'; text: string[] }
  | { kind: 'soa'; mname: Name; rname: Name; serial: number; refresh: number; retry: number; expire: number; minimum: number }
  | { kind: 'raw'; bytes: Buffer };

export interface RR {
  name: Name;
  type: number;
  class?: number;
  ttl: number;
  data: RData;
}

export interface Question {
  name: Name;
  type: number;
  class: number;
}

export interface Query {
  id: number;
  /** The second 16-bit header word (QR, opcode, AA, TC, RD, RA, Z, rcode). */
  flags: number;
  opcode: number;
  rd: boolean;
  question: Question;
  /** Byte offset just past the question: `buf.subarray(12, questionEnd)` is the question on the wire. */
  questionEnd: number;
  /** Present when the query carried an OPT RR. */
  edns?: { udpSize: number; version: number };
}

export type ParseResult = { ok: true; query: Query } | { ok: false; id: number; rcode: number; flags: number };

const MAX_NAME = 255;

/** Reads a possibly compressed name at `off`; returns the labels and the offset after the name's in-place bytes. */
export function readName(buf: Buffer, off: number): { name: Name; end: number } {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('name runs past the end');
    const len = buf[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new Error('truncated pointer');
      if (++jumps > 64) throw new Error('pointer loop');
      if (end < 0) end = pos + 2;
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (target >= pos) throw new Error('forward pointer');
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Error('bad label type');
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name: labels, end };
    }
    if (pos + 1 + len > buf.length) throw new Error('label runs past the end');
    total += len + 1;
    if (total > MAX_NAME) throw new Error('name too long');
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += len + 1;
  }
}

/** Parses a query. Never throws: malformed input yields FORMERR (with id 0 if even the header is short). */
export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { ok: false, id: 0, rcode: RCODE.FORMERR, flags: 0 };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const fail = (rcode: number): ParseResult => ({ ok: false, id, rcode, flags });
  if (flags & 0x8000) return fail(RCODE.FORMERR); // a response, not a query
  const opcode = (flags >> 11) & 0xf;
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  if (opcode !== 0) return fail(RCODE.NOTIMP);
  if (qd !== 1 || an !== 0 || ns !== 0 || ar > 1) return fail(RCODE.FORMERR);
  try {
    const { name, end } = readName(buf, 12);
    if (end + 4 > buf.length) return fail(RCODE.FORMERR);
    const question = { name, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) };
    const questionEnd = end + 4;
    let edns: Query['edns'];
    if (ar === 1) {
      const rr = readName(buf, questionEnd);
      if (rr.end + 10 > buf.length) return fail(RCODE.FORMERR);
      if (buf.readUInt16BE(rr.end) !== T.OPT || rr.name.length !== 0) return fail(RCODE.FORMERR);
      edns = { udpSize: buf.readUInt16BE(rr.end + 2), version: buf[rr.end + 5] };
    }
    return { ok: true, query: { id, flags, opcode, rd: (flags & 0x0100) !== 0, question, questionEnd, edns } };
  } catch {
    return fail(RCODE.FORMERR);
  }
}

export interface Message {
  id: number;
  flags: number;
  rcode: number;
  tc: boolean;
  questions: Question[];
  answer: RR[];
  authority: RR[];
  additional: RR[];
}

function readRData(buf: Buffer, type: number, off: number, len: number): RData {
  const end = off + len;
  switch (type) {
    case T.A:
      if (len !== 4) break;
      return { kind: 'addr', address: `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}` };
    case T.AAAA: {
      if (len !== 16) break;
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(off + i).toString(16));
      return { kind: 'addr', address: compressV6(parts.join(':')) };
    }
    case T.CNAME:
    case T.NS:
    case T.PTR:
      return { kind: 'name', target: readName(buf, off).name };
    case T.MX:
      return { kind: 'mx', preference: buf.readUInt16BE(off), target: readName(buf, off + 2).name };
    case T.SRV:
      return { kind: 'srv', priority: buf.readUInt16BE(off), weight: buf.readUInt16BE(off + 2), port: buf.readUInt16BE(off + 4), target: readName(buf, off + 6).name };
    case T.TXT: {
      const text: string[] = [];
      for (let p = off; p < end; p += 1 + buf[p]) {
        if (p + 1 + buf[p] > end) throw new Error('TXT string past rdata');
        text.push(buf.toString('latin1', p + 1, p + 1 + buf[p]));
      }
      return { kind: 'txt', text };
    }
    case T.SOA: {
      const m = readName(buf, off);
      const r = readName(buf, m.end);
      if (r.end + 20 > end) break;
      const n = (i: number) => buf.readUInt32BE(r.end + i * 4);
      return { kind: 'soa', mname: m.name, rname: r.name, serial: n(0), refresh: n(1), retry: n(2), expire: n(3), minimum: n(4) };
    }
  }
  return { kind: 'raw', bytes: Buffer.from(buf.subarray(off, end)) };
}

/** Parses a whole message (upstream responses). Throws on malformed input; callers catch. */
export function parseMessage(buf: Buffer): Message {
  if (buf.length < 12) throw new Error('short message');
  const flags = buf.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o));
  let off = 12;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const { name, end } = readName(buf, off);
    if (end + 4 > buf.length) throw new Error('short question');
    questions.push({ name, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) });
    off = end + 4;
  }
  const sections: RR[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]; i++) {
      const { name, end } = readName(buf, off);
      if (end + 10 > buf.length) throw new Error('short RR');
      const type = buf.readUInt16BE(end);
      const rrClass = buf.readUInt16BE(end + 2);
      const ttl = buf.readUInt32BE(end + 4);
      const len = buf.readUInt16BE(end + 8);
      if (end + 10 + len > buf.length) throw new Error('short rdata');
      sections[s].push({ name, type, class: rrClass, ttl, data: readRData(buf, type, end + 10, len) });
      off = end + 10 + len;
    }
  }
  return { id: buf.readUInt16BE(0), flags, rcode: flags & 0xf, tc: (flags & 0x0200) !== 0, questions, answer: sections[0], authority: sections[1], additional: sections[2] };
}

function compressV6(full: string): string {
  return ipv6Bytes(full) ? formatV6(ipv6Bytes(full)!) : full;
}

/** 16 bytes of an IPv6 address, or undefined. */
export function ipv6Bytes(addr: string): Buffer | undefined {
  if (!isIPv6(addr)) return undefined;
  let s = addr;
  const out = Buffer.alloc(16);
  const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    s = s.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 5952 text form of 16 address bytes. */
export function formatV6(b: Buffer): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** A message writer with case-preserving name compression and rollback (for truncation). */
class Writer {
  readonly buf: Buffer;
  off = 0;
  private readonly names = new Map<string, number>();
  private readonly added: string[] = [];

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  mark(): { off: number; added: number } {
    return { off: this.off, added: this.added.length };
  }

  rollback(m: { off: number; added: number }): void {
    this.off = m.off;
    while (this.added.length > m.added) this.names.delete(this.added.pop()!);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.off++] = v;
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.off);
    this.off += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.off);
    this.off += b.length;
  }

  name(labels: Name, compress = true): void {
    for (let i = 0; i < labels.length; i++) {
      const key = labels.slice(i).join('.');
      const ptr = compress ? this.names.get(key) : undefined;
      if (ptr !== undefined) {
        this.u16(0xc000 | ptr);
        return;
      }
      if (compress && this.off < 0x3fff) {
        this.names.set(key, this.off);
        this.added.push(key);
      }
      const len = Buffer.byteLength(labels[i], 'latin1');
      if (len === 0 || len > 63) throw new RangeError(`bad label length ${len}`);
      this.u8(len);
      this.ensure(len);
      this.buf.write(labels[i], this.off, 'latin1');
      this.off += len;
    }
    this.u8(0);
  }

  private ensure(n: number): void {
    if (this.off + n > this.buf.length) throw new RangeError('message full');
  }
}

function writeRData(w: Writer, rr: RR): void {
  const d = rr.data;
  switch (d.kind) {
    case 'addr':
      if (isIPv4(d.address)) for (const p of d.address.split('.')) w.u8(Number(p));
      else w.bytes(ipv6Bytes(d.address) ?? Buffer.alloc(16));
      return;
    case 'name':
      // RFC 3597: compression only for the well-known types whose RDATA is a name.
      w.name(d.target, rr.type === T.CNAME || rr.type === T.NS || rr.type === T.PTR);
      return;
    case 'srv':
      w.u16(d.priority);
      w.u16(d.weight);
      w.u16(d.port);
      w.name(d.target, false);
      return;
    case 'mx':
      w.u16(d.preference);
      w.name(d.target);
      return;
    case 'txt':
      for (const s of d.text) {
        const b = Buffer.from(s, 'latin1').subarray(0, 255);
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    case 'soa':
      w.name(d.mname);
      w.name(d.rname);
      for (const n of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) w.u32(n);
      return;
    case 'raw':
      w.bytes(d.bytes);
  }
}

function writeRR(w: Writer, rr: RR): void {
  w.name(rr.name);
  w.u16(rr.type);
  w.u16(rr.class ?? 1);
  w.u32(rr.ttl);
  const lenAt = w.off;
  w.u16(0);
  writeRData(w, rr);
  w.buf.writeUInt16BE(w.off - lenAt - 2, lenAt);
}

export interface EncodeInput {
  id: number;
  /** Header flag bits besides rcode and TC (QR, AA, RD, RA...). */
  flags: number;
  rcode: number;
  question?: Question;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  /** Add an OPT RR advertising this UDP size. */
  ednsUdpSize?: number;
  /** Byte budget; RRs that do not fit are dropped (TC set if an answer/authority RR went). */
  limit: number;
  /** TC even if everything fit (e.g. the upstream answer was itself truncated). */
  forceTc?: boolean;
}

export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080 } as const;

/** Encodes a response; returns the bytes and whether it was truncated. */
export function encodeMessage(m: EncodeInput): { buf: Buffer; truncated: boolean } {
  const limit = Math.max(12, Math.min(m.limit, 65535));
  const w = new Writer(limit);
  const optSize = m.ednsUdpSize !== undefined ? 11 : 0;
  w.u16(m.id);
  w.u16(0);
  w.u16(m.question ? 1 : 0);
  w.u32(0);
  w.u16(0);
  if (m.question) {
    w.name(m.question.name);
    w.u16(m.question.type);
    w.u16(m.question.class);
  }
  let truncated = false;
  const counts = [0, 0, 0];
  const sections = [m.answer, m.authority, m.additional];
  for (let s = 0; s < 3 && !truncated; s++) {
    for (const rr of sections[s]) {
      const mark = w.mark();
      try {
        writeRR(w, rr);
        if (w.off + optSize > limit) throw new RangeError('no room for OPT');
        counts[s]++;
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        w.rollback(mark);
        if (s < 2) truncated = true;
        break;
      }
    }
  }
  if (optSize) {
    w.u8(0);
    w.u16(T.OPT);
    w.u16(m.ednsUdpSize!);
    w.u32(0);
    w.u16(0);
    counts[2]++;
  }
  const tc = truncated || m.forceTc === true;
  w.buf.writeUInt16BE((m.flags & ~0x020f) | (tc ? FLAG.TC : 0) | (m.rcode & 0xf), 2);
  w.buf.writeUInt16BE(counts[0], 6);
  w.buf.writeUInt16BE(counts[1], 8);
  w.buf.writeUInt16BE(counts[2], 10);
  return { buf: Buffer.from(w.buf.subarray(0, w.off)), truncated: tc };
}

/** Builds a query message (for upstream forwarding and tests). */
export function encodeQuery(id: number, q: Question, opts: { rd?: boolean; udpSize?: number } = {}): Buffer {
  return encodeMessage({ id, flags: opts.rd === false ? 0 : FLAG.RD, rcode: 0, question: q, answer: [], authority: [], additional: [], ednsUdpSize: opts.udpSize, limit: 65535 }).buf;
}

/** `a.b.c` → ['a','b','c']; trailing dot ignored; '' or '.' is the root. */
export function nameFromString(s: string): Name {
  const t = s.endsWith('.') ? s.slice(0, -1) : s;
  return t === '' ? [] : t.split('.');
}

export function nameToString(n: Name): string {
  return n.length === 0 ? '.' : `${n.join('.')}.`;
}

/** Presentation form of an RR, dig-like: `web.default.svc.cluster.local. 5 A 10.96.0.50`. */
export function rrToString(rr: RR): string {
  const d = rr.data;
  let rdata: string;
  switch (d.kind) {
    case 'addr':
      rdata = d.address;
      break;
    case 'name':
      rdata = nameToString(d.target);
      break;
    case 'srv':
      rdata = `${d.priority} ${d.weight} ${d.port} ${nameToString(d.target)}`;
      break;
    case 'mx':
      rdata = `${d.preference} ${nameToString(d.target)}`;
      break;
    case 'txt':
      rdata = d.text.map((t) => JSON.stringify(t)).join(' ');
      break;
    case 'soa':
      rdata = `${nameToString(d.mname)} ${nameToString(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
      break;
    default:
      rdata = `\\# ${d.bytes.length} ${d.bytes.toString('hex')}`;
  }
  return `${nameToString(rr.name)} ${rr.ttl} ${TYPE_NAMES[rr.type] ?? `TYPE${rr.type}`} ${rdata}`;
}
