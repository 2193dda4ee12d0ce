import http from 'node:http';
import https from 'node:https';
import type { KubeObject } from '../api/object.js';
import { apiVersionOf } from '../api/registry.js';
import type { ApiClient, ListOptions, ObjectList, ResourceRef, Watch, WatchEvent } from './types.js';

export interface RestConfig {
  server: string; // https://127.0.0.1:6443
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  token?: string;
  insecureSkipTLSVerify?: boolean;
  userAgent?: string;
  timeoutMs?: number;
}

/** An API error as the server sent it (a Status). */
export class ApiError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly status?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: number })?.code === 404;
}
export function isConflict(err: unknown): boolean {
  return (err as { code?: number })?.code === 409;
}
export function isAlreadyExists(err: unknown): boolean {
  return (err as { code?: number; reason?: string })?.code === 409 && (err as { reason?: string }).reason === 'AlreadyExists';
}

function basePath(ref: ResourceRef): string {
  return ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
}

export function resourcePath(ref: ResourceRef, namespace?: string, name?: string, subresource?: string): string {
  let p = basePath(ref);
  if (ref.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${ref.resource}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

function query(o: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(o)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

const PATCH_TYPES = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** ApiClient over HTTP(S) with keep-alive, client certs or bearer tokens. */
export class RestClient implements ApiClient {
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(readonly config: RestConfig) {
    this.url = new URL(config.server);
    this.agent =
      this.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 64, ca: config.ca, cert: config.cert, key: config.key, rejectUnauthorized: !config.insecureSkipTLSVerify })
        : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  private raw(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        {
          method,
          host: this.url.hostname,
          port: this.url.port,
          path,
          agent: this.agent,
          headers: {
            Accept: 'application/json',
            'User-Agent': this.config.userAgent ?? 'skiff',
            ...(this.config.token ? { Authorization: `Bearer ${this.config.token}` } : {}),
            ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
            ...headers,
          },
          timeout: this.config.timeoutMs ?? 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), headers: res.headers }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request timed out: ${method} ${path}`)));
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const res = await this.raw(method, path, payload, headers);
    let parsed: unknown = res.text;
    if (String(res.headers['content-type'] ?? '').includes('json') && res.text) {
      try {
        parsed = JSON.parse(res.text);
      } catch {
        parsed = res.text;
      }
    }
    if (res.status >= 400) {
      const st = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
      throw new ApiError(res.status, String(st.reason ?? 'Unknown'), String(st.message ?? res.text ?? `HTTP ${res.status}`), st);
    }
    return { status: res.status, body: parsed };
  }

  async get<T extends KubeObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T> {
    return (await this.request('GET', resourcePath(ref, namespace, name))).body as T;
  }

  async list<T extends KubeObject>(ref: ResourceRef, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const q = query({ labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit, continue: opts.continue, resourceVersion: opts.resourceVersion });
    return (await this.request('GET', resourcePath(ref, opts.namespace) + q)).body as ObjectList<T>;
  }

  async create<T extends KubeObject>(ref: ResourceRef, obj: T, namespace?: string): Promise<T> {
    const body = { apiVersion: apiVersionOf(ref), kind: (obj.kind as string | undefined) ?? undefined, ...obj };
    return (await this.request('POST', resourcePath(ref, namespace ?? obj.metadata?.namespace), body)).body as T;
  }

  async update<T extends KubeObject>(ref: ResourceRef, obj: T, opts: { subresource?: string } = {}): Promise<T> {
    return (await this.request('PUT', resourcePath(ref, obj.metadata?.namespace, obj.metadata?.name, opts.subresource), obj)).body as T;
  }

  async patch<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    opts: { namespace?: string; type?: 'merge' | 'strategic' | 'json' | 'apply'; subresource?: string; fieldManager?: string; force?: boolean } = {},
  ): Promise<T> {
    const type = opts.type ?? 'merge';
    const q = query({ fieldManager: opts.fieldManager ?? (type === 'apply' ? 'skiff' : undefined), force: opts.force });
    return (await this.request('PATCH', resourcePath(ref, opts.namespace, name, opts.subresource) + q, patch, { 'Content-Type': PATCH_TYPES[type] })).body as T;
  }

  async delete(ref: ResourceRef, name: string, namespace?: string, opts: { propagationPolicy?: string; gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } } = {}): Promise<KubeObject> {
    const body = Object.keys(opts).length ? { kind: 'DeleteOptions', apiVersion: 'v1', ...opts } : undefined;
    return (await this.request('DELETE', resourcePath(ref, namespace, name), body)).body as KubeObject;
  }

  watch<T extends KubeObject>(ref: ResourceRef, opts: ListOptions & { allowWatchBookmarks?: boolean; timeoutSeconds?: number }, onEvent: (ev: WatchEvent<T>) => void): Watch {
    const mod = this.url.protocol === 'https:' ? https : http;
    const path =
      resourcePath(ref, opts.namespace) +
      query({ watch: 'true', labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, resourceVersion: opts.resourceVersion, allowWatchBookmarks: opts.allowWatchBookmarks, timeoutSeconds: opts.timeoutSeconds });
    let resolveDone!: (r: { error?: Error }) => void;
    const done = new Promise<{ error?: Error }>((r) => (resolveDone = r));
    let finished = false;
    const finish = (error?: Error): void => {
      if (finished) return;
      finished = true;
      resolveDone({ error });
    };
    const req = mod.request(
      {
        method: 'GET',
        host: this.url.hostname,
        port: this.url.port,
        path,
        agent: this.agent,
        headers: { Accept: 'application/json', 'User-Agent': this.config.userAgent ?? 'skiff', ...(this.config.token ? { Authorization: `Bearer ${this.config.token}` } : {}) },
      },
      (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let st: Record<string, unknown> = {};
            try {
              st = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
            } catch {
              /* not a Status */
            }
            if (res.statusCode === 410) {
              onEvent({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: String(st.message ?? 'expired') } as unknown as T });
              finish();
            } else finish(new ApiError(res.statusCode ?? 0, String(st.reason ?? 'Unknown'), String(st.message ?? `watch failed: HTTP ${res.statusCode}`)));
          });
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          // one pass over the chunk's complete lines, the partial tail is kept for the next chunk
          let start = 0;
          let i: number;
          while ((i = buf.indexOf('\n', start)) >= 0) {
            const line = buf.slice(start, i).trim();
            start = i + 1;
            if (!line || finished) continue;
            try {
              onEvent(JSON.parse(line) as WatchEvent<T>);
            } catch (err) {
              finish(err as Error);
              req.destroy();
              return;
            }
          }
          buf = start === 0 ? buf : buf.slice(start);
        });
        res.on('end', () => finish());
        res.on('error', (err) => finish(err));
        res.on('close', () => finish());
      },
    );
    req.on('error', (err) => finish(err));
    req.end();
    return {
      stop: () => {
        finish();
        req.destroy();
      },
      done,
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
