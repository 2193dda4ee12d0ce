import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID, createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { counter, gauge } from '../../util/metrics.js';
import type { UserInfo } from '../hooks.js';
import { isLongRunning, isMutatingMethod, requestAttributes } from './requestinfo.js';

export interface LimitsOptions {
  /** max request body bytes (default 3 MiB, as Kubernetes) */
  maxBodyBytes?: number;
  /** max concurrent mutating requests (default 200) */
  maxMutatingInFlight?: number;
  /** max concurrent read-only requests (default 400) */
  maxReadOnlyInFlight?: number;
  /** max open watches per client identity (default 100) */
  maxWatchesPerClient?: number;
  /** seconds told to clients in Retry-After (default 1) */
  retryAfterSeconds?: number;
  /** slow clients: whole request must arrive within this (default 60 s); headers within headersTimeoutMs (default 20 s) */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** audit log path (JSON lines, one per mutating request); unset = no audit */
  auditPath?: string;
  /** resolves the caller for audit (the apiserver's user or our authenticator) */
  userOf?: (req: FastifyRequest) => Promise<UserInfo | undefined>;
}

const inflight = gauge({ name: 'skiff_apiserver_inflight_requests', help: 'Requests being served, by kind', labelNames: ['kind'] as const });
const rejected = counter({ name: 'skiff_apiserver_rejected_requests_total', help: 'Requests refused by limits', labelNames: ['reason'] as const });
const audited = counter({ name: 'skiff_apiserver_audit_events_total', help: 'Audit events written' });

function tooMany(reply: FastifyReply, retry: number, message: string): FastifyReply {
  return reply
    .code(429)
    .header('Retry-After', String(retry))
    .type('application/json')
    .send({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'TooManyRequests', details: { retryAfterSeconds: retry }, code: 429 });
}

/** Who a client is for per-client caps: its cert CN, a hash of its bearer token, or its address. */
export function clientIdentity(req: FastifyRequest): string {
  const s = req.raw.socket as Partial<TLSSocket>;
  if (typeof s.getPeerCertificate === 'function' && s.authorized) {
    const cn = s.getPeerCertificate()?.subject?.CN;
    if (cn) return `cert:${Array.isArray(cn) ? cn[0] : cn}`;
  }
  const auth = req.headers.authorization;
  if (auth) return `token:${createHash('sha256').update(auth).digest('hex').slice(0, 16)}`;
  return `ip:${req.ip}`;
}

/** system:masters client certs (the loopback components and the admin) are exempt from in-flight and watch caps, as in Kubernetes' exempt priority level. */
function isExempt(req: FastifyRequest): boolean {
  const s = req.raw.socket as Partial<TLSSocket>;
  if (typeof s.getPeerCertificate !== 'function' || !s.authorized) return false;
  const o = s.getPeerCertificate()?.subject?.O;
  return (Array.isArray(o) ? o : [o]).includes('system:masters');
}

function bodyCap(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) {
        const err = Object.assign(new Error(`the request body is larger than ${max} bytes`), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
        cb(err);
        return;
      }
      cb(null, chunk);
    },
  });
}

interface Slot {
  kind?: 'mutating' | 'readonly';
  watchKey?: string;
  received: string;
  released: boolean;
}

const slots = new WeakMap<FastifyRequest, Slot>();

/**
 * A quiet watch never writes, so Node would not notice a client that went away (HTTP servers allow
 * half-open sockets). Kubernetes clients never half-close, so the end of the client's side ends the
 * stream: the socket is destroyed, which closes the response and lets the handler clean up.
 */
function watchForHangup(req: FastifyRequest, reply: FastifyReply): void {
  const sock = req.raw.socket;
  const onEnd = () => sock.destroy();
  sock.once('end', onEnd);
  // keep-alive: the socket may serve later requests once this one is over
  reply.raw.once('close', () => sock.off('end', onEnd));
}

/**
 * Limits that keep the apiserver up under abuse: body cap (413), in-flight caps for mutating and
 * read-only requests (429 + Retry-After), open watches per client (429), slow-client timeouts, and an
 * audit log line per mutating request. Register it first, before the API routes.
 */
export function limitsPlugin(opts: LimitsOptions = {}) {
  const maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
  const maxMut = opts.maxMutatingInFlight ?? 200;
  const maxRead = opts.maxReadOnlyInFlight ?? 400;
  const maxWatches = opts.maxWatchesPerClient ?? 100;
  const retry = opts.retryAfterSeconds ?? 1;
  const counts = { mutating: 0, readonly: 0 };
  const watches = new Map<string, number>();
  let audit: WriteStream | undefined;

  const release = (req: FastifyRequest) => {
    const slot = slots.get(req);
    if (!slot || slot.released) return;
    slot.released = true;
    if (slot.kind) {
      counts[slot.kind]--;
      inflight.set({ kind: slot.kind }, counts[slot.kind]);
    }
    if (slot.watchKey) {
      const n = (watches.get(slot.watchKey) ?? 1) - 1;
      if (n <= 0) watches.delete(slot.watchKey);
      else watches.set(slot.watchKey, n);
    }
  };

  const plugin = async (app: FastifyInstance): Promise<void> => {
    if (opts.auditPath) {
      mkdirSync(dirname(opts.auditPath), { recursive: true, mode: 0o700 });
      audit = createWriteStream(opts.auditPath, { flags: 'a', mode: 0o600 });
      app.addHook('onClose', async () => {
        await new Promise<void>((r) => audit!.end(r));
      });
    }
    app.addHook('onReady', async () => {
      app.server.requestTimeout = opts.requestTimeoutMs ?? 60_000;
      app.server.headersTimeout = opts.headersTimeoutMs ?? 20_000;
    });

    app.addHook('onRequest', async (req, reply) => {
      const slot: Slot = { received: new Date().toISOString(), released: false };
      slots.set(req, slot);
      reply.raw.once('close', () => release(req));
      const len = Number(req.headers['content-length'] ?? 0);
      if (len > maxBody) {
        rejected.inc({ reason: 'body_too_large' });
        return reply.code(413).type('application/json').send({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `the request body is larger than ${maxBody} bytes`, reason: 'RequestEntityTooLarge', code: 413 });
      }
      if (isLongRunning(req.method, req.url)) {
        if (isExempt(req)) return;
        const key = clientIdentity(req);
        const n = watches.get(key) ?? 0;
        if (n >= maxWatches) {
          rejected.inc({ reason: 'watches' });
          return tooMany(reply, retry, `too many open watches for this client (max ${maxWatches})`);
        }
        watches.set(key, n + 1);
        slot.watchKey = key;
        watchForHangup(req, reply);
        return;
      }
      if (isExempt(req)) return;
      const kind = isMutatingMethod(req.method) ? 'mutating' : 'readonly';
      if (counts[kind] >= (kind === 'mutating' ? maxMut : maxRead)) {
        rejected.inc({ reason: `inflight_${kind}` });
        return tooMany(reply, retry, 'Too many requests, please try again later.');
      }
      counts[kind]++;
      inflight.set({ kind }, counts[kind]);
      slot.kind = kind;
    });

    app.addHook('preParsing', async (_req, _reply, payload) => payload.pipe(bodyCap(maxBody)));

    app.addHook('onResponse', async (req, reply) => {
      release(req);
      if (audit && isMutatingMethod(req.method)) await writeAudit(audit, req, reply, slots.get(req)?.received, opts.userOf);
    });
  };
  Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
  return { plugin, stats: () => ({ ...counts, watches: [...watches.values()].reduce((a, b) => a + b, 0) }) };
}

async function writeAudit(out: WriteStream, req: FastifyRequest, reply: FastifyReply, received: string | undefined, userOf?: (req: FastifyRequest) => Promise<UserInfo | undefined>): Promise<void> {
  let user: UserInfo | undefined;
  try {
    user = await userOf?.(req);
  } catch {
    user = undefined;
  }
  const a = requestAttributes(req.method, req.url, user ?? { username: '', groups: [] });
  const ev = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: randomUUID(),
    stage: 'ResponseComplete',
    requestURI: req.url,
    verb: a.verb,
    user: user ? { username: user.username, groups: user.groups, ...(user.uid ? { uid: user.uid } : {}) } : { username: 'system:anonymous', groups: ['system:unauthenticated'] },
    sourceIPs: [req.ip],
    userAgent: req.headers['user-agent'] ?? '',
    ...(a.isResourceRequest
      ? { objectRef: { resource: a.resource, namespace: a.namespace, name: a.name, apiGroup: a.apiGroup, apiVersion: a.apiVersion, subresource: a.subresource } }
      : {}),
    responseStatus: { code: reply.statusCode },
    requestReceivedTimestamp: received,
    stageTimestamp: new Date().toISOString(),
  };
  out.write(JSON.stringify(ev) + '\n');
  audited.inc();
}
