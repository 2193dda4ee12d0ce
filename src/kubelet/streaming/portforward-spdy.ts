// Minimal SPDY/3.1 framing for the server side of kubectl port-forward (spdystream on the client):
// frame parsing/encoding (pure) and the zlib header-block codec with the SPDY/3 dictionary.
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';

export const TYPE_SYN_STREAM = 1;
export const TYPE_SYN_REPLY = 2;
export const TYPE_RST_STREAM = 3;
export const TYPE_SETTINGS = 4;
export const TYPE_PING = 6;
export const TYPE_GOAWAY = 7;
export const TYPE_HEADERS = 8;
export const TYPE_WINDOW_UPDATE = 9;
export const FLAG_FIN = 0x01;
/** RST_STREAM status codes used here. */
export const RST_PROTOCOL_ERROR = 1;
export const RST_REFUSED_STREAM = 3;

export type SpdyFrame =
  | { control: false; streamId: number; flags: number; data: Buffer }
  | { control: true; version: number; type: number; flags: number; data: Buffer };

/** The SPDY/3 header compression dictionary (spec §2.6.10.1): length-prefixed words, then a raw tail. */
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICT_TAIL = '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505'
  + '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden'
  + '404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable'
  + 'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT'
  + 'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,'
  + 'publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY3_DICTIONARY: Buffer = Buffer.concat([
  ...DICT_WORDS.map((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return Buffer.concat([len, Buffer.from(w, 'latin1')]);
  }),
  Buffer.from(DICT_TAIL, 'latin1'),
]);

/** Pure: splits complete frames off the front of buf; returns them and the unconsumed rest. */
export function parseFrames(buf: Buffer): { frames: SpdyFrame[]; rest: Buffer } {
  const frames: SpdyFrame[] = [];
  let off = 0;
  while (buf.length - off >= 8) {
    const len = buf.readUIntBE(off + 5, 3);
    if (buf.length - off < 8 + len) break;
    const flags = buf[off + 4];
    const data = buf.subarray(off + 8, off + 8 + len);
    if (buf[off] & 0x80) {
      frames.push({ control: true, version: buf.readUInt16BE(off) & 0x7fff, type: buf.readUInt16BE(off + 2), flags, data });
    } else {
      frames.push({ control: false, streamId: buf.readUInt32BE(off) & 0x7fffffff, flags, data });
    }
    off += 8 + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export function encodeControl(type: number, flags: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8003);
  h.writeUInt16BE(type, 2);
  h[4] = flags;
  h.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([h, payload]);
}

export function encodeData(streamId: number, flags: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff);
  h[4] = flags;
  h.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([h, data]);
}

export function encodeRst(streamId: number, status: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(streamId & 0x7fffffff);
  p.writeUInt32BE(status, 4);
  return encodeControl(TYPE_RST_STREAM, 0, p);
}

export function encodeGoaway(lastStreamId: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastStreamId & 0x7fffffff);
  return encodeControl(TYPE_GOAWAY, 0, p);
}

/** Pure: the uncompressed name/value block (names lowercased, repeated values NUL-joined). */
export function encodeHeaderBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const entries = Object.entries(headers);
  parts.push(u32(entries.length));
  for (const [k, v] of entries) {
    const kb = Buffer.from(k.toLowerCase());
    const vb = Buffer.from(v);
    parts.push(u32(kb.length), kb, u32(vb.length), vb);
  }
  return Buffer.concat(parts);
}

/** Pure: parses an uncompressed name/value block; throws on truncation. */
export function decodeHeaderBlock(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  const u32 = () => {
    if (off + 4 > b.length) throw new Error('truncated SPDY header block');
    const n = b.readUInt32BE(off);
    off += 4;
    return n;
  };
  const str = () => {
    const n = u32();
    if (off + n > b.length) throw new Error('truncated SPDY header block');
    const s = b.subarray(off, off + n).toString();
    off += n;
    return s;
  };
  const count = u32();
  for (let i = 0; i < count; i++) {
    const k = str().toLowerCase();
    out[k] = str();
  }
  return out;
}

/** Runs one chunk through a long-lived zlib stream and collects what a sync flush yields. */
function flushThrough(z: Deflate | Inflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => chunks.push(c);
    const onError = (err: Error) => { z.off('data', onData); reject(err); };
    z.on('data', onData);
    z.once('error', onError);
    z.write(input);
    z.flush(constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', onError);
      resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * The per-connection header compression state: one zlib context per direction, shared by every
 * header block of the session (SPDY/3 §2.6.10). Calls must be made in frame order.
 */
export class HeaderCodec {
  private readonly inflater = createInflate({ dictionary: SPDY3_DICTIONARY });
  private readonly deflater = createDeflate({ dictionary: SPDY3_DICTIONARY });
  // one block at a time per zlib stream: overlapping flushes would mix their output
  private inflating: Promise<unknown> = Promise.resolve();
  private deflating: Promise<unknown> = Promise.resolve();

  decode(compressed: Buffer): Promise<Record<string, string>> {
    const r = this.inflating.catch(() => undefined).then(() => flushThrough(this.inflater, compressed)).then(decodeHeaderBlock);
    this.inflating = r;
    return r;
  }

  encode(headers: Record<string, string>): Promise<Buffer> {
    const r = this.deflating.catch(() => undefined).then(() => flushThrough(this.deflater, encodeHeaderBlock(headers)));
    this.deflating = r;
    return r;
  }

  close(): void {
    this.inflater.destroy();
    this.deflater.destroy();
  }
}
