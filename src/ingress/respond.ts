import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AffinityConfig, CorsConfig } from './annotations.js';

/** Small response helpers shared by the HTTP and HTTPS listeners. */

export type Req = IncomingMessage | Http2ServerRequest;
export type Res = ServerResponse | Http2ServerResponse;

export const SERVER_HEADER = 'skiff-ingress';

const TEXT: Record<number, string> = {
  403: '403 Forbidden',
  404: 'default backend - 404',
  413: '413 Request Entity Too Large',
  502: '502 Bad Gateway',
  503: '503 Service Temporarily Unavailable',
  504: '504 Gateway Time-out',
};

/** The plain-text body of a status the proxy answers itself. */
export function statusBody(status: number): string {
  return status === 204 || status === 304 ? '' : `${TEXT[status] ?? String(status)}\n`;
}

export function sendStatus(res: Res, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = statusBody(status);
  res.writeHead(status, { server: SERVER_HEADER, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

export function redirect(res: Res, status: number, location: string): void {
  sendStatus(res, status, { location });
}

/** ingress-nginx style ssl-redirect Location: https://host[:port]/uri, trailing slash stripped unless asked. */
export function httpsLocation(host: string, httpsPort: number, url: string, preserveTrailingSlash: boolean): string {
  const q = url.search(/[?#]/);
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (!preserveTrailingSlash) path = path.replace(/\/+$/, '');
  const h = host.includes(':') ? `[${host}]` : host;
  return `https://${h}${httpsPort === 443 ? '' : `:${httpsPort}`}${path}${query}`;
}

function originAllowed(allowed: string[], origin: string): boolean {
  return allowed.some((a) => {
    if (a === origin) return true;
    const star = a.indexOf('://*.');
    if (star < 0) return false;
    const scheme = a.slice(0, star + 3);
    const suffix = a.slice(star + 4);
    if (!origin.startsWith(scheme) || !origin.endsWith(suffix)) return false;
    const label = origin.slice(scheme.length, origin.length - suffix.length);
    return label.length > 0 && !label.includes('.');
  });
}

/** CORS headers for a request Origin, or undefined when the origin is not allowed. */
export function corsHeaders(c: CorsConfig, origin: string | undefined): Record<string, string> | undefined {
  let allowOrigin: string;
  if (c.allowOrigin.includes('*')) allowOrigin = '*';
  else if (origin && originAllowed(c.allowOrigin, origin)) allowOrigin = origin;
  else return undefined;
  const h: Record<string, string> = {
    'access-control-allow-origin': allowOrigin,
    'access-control-allow-methods': c.allowMethods,
    'access-control-allow-headers': c.allowHeaders,
    'access-control-max-age': String(c.maxAge),
  };
  if (allowOrigin !== '*') h.vary = 'Origin';
  if (c.allowCredentials) h['access-control-allow-credentials'] = 'true';
  if (c.exposeHeaders) h['access-control-expose-headers'] = c.exposeHeaders;
  return h;
}

export function affinityCookie(a: AffinityConfig, value: string, routePath: string, now: number): string {
  const parts = [`${a.cookieName}=${value}`, `Path=${a.path ?? routePath}`];
  if (a.maxAgeSeconds !== undefined) parts.push(`Max-Age=${a.maxAgeSeconds}`, `Expires=${new Date(now + a.maxAgeSeconds * 1000).toUTCString()}`);
  if (a.domain) parts.push(`Domain=${a.domain}`);
  if (a.sameSite) parts.push(`SameSite=${a.sameSite}`);
  if (a.secure) parts.push('Secure');
  parts.push('HttpOnly');
  return parts.join('; ');
}
