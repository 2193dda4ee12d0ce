import type { FastifyReply, FastifyRequest } from 'fastify';
import type { KubeObject } from '../api/object.js';
import { apiVersionOf, type ResourceInfo } from '../api/registry.js';
import type { ApiCore } from './core.js';
import { StatusError } from './errors.js';
import { toTable } from './tables.js';
import type { ObjectEvent } from './storage.js';
import { gauge, histogram } from '../util/metrics.js';

type Query = Record<string, string | undefined>;

const watchers = gauge({ name: 'skiff_apiserver_watchers', help: 'Open watch streams', labelNames: ['resource'] as const });
const delivery = histogram({ name: 'skiff_apiserver_watch_delivery_seconds', help: 'Time from a store event to its write on a watch stream', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1] });

/** Encoded JSON lines of shared events, so N watchers of one event serialize it once. */
const encodedLines = new WeakMap<ObjectEvent, { type: string; line: string }>();

export interface WatchParams {
  core: ApiCore;
  info: ResourceInfo;
  namespace?: string;
  filter: (o: KubeObject) => boolean;
  table: boolean;
}

/**
 * Streams watch events as newline-delimited JSON. Selector transitions become ADDED/DELETED the
 * way Kubernetes filters watches; `sendInitialEvents=true` is served with the initial-events-end
 * bookmark; a compacted resourceVersion answers 410 Expired.
 */
export async function serveWatch(req: FastifyRequest, reply: FastifyReply, w: WatchParams): Promise<void> {
  const q = req.query as Query;
  const rvParam = q.resourceVersion ?? '';
  const sendInitial = q.sendInitialEvents === 'true';
  const bookmarks = q.allowWatchBookmarks === 'true';
  const timeoutSec = Math.min(Number(q.timeoutSeconds ?? 1800) || 1800, 3600);
  const st = w.core.storage(w.info);
  const initial: KubeObject[] = [];
  let fromRev: number;
  if (sendInitial || rvParam === '' || rvParam === '0') {
    const list = await st.list(w.namespace);
    for (const o of list.items) if (w.filter(o)) initial.push(o);
    fromRev = list.revision;
  } else {
    fromRev = Number(rvParam);
    if (!Number.isFinite(fromRev)) throw new StatusError(400, 'BadRequest', `invalid resource version: ${rvParam}`);
  }

  let lastRev = fromRev;
  let first = true;
  let closed = false;
  const raw = reply.raw;
  const encode = (type: string, obj: KubeObject): string => {
    let object: unknown = obj;
    if (w.table && type !== 'BOOKMARK' && type !== 'ERROR') {
      object = toTable(w.info, [obj], { resourceVersion: obj.metadata?.resourceVersion, withColumns: first, includeObject: q.includeObject });
      first = false;
    }
    return JSON.stringify({ type, object }) + '\n';
  };
  const write = (line: string): void => {
    if (closed) return;
    raw.write(line);
  };

  let storeWatch: { stop(): void } | undefined;
  const onEvent = (ev: ObjectEvent): void => {
    const t0 = performance.now();
    lastRev = ev.revision;
    const isIn = w.filter(ev.object);
    let type: string | null = ev.type;
    if (ev.type === 'MODIFIED') {
      const wasIn = ev.prevObject ? w.filter(ev.prevObject) : isIn;
      type = wasIn && isIn ? 'MODIFIED' : !wasIn && isIn ? 'ADDED' : wasIn && !isIn ? 'DELETED' : null;
    } else if (!isIn) type = null;
    if (!type) return;
    if (w.table) write(encode(type, ev.object));
    else {
      let cached = encodedLines.get(ev);
      if (!cached || cached.type !== type) {
        cached = { type, line: encode(type, ev.object) };
        encodedLines.set(ev, cached);
      }
      write(cached.line);
    }
    delivery.observe((performance.now() - t0) / 1000);
  };
  let failed: Error | undefined;
  const pending: ObjectEvent[] = [];
  let ready = false;
  {
    storeWatch = await st.watch(w.namespace, fromRev, (ev) => (ready ? onEvent(ev) : pending.push(ev)), (err) => {
      failed = err;
      if (ready) finish(err);
    });
  }
  // (a compacted resourceVersion throws 410 above, answered as a Status before the stream opens)
  reply.hijack();
  raw.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  raw.flushHeaders?.();
  watchers.inc({ resource: w.info.resource });
  for (const o of initial) write(encode('ADDED', o));
  if (sendInitial) {
    write(
      JSON.stringify({
        type: 'BOOKMARK',
        object: { kind: w.info.kind, apiVersion: apiVersionOf(w.info), metadata: { resourceVersion: String(fromRev), annotations: { 'k8s.io/initial-events-end': 'true' } } },
      }) + '\n',
    );
  }
  ready = true;
  for (const ev of pending.splice(0)) onEvent(ev);

  const bookmarkTimer = bookmarks
    ? setInterval(() => {
        write(JSON.stringify({ type: 'BOOKMARK', object: { kind: w.info.kind, apiVersion: apiVersionOf(w.info), metadata: { resourceVersion: String(lastRev) } } }) + '\n');
      }, 10_000)
    : undefined;
  const timeout = setTimeout(() => finish(), timeoutSec * 1000);

  function finish(err?: Error): void {
    if (closed) return;
    if (err) {
      const code = err instanceof StatusError ? err.code : 500;
      write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: err.message, reason: code === 410 ? 'Expired' : 'InternalError', code } }) + '\n');
    }
    closed = true;
    storeWatch?.stop();
    clearTimeout(timeout);
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    watchers.dec({ resource: w.info.resource });
    raw.end();
  }
  if (failed) finish(failed);
  raw.on('close', () => finish());
}
