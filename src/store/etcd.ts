import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { CreateGuard, KV, ListResult, Store, StoreEvent, StoreWatch } from './types.js';
import { StoreError } from './types.js';
import { prefixEnd } from './sqlite.js';

function toKV(kv: IKeyValue): KV {
  return { key: kv.key.toString(), value: Buffer.from(kv.value), modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision) };
}

function mapErr(err: unknown, rev?: number): never {
  const msg = err instanceof Error ? err.message : String(err);
  if (/compacted/i.test(msg)) throw new StoreError('Expired', msg, rev);
  if (/unavailable|ECONNREFUSED|deadline|No connection/i.test(msg)) throw new StoreError('Unavailable', msg);
  throw err;
}

/** Events a shared watch stream keeps, so that a watch starting a little in its past can join it. */
const STREAM_REPLAY = 1024;

interface WatchSubscriber {
  /** events with a revision above this one are for this subscriber */
  from: number;
  onEvent: (ev: StoreEvent) => void;
  onError?: (err: Error) => void;
}

/** One etcd watch on a prefix and the watches following it. */
interface WatchStream {
  prefix: string;
  /** every event after this revision is in `buffer` (or was delivered before anyone could need it) */
  dropped: number;
  buffer: StoreEvent[];
  subs: Set<WatchSubscriber>;
  watcher?: Watcher;
  /** settles when the etcd watch is established (rejects if it could not be) */
  ready: Promise<void>;
  closed: boolean;
}

/** How many recent watch events are kept so that every watcher of a change gets the same object. */
const RECENT_EVENTS = 4096;

/**
 * The HA store: an etcd v3 cluster. Keys live under one prefix; resourceVersions are etcd
 * mod_revisions, so several apiservers share one revision space and watches resume across them.
 */
export class EtcdStore implements Store {
  readonly name = 'etcd';
  private readonly client: Etcd3;

  constructor(endpoints: string[]) {
    // Like kube-apiserver (MaxCallRecvMsgSize = MaxInt32): a full list of a few thousand objects is
    // larger than gRPC's default 4 MiB receive limit.
    this.client = new Etcd3({ hosts: endpoints, dialTimeout: 3000, grpcOptions: { 'grpc.max_receive_message_length': 2 ** 31 - 1 } });
  }

  async get(key: string): Promise<KV | null> {
    try {
      const res = await this.client.get(key).exec();
      return res.kvs.length ? toKV(res.kvs[0]) : null;
    } catch (err) {
      mapErr(err);
    }
  }

  async list(prefix: string, opts: { revision?: number; limit?: number; startAfter?: string } = {}): Promise<ListResult> {
    const start = opts.startAfter ? opts.startAfter + '\x00' : prefix;
    let req = this.client.getAll().inRange({ start, end: prefixEnd(prefix) }).sort('Key', 'Ascend');
    if (opts.revision && opts.revision > 0) req = req.revision(opts.revision);
    if (opts.limit && opts.limit > 0) req = req.limit(opts.limit);
    try {
      const res = await req.exec();
      const revision = opts.revision && opts.revision > 0 ? opts.revision : Number(res.header.revision);
      return { items: res.kvs.map(toKV), revision, more: !!res.more };
    } catch (err) {
      mapErr(err);
    }
  }

  async create(key: string, value: Buffer, guard?: CreateGuard): Promise<number> {
    try {
      let cmp = this.client.if(key, 'Create', '==', 0);
      // an absent key is at mod revision 0 for etcd: it must also exist
      if (guard) cmp = cmp.and(guard.key, 'Mod', '==', guard.modRevision).and(guard.key, 'Create', '>', 0);
      const res = await cmp.then(this.client.put(key).value(value)).else(this.client.get(key)).commit();
      if (!res.succeeded) {
        if (!guard || (res.responses[0]?.response_range?.kvs ?? []).length > 0) throw new StoreError('AlreadyExists', `key ${key} exists`);
        throw new StoreError('Conflict', `guard ${guard.key} is not at ${guard.modRevision}`);
      }
      return Number(res.header.revision);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      mapErr(err);
    }
  }

  async update(key: string, value: Buffer, expectedRevision?: number): Promise<number> {
    try {
      const cmp = expectedRevision !== undefined ? this.client.if(key, 'Mod', '==', expectedRevision) : this.client.if(key, 'Create', '>', 0);
      const res = await cmp.then(this.client.put(key).value(value)).else(this.client.get(key)).commit();
      if (!res.succeeded) {
        const cur = res.responses[0]?.response_range?.kvs ?? [];
        if (!cur.length) throw new StoreError('NotFound', `key ${key} not found`);
        throw new StoreError('Conflict', `key ${key} is at ${cur[0].mod_revision}, not ${expectedRevision}`);
      }
      return Number(res.header.revision);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      mapErr(err);
    }
  }

  async delete(key: string, expectedRevision?: number): Promise<{ revision: number; prev: KV }> {
    for (;;) {
      const cur = await this.get(key);
      if (!cur) throw new StoreError('NotFound', `key ${key} not found`);
      if (expectedRevision !== undefined && cur.modRevision !== expectedRevision) throw new StoreError('Conflict', `key ${key} is at ${cur.modRevision}`);
      try {
        const res = await this.client.if(key, 'Mod', '==', cur.modRevision).then(this.client.delete().key(key)).commit();
        if (res.succeeded) return { revision: Number(res.header.revision), prev: cur };
      } catch (err) {
        mapErr(err);
      }
    }
  }

  /** One etcd watch per prefix, shared by the watches on that prefix (see watch()). */
  private readonly streams = new Map<string, WatchStream>();

  /**
   * Watches on one prefix share one etcd watch (as Kubernetes' watch cache does): N API watches
   * of pods in a namespace cost the apiserver one gRPC message per change, not N. A watch joins
   * the prefix's stream when the stream still holds every event after its start revision (the
   * last STREAM_REPLAY events are kept for that); older starts get an etcd watch of their own.
   */
  async watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void, onError?: (err: Error) => void): Promise<StoreWatch> {
    const compacted = await this.compactedRevision();
    if (fromRevision < compacted) throw new StoreError('Expired', `revision ${fromRevision} has been compacted`);
    const sub: WatchSubscriber = { from: fromRevision, onEvent, onError };
    let stream = this.streams.get(prefix);
    if (stream && fromRevision >= stream.dropped) {
      // replay what the stream already delivered after fromRevision, then follow it: no await in between
      for (const ev of stream.buffer) if (ev.modRevision > fromRevision) onEvent(ev);
      stream.subs.add(sub);
    } else {
      stream = this.openStream(prefix, fromRevision, sub, !stream);
    }
    const s = stream;
    try {
      await s.ready;
    } catch (err) {
      s.subs.delete(sub);
      mapErr(err);
    }
    return {
      stop: () => {
        s.subs.delete(sub);
        if (s.subs.size === 0) this.closeStream(s);
      },
    };
  }

  private openStream(prefix: string, fromRevision: number, first: WatchSubscriber, register: boolean): WatchStream {
    const s: WatchStream = { prefix, dropped: fromRevision, buffer: [], subs: new Set([first]), ready: Promise.resolve(), closed: false };
    if (register) this.streams.set(prefix, s);
    const deliver = (ev: StoreEvent): void => {
      if (s.closed) return;
      s.buffer.push(ev);
      if (s.buffer.length > STREAM_REPLAY) s.dropped = s.buffer.shift()!.modRevision;
      for (const sub of [...s.subs]) if (s.subs.has(sub) && ev.modRevision > sub.from) sub.onEvent(ev);
    };
    s.ready = (async () => {
      try {
        s.watcher = await this.client.watch().prefix(prefix).withPreviousKV().startRevision(String(fromRevision + 1)).create();
      } catch (err) {
        this.closeStream(s);
        throw err;
      }
      if (s.closed) {
        void s.watcher.cancel().catch(() => undefined);
        return;
      }
      s.watcher
        .on('put', (kv, prev) => deliver(this.shared('put', kv, prev)))
        .on('delete', (kv, prev) => deliver(this.shared('delete', kv, prev)))
        .on('error', (err) => {
          if (s.closed) return;
          const subs = [...s.subs];
          this.closeStream(s);
          const e = /compact/i.test(String(err.message)) ? new StoreError('Expired', err.message) : err;
          for (const sub of subs) sub.onError?.(e);
        });
    })();
    s.ready.catch(() => undefined);
    return s;
  }

  private closeStream(s: WatchStream): void {
    if (s.closed) return;
    s.closed = true;
    s.subs.clear();
    if (this.streams.get(s.prefix) === s) this.streams.delete(s.prefix);
    void s.watcher?.cancel().catch(() => undefined);
  }

  /**
   * Recent events by revision, type and key: the last RECENT_EVENTS of them, oldest evicted first.
   * Watchers of one prefix get their copies in different gRPC messages, often on different turns
   * of the event loop, so a window by count (not by turn) is what makes them share one object.
   */
  private readonly recent = new Map<string, StoreEvent>();

  /**
   * etcd sends each watcher its own copy of an event; handing every watcher the same StoreEvent
   * object lets the apiserver decode and serialize it once for all of them (it caches per object).
   */
  private shared(type: 'put' | 'delete', kv: IKeyValue, prev: IKeyValue | undefined): StoreEvent {
    const id = `${kv.mod_revision}\0${type}\0${kv.key.toString()}`;
    let ev = this.recent.get(id);
    if (ev) return ev;
    if (this.recent.size >= RECENT_EVENTS) this.recent.delete(this.recent.keys().next().value as string);
    const prevValue = prev ? Buffer.from(prev.value) : undefined;
    ev =
      type === 'put'
        ? { type, key: kv.key.toString(), value: Buffer.from(kv.value), prevValue, modRevision: Number(kv.mod_revision), created: kv.create_revision === kv.mod_revision }
        : { type, key: kv.key.toString(), value: prevValue ?? Buffer.alloc(0), prevValue, modRevision: Number(kv.mod_revision), created: false };
    this.recent.set(id, ev);
    return ev;
  }

  async currentRevision(): Promise<number> {
    try {
      const res = await this.client.get('\x00skiff-rev-probe').exec();
      return Number(res.header.revision);
    } catch (err) {
      mapErr(err);
    }
  }

  private compactedRev = 0;

  async compactedRevision(): Promise<number> {
    return this.compactedRev;
  }

  async compact(revision: number): Promise<void> {
    try {
      await this.client.kv.compact({ revision: String(revision), physical: true });
      this.compactedRev = Math.max(this.compactedRev, revision);
    } catch (err) {
      if (/compacted/i.test(String(err))) return;
      mapErr(err);
    }
  }

  async backup(file: string): Promise<void> {
    const { execa } = await import('execa');
    const hosts = (this.client as unknown as { options: { hosts: string[] | string } }).options.hosts;
    const endpoint = Array.isArray(hosts) ? hosts[0] : hosts;
    await execa('etcdctl', ['--endpoints', endpoint, 'snapshot', 'save', file], { env: { ETCDCTL_API: '3' } });
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
