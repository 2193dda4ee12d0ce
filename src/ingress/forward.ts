import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Header work of the forwarder, as pure functions over plain arrays and objects: what goes to the
 * upstream (hop-by-hop headers dropped, X-Forwarded-* and X-Request-ID set) and what goes back to
 * the client (hop-by-hop dropped, Server and X-Request-ID added when missing, CORS/affinity headers).
 * Outgoing HTTP/1 headers are flat [name, value, ...] arrays, which Node writes without validating
 * and storing them one by one.
 */

/** Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy sets itself. */
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'http2-settings',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id', 'host',
]);
/** Hop-by-hop response headers; Node frames the response itself (content-length, else chunked). */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

export interface ForwardInfo {
  /** the client's Host ('' when it sent none) */
  host: string;
  /** Host sent upstream when the client sent none (the endpoint address) */
  fallbackHost: string;
  clientIp: string;
  tls: boolean;
  /** local port the request came in on */
  port: string;
  requestId: string;
}

/** Extra tokens named by a Connection header (`Connection: close, X-Foo` drops X-Foo too). */
function connectionTokens(v: string | string[] | undefined): string[] {
  if (!v) return [];
  return (Array.isArray(v) ? v.join(',') : v).split(',').map((s) => s.trim().toLowerCase()).filter((s) => s && s !== 'close' && s !== 'keep-alive' && s !== 'upgrade');
}

/** Headers for the upstream request: the client's minus hop-by-hop ones, plus forwarding headers. */
export function upstreamHeaders(headers: IncomingHttpHeaders, f: ForwardInfo): string[] {
  const out: string[] = ['host', f.host || f.fallbackHost];
  const extraDrop = connectionTokens(headers.connection);
  for (const k in headers) {
    if (k.charCodeAt(0) === 58 /* ':' HTTP/2 pseudo-header */ || REQUEST_DROP.has(k) || (extraDrop.length > 0 && extraDrop.includes(k))) continue;
    const v = headers[k];
    if (v === undefined) continue;
    if (typeof v === 'string') out.push(k, v);
    else for (const x of v) out.push(k, x);
  }
  const xff = headers['x-forwarded-for'];
  out.push(
    'x-forwarded-for', xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${f.clientIp}` : f.clientIp,
    'x-forwarded-proto', f.tls ? 'https' : 'http',
    'x-forwarded-host', f.host,
    'x-forwarded-port', f.port,
    'x-real-ip', f.clientIp,
    'x-request-id', f.requestId,
  );
  return out;
}

export interface ResponseExtras {
  server: string;
  requestId: string;
  /** headers replacing the upstream's of the same name; `set-cookie` is appended instead */
  extra?: Record<string, string>;
}

/** HTTP/1 response headers from the upstream's raw headers (name case kept). */
export function clientHeaders(raw: string[], x: ResponseExtras): string[] {
  const out: string[] = [];
  let hasServer = false;
  let hasId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (RESPONSE_DROP.has(k)) continue;
    if (x.extra && k !== 'set-cookie' && x.extra[k] !== undefined) continue;
    if (k === 'server') hasServer = true;
    else if (k === 'x-request-id') hasId = true;
    out.push(raw[i], raw[i + 1]);
  }
  if (!hasServer) out.push('server', x.server);
  if (!hasId) out.push('x-request-id', x.requestId);
  if (x.extra) for (const k in x.extra) out.push(k, x.extra[k]);
  return out;
}

/** HTTP/2 response headers (an object; connection-specific headers are illegal in HTTP/2). */
export function clientHeadersH2(headers: IncomingHttpHeaders, x: ResponseExtras): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in headers) if (!RESPONSE_DROP.has(k)) out[k] = headers[k];
  out.server ??= x.server;
  out['x-request-id'] ??= x.requestId;
  if (x.extra) {
    for (const k in x.extra) {
      const prev = out[k];
      if (k === 'set-cookie') out[k] = [...(Array.isArray(prev) ? prev : prev === undefined ? [] : [String(prev)]), x.extra[k]];
      else out[k] = x.extra[k];
    }
  }
  return out;
}

const ID_POOL = Buffer.alloc(16 * 256);
let idOffset = ID_POOL.length;

/** A random 32-hex-digit request id (as ingress-nginx's $request_id), from a pooled random buffer. */
export function newRequestId(): string {
  if (idOffset >= ID_POOL.length) {
    randomFillSync(ID_POOL);
    idOffset = 0;
  }
  const id = ID_POOL.toString('hex', idOffset, idOffset + 16);
  idOffset += 16;
  return id;
}
