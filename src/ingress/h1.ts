/**
 * HTTP/1.1 wire work of the fast path, as pure functions over strings and buffers: the strict
 * request-head parser (what it cannot forward safely it rejects with 400 or leaves to node:http),
 * the upstream response-head parser, the chunked-framing scanner (chunks are relayed as they are;
 * the scanner only finds where the body ends), and the heads written to the upstream and the client.
 */

/** token (RFC 9110 5.6.2) */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;
/** name ":" OWS value OWS; the value without control characters (HTAB allowed) */
// eslint-disable-next-line no-control-regex
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;
/** a CR not followed by LF, or an LF not preceded by CR */
const BARE_CR_LF = /\r(?!\n)|(?<!\r)\n/;
/** origin-form target: "/" then visible ASCII only */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;
/** an incoming X-Request-ID kept as is (else a new one is made) */
export const REQUEST_ID = /^[\w.-]{1,128}$/;

/** A request head the fast path can forward. */
export interface RequestHead {
  method: string;
  target: string;
  /** header names as sent, lower-cased names, values (parallel arrays) */
  names: string[];
  lower: string[];
  values: string[];
  host?: string;
  /** -1 when absent */
  contentLength: number;
  /** `Connection: close` */
  close: boolean;
  /** lower-cased extra tokens of Connection (headers to drop) */
  connectionTokens?: string[];
  /** X-Forwarded-For values joined with ", " */
  xff?: string;
  /** a well-formed client X-Request-ID */
  requestId?: string;
}

export type HeadResult = { ok: RequestHead } | { status: 400 } | { slow: string };

/**
 * Parses a request head (without its final CRLFCRLF, decoded as latin1). Request smuggling vectors
 * are 400: bare CR/LF, obs-fold and malformed header lines, duplicate or non-numeric Content-Length,
 * Content-Length with Transfer-Encoding, several Host headers or none. What the fast path leaves to
 * node:http: HTTP/1.0, non-origin-form targets, CONNECT, Transfer-Encoding, Upgrade, Expect.
 */
export function parseRequestHead(head: string): HeadResult {
  if (BARE_CR_LF.test(head)) return { status: 400 };
  const lines = head.split('\r\n');
  const rl = REQUEST_LINE.exec(lines[0]);
  if (!rl) return lines[0] === '' ? { slow: 'leading empty line' } : { status: 400 };
  if (rl[3] !== '1' || rl[4] !== '1') return { slow: `HTTP/${rl[3]}.${rl[4]}` };
  const method = rl[1];
  const target = rl[2];
  if (method === 'CONNECT' || !ORIGIN_FORM.test(target)) return { slow: 'target form' };
  const h: RequestHead = { method, target, names: [], lower: [], values: [], contentLength: -1, close: false };
  let te = false;
  let slow: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i]);
    if (!m) return { status: 400 };
    const name = m[1];
    const value = m[2];
    const lower = name.toLowerCase();
    h.names.push(name);
    h.lower.push(lower);
    h.values.push(value);
    switch (lower) {
      case 'host':
        if (h.host !== undefined) return { status: 400 };
        h.host = value;
        break;
      case 'content-length':
        if (h.contentLength >= 0 || !/^\d{1,15}$/.test(value)) return { status: 400 };
        h.contentLength = Number(value);
        break;
      case 'transfer-encoding':
        te = true;
        break;
      case 'connection':
        for (const raw of value.split(',')) {
          const tok = raw.trim().toLowerCase();
          if (tok === 'close') h.close = true;
          else if (tok === 'upgrade') slow = 'connection upgrade';
          else if (tok !== '' && tok !== 'keep-alive') (h.connectionTokens ??= []).push(tok);
        }
        break;
      case 'x-forwarded-for':
        h.xff = h.xff === undefined ? value : `${h.xff}, ${value}`;
        break;
      case 'x-request-id':
        if (REQUEST_ID.test(value)) h.requestId = value;
        break;
      case 'upgrade':
      case 'expect':
      case 'http2-settings':
        slow = lower;
        break;
    }
  }
  if (te && h.contentLength >= 0) return { status: 400 };
  if (h.host === undefined) return { status: 400 };
  if (te) return { slow: 'transfer-encoding' };
  if (slow) return { slow };
  return { ok: h };
}

/** Hop-by-hop request headers (RFC 9110 7.6.1) and the ones the proxy sets itself. */
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'http2-settings',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id', 'host',
]);

export interface UpstreamInfo {
  path: string;
  /** Host sent upstream when the client sent an empty one (the endpoint address) */
  fallbackHost: string;
  clientIp: string;
  tls: boolean;
  port: string;
  requestId: string;
}

/** The upstream request head: the client's headers minus hop-by-hop ones, plus forwarding headers. */
export function upstreamHead(h: RequestHead, u: UpstreamInfo): string {
  const host = h.host ?? '';
  let out = `${h.method} ${u.path} HTTP/1.1\r\nhost: ${host || u.fallbackHost}\r\n`;
  const extra = h.connectionTokens;
  for (let i = 0; i < h.names.length; i++) {
    const k = h.lower[i];
    if (REQUEST_DROP.has(k) || (extra !== undefined && extra.includes(k))) continue;
    out += `${h.names[i]}: ${h.values[i]}\r\n`;
  }
  return `${out}x-forwarded-for: ${h.xff ? `${h.xff}, ${u.clientIp}` : u.clientIp}\r\nx-forwarded-proto: ${u.tls ? 'https' : 'http'}\r\nx-forwarded-host: ${host}\r\nx-forwarded-port: ${u.port}\r\nx-real-ip: ${u.clientIp}\r\nx-request-id: ${u.requestId}\r\n\r\n`;
}

/** How the end of a response body is found. */
export type Framing = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  status: number;
  reason: string;
  /** header lines as received, minus hop-by-hop and framing ones */
  lines: string[];
  framing: Framing;
  /** body bytes when framing is 'length' */
  length: number;
  /** the upstream connection can carry another request after this response */
  keepAlive: boolean;
  hasServer: boolean;
  hasRequestId: boolean;
}

const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/**
 * Parses an upstream response head (without its final CRLFCRLF); undefined when it is malformed
 * (→ 502). `head`: the request was HEAD (no body whatever the headers say).
 */
export function parseResponseHead(text: string, head: boolean): ResponseHead | undefined {
  if (BARE_CR_LF.test(text)) return undefined;
  const lines = text.split('\r\n');
  const sl = STATUS_LINE.exec(lines[0]);
  if (!sl) return undefined;
  const status = Number(sl[2]);
  const r: ResponseHead = { status, reason: sl[3] ?? '', lines: [], framing: 'close', length: -1, keepAlive: sl[1] === '1', hasServer: false, hasRequestId: false };
  let chunked = false;
  let te = false;
  let keepAliveToken = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return undefined;
    const k = name.toLowerCase();
    if (k === 'content-length') {
      const v = line.slice(colon + 1).trim();
      if (!/^\d{1,15}$/.test(v) || (r.length >= 0 && Number(v) !== r.length)) return undefined;
      if (r.length >= 0) continue; // an identical repeat
      r.length = Number(v);
    } else if (k === 'transfer-encoding') {
      te = true;
      chunked = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(line.slice(colon + 1));
      continue;
    } else if (k === 'connection') {
      for (const tok of line.slice(colon + 1).split(',')) {
        const t = tok.trim().toLowerCase();
        if (t === 'close') r.keepAlive = false;
        else if (t === 'keep-alive') keepAliveToken = true;
      }
      continue;
    } else if (RESPONSE_DROP.has(k)) continue;
    else if (k === 'server') r.hasServer = true;
    else if (k === 'x-request-id') r.hasRequestId = true;
    r.lines.push(line);
  }
  if (sl[1] === '0' && keepAliveToken) r.keepAlive = true;
  if (head || status === 204 || status === 304 || status < 200) r.framing = 'none';
  else if (te) {
    r.framing = chunked ? 'chunked' : 'close';
    // Transfer-Encoding wins over Content-Length (RFC 9112 6.3): the length is not relayed
    if (r.length >= 0) r.lines = r.lines.filter((l) => !/^content-length:/i.test(l));
    r.length = -1;
  } else if (r.length >= 0) r.framing = 'length';
  if (r.framing === 'close') r.keepAlive = false;
  return r;
}

export interface ClientExtras {
  server: string;
  requestId: string;
  /** `Connection: close` on the response */
  close: boolean;
}

/**
 * The response head for the client (HTTP/1.1): the upstream's lines, Server and X-Request-ID when
 * missing, chunked framing when the upstream's was chunked or close-delimited.
 */
export function clientHead(r: ResponseHead, x: ClientExtras): string {
  let out = `HTTP/1.1 ${r.status} ${r.reason}\r\n`;
  for (const l of r.lines) out += `${l}\r\n`;
  if (!r.hasServer) out += `server: ${x.server}\r\n`;
  if (!r.hasRequestId) out += `x-request-id: ${x.requestId}\r\n`;
  if (r.framing === 'chunked' || r.framing === 'close') out += 'transfer-encoding: chunked\r\n';
  if (x.close) out += 'connection: close\r\n';
  return `${out}\r\n`;
}

const enum S { Size, Ext, SizeLf, Data, DataCr, DataLf, TrailerStart, TrailerLine, TrailerLf, EndLf, Done }

/**
 * Finds the end of a chunked body in the bytes relayed through it (chunk sizes, extensions and
 * trailers are checked, not rewritten). `scan` returns the index just past the body's last byte
 * when it ends in this buffer, -1 when more is needed, -2 on a framing error.
 */
export class ChunkedScanner {
  private s = S.Size;
  private size = 0;
  private digits = 0;
  private left = 0;

  get done(): boolean {
    return this.s === S.Done;
  }

  scan(b: Buffer, from = 0): number {
    let i = from;
    const n = b.length;
    while (i < n) {
      if (this.s === S.Data) {
        const take = Math.min(this.left, n - i);
        this.left -= take;
        i += take;
        if (this.left === 0) this.s = S.DataCr;
        continue;
      }
      const c = b[i++];
      switch (this.s) {
        case S.Size: {
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > 13) return -2;
            this.size = this.size * 16 + v;
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) this.s = S.Ext;
          else if (c === 0x0d) this.s = S.SizeLf;
          else return -2;
          break;
        }
        case S.Ext:
          if (c === 0x0d) this.s = S.SizeLf;
          else if (c === 0x0a) return -2;
          break;
        case S.SizeLf:
          if (c !== 0x0a || this.digits === 0) return -2;
          if (this.size === 0) this.s = S.TrailerStart;
          else {
            this.left = this.size;
            this.s = S.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case S.DataCr:
          if (c !== 0x0d) return -2;
          this.s = S.DataLf;
          break;
        case S.DataLf:
          if (c !== 0x0a) return -2;
          this.s = S.Size;
          break;
        case S.TrailerStart:
          if (c === 0x0d) this.s = S.EndLf;
          else if (c === 0x0a) return -2;
          else this.s = S.TrailerLine;
          break;
        case S.TrailerLine:
          if (c === 0x0d) this.s = S.TrailerLf;
          else if (c === 0x0a) return -2;
          break;
        case S.TrailerLf:
          if (c !== 0x0a) return -2;
          this.s = S.TrailerStart;
          break;
        case S.EndLf:
          if (c !== 0x0a) return -2;
          this.s = S.Done;
          return i;
        default:
          return -2;
      }
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
