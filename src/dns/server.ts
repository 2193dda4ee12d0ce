/**
 * The DNS server: UDP and TCP listeners, a packet cache keyed on the question bytes (precomputed
 * wire answers, swapped out whole with each new zone), per-client rate limits, truncation with
 * TC for UDP, and forwarding of other names. Malformed packets get FORMERR or are dropped.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { ClusterZone, LookupResult } from './records.js';
import { changedServices } from './model.js';
import type { Forwarder } from './forward.js';
import { encodeMessage, FLAG, parseQuery, RCODE, type Name, type Query, type RR } from './wire.js';
import { DnsStats, type StatsBatch } from './metrics.js';
import { PacketCache, reply } from './packet-cache.js';

export interface RateLimit {
  /** sustained queries per second per client address; 0 disables */
  qps: number;
  burst: number;
}

export interface ServerOptions {
  zone: ClusterZone;
  forwarder?: Forwarder;
  rateLimit?: RateLimit;
  /** max entries of the packet cache before it is reset */
  packetCacheSize?: number;
  maxTcpConnections?: number;
  tcpIdleMs?: number;
  /** where aggregated stats go (default: this process's metrics registry) */
  statsSink?: (b: StatsBatch) => void;
}

type Bucket = { tokens: number; last: number };

const MAX_CHASE = 8;

/** The packet-cache key of a query, or undefined when it is not cacheable (for tests). */
export function packetKey(buf: Buffer, transport: 'u' | 't'): number | undefined {
  return new PacketCache().key(buf, transport === 't');
}

/**
 * dgram's default lookup resolves even an IP literal through dns.lookup and a nextTick before
 * each send. Answers only ever go to `rinfo.address`, an IP literal, so answer synchronously.
 */
function literalLookup(host: string, opts: dns.LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const v = net.isIP(host);
  if (v) cb(null, host, v);
  else dns.lookup(host, opts, cb);
}

/** Socket receive buffer asked for (the kernel caps it at net.core.rmem_max): absorbs bursts and stalls. */
const RCVBUF = 4 << 20;

export class DnsServer {
  private zone: ClusterZone;
  private readonly packetCache: PacketCache;
  private readonly buckets = new Map<string, Bucket>();
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private readonly stats: DnsStats;
  private boundPort = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: ServerOptions) {
    this.zone = opts.zone;
    this.stats = new DnsStats(opts.statsSink);
    this.packetCache = new PacketCache(opts.packetCacheSize);
    this.sweeper = setInterval(() => this.sweepBuckets(), 10_000);
    this.sweeper.unref();
  }

  /**
   * Swaps in a new zone. Precomputed answers that one Service alone decides survive when that
   * Service and its endpoints are unchanged; every other one is dropped.
   */
  setZone(zone: ClusterZone): void {
    const changed = changedServices(this.zone.snap, zone.snap);
    this.zone = zone;
    if (changed) this.packetCache.retain(changed);
    else this.packetCache.clear();
  }

  /** Serves an already bound UDP socket (a worker process gets the primary's sockets this way). */
  attachUdp(sock: dgram.Socket): void {
    trySetRecvBuffer(sock);
    sock.on('message', (buf, rinfo) => this.onUdp(sock, buf, rinfo));
    sock.on('error', () => undefined);
    this.udp.push(sock);
  }

  /** The bound UDP sockets, to hand to worker processes. */
  udpSockets(): dgram.Socket[] {
    return [...this.udp];
  }

  async listen(addrs: { address: string; port: number }[]): Promise<void> {
    for (const a of addrs) {
      const sock = dgram.createSocket({ type: net.isIPv6(a.address) ? 'udp6' : 'udp4', recvBufferSize: RCVBUF, lookup: literalLookup });
      sock.on('message', (buf, rinfo) => this.onUdp(sock, buf, rinfo));
      sock.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(a.port, a.address, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      this.udp.push(sock);
      if (!this.boundPort) this.boundPort = sock.address().port;
      // TCP on the same port as the UDP socket got (matters when port 0 was asked).
      const srv = net.createServer((c) => this.onTcp(c));
      srv.maxConnections = this.opts.maxTcpConnections ?? 1000;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(sock.address().port, a.address, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      this.tcp.push(srv);
    }
  }

  /** The UDP (and TCP) port of the first listen address; 0 before listen(). */
  port(): number {
    return this.boundPort;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.stats.stop();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.udp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.udp.length = 0;
    this.tcp.length = 0;
  }

  private allow(client: string): boolean {
    const rl = this.opts.rateLimit;
    if (!rl || rl.qps <= 0) return true;
    const now = Date.now();
    let b = this.buckets.get(client);
    if (!b) {
      b = { tokens: rl.burst, last: now };
      this.buckets.set(client, b);
    }
    b.tokens = Math.min(rl.burst, b.tokens + ((now - b.last) / 1000) * rl.qps);
    b.last = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private sweepBuckets(): void {
    const rl = this.opts.rateLimit;
    if (!rl) return;
    const now = Date.now();
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.last) / 1000) * rl.qps >= rl.burst) this.buckets.delete(k);
  }

  private onUdp(sock: dgram.Socket, buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.port === 0) return; // cannot be answered; send() would throw
    if (!this.allow(rinfo.address)) {
      this.stats.rateLimited();
      return;
    }
    const out = this.fromPacketCache(buf, 'u');
    if (out) {
      sock.send(out, rinfo.port, rinfo.address);
      return;
    }
    this.handle(buf, false).then(
      (res) => res && sock.send(res, rinfo.port, rinfo.address),
      () => undefined,
    );
  }

  private onTcp(c: net.Socket): void {
    this.conns.add(c);
    c.setTimeout(this.opts.tcpIdleMs ?? 10_000, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    let data = Buffer.alloc(0);
    c.on('data', (chunk) => {
      data = data.length ? Buffer.concat([data, chunk]) : chunk;
      while (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
        const msg = data.subarray(2, 2 + data.readUInt16BE(0));
        data = data.subarray(2 + msg.length);
        if (!this.allow(c.remoteAddress ?? '')) {
          this.stats.rateLimited();
          continue;
        }
        const cached = this.fromPacketCache(msg, 't');
        const reply = cached ? Promise.resolve(cached) : this.handle(msg, true);
        reply.then(
          (res) => {
            if (!res || c.destroyed) return;
            c.write(Buffer.concat([Buffer.from([res.length >> 8, res.length & 0xff]), res]));
          },
          () => c.destroy(),
        );
      }
    });
  }

  /** The cached answer for this exact question (+EDNS) with the query's ID and RD bit, if any. */
  private fromPacketCache(buf: Buffer, transport: 'u' | 't'): Buffer | undefined {
    const start = this.stats.sampleStart();
    const e = this.packetCache.get(buf, transport === 't');
    if (!e) return undefined;
    const out = reply(e, buf);
    this.stats.answered(e.qtype, e.rcode, start, true);
    return out;
  }

  /** Answers one message; undefined means drop it (not a query). */
  async handle(buf: Buffer, tcp: boolean): Promise<Buffer | undefined> {
    const start = this.stats.sampleStart();
    const parsed = parseQuery(buf);
    if (!parsed.ok) {
      if (buf.length < 12 || parsed.flags & 0x8000) return undefined;
      this.stats.answered(0, parsed.rcode, start, false);
      this.stats.malformed();
      return encodeMessage({ id: parsed.id, flags: FLAG.QR | (parsed.flags & 0x7900), rcode: parsed.rcode, answer: [], authority: [], additional: [], limit: 512 }).buf;
    }
    const q = parsed.query;
    const limit = tcp ? 65535 : Math.min(4096, Math.max(512, q.edns?.udpSize ?? 512));
    const { out, rcode, cacheable, dep } = await this.answer(q, limit).catch(() => ({
      out: encodeMessage({ id: q.id, flags: FLAG.QR | (q.rd ? FLAG.RD : 0), rcode: RCODE.SERVFAIL, question: q.question, answer: [], authority: [], additional: [], limit: 512 }).buf,
      rcode: RCODE.SERVFAIL as number,
      cacheable: undefined,
      dep: undefined,
    }));
    this.stats.answered(q.question.type, rcode, start, false);
    if (cacheable !== undefined) this.packetCache.set(buf, tcp, { buf: out, expires: cacheable, rcode, qtype: q.question.type, dep });
    return out;
  }

  /**
   * `cacheable`: undefined = do not cache, 0 = until the zone changes, else an expiry time (ms);
   * `dep`: the one Service the answer depends on (see LookupResult.dep).
   */
  private async answer(q: Query, limit: number): Promise<{ out: Buffer; rcode: number; cacheable?: number; dep?: string }> {
    const rd = q.rd ? FLAG.RD : 0;
    const ednsUdpSize = q.edns ? Math.max(512, q.edns.udpSize) : undefined;
    const base = { id: q.id, question: q.question, ednsUdpSize, limit };
    if (q.question.class !== 1) {
      return { out: encodeMessage({ ...base, flags: FLAG.QR | rd, rcode: RCODE.REFUSED, answer: [], authority: [], additional: [] }).buf, rcode: RCODE.REFUSED };
    }
    const zone = this.zone;
    const local = zone.lookup(q.question.name, q.question.type);
    if (local) {
      const { result, tc, external } = await this.chase(zone, local);
      const out = encodeMessage({ ...base, flags: FLAG.QR | FLAG.AA | rd, rcode: result.rcode, answer: result.answer, authority: result.authority, additional: result.additional, forceTc: tc }).buf;
      const cacheable = zone.snap.synced && !external && result.rcode !== RCODE.SERVFAIL ? 0 : undefined;
      return { out, rcode: result.rcode, cacheable, dep: local.chase ? undefined : local.dep };
    }
    if (!this.opts.forwarder || this.opts.forwarder.upstreams.length === 0) {
      return { out: encodeMessage({ ...base, flags: FLAG.QR | rd, rcode: RCODE.REFUSED, answer: [], authority: [], additional: [] }).buf, rcode: RCODE.REFUSED };
    }
    const fwd = await this.opts.forwarder.resolve(q.question);
    this.stats.forwarded(fwd.rcode, fwd.cached);
    const flags = FLAG.QR | rd | (fwd.flags & (FLAG.AA | FLAG.RA));
    const out = encodeMessage({ ...base, flags, rcode: fwd.rcode, answer: fwd.answer, authority: fwd.authority, additional: fwd.additional, forceTc: fwd.tc }).buf;
    // Forwarded answers are reused for at most a second so their TTLs stay honest.
    const cacheable = fwd.rcode === RCODE.SERVFAIL ? undefined : Date.now() + 1000;
    return { out, rcode: fwd.rcode, cacheable };
  }

  /** Follows an ExternalName CNAME: inside the zone by lookup, outside through the forwarder. */
  private async chase(zone: ClusterZone, first: LookupResult): Promise<{ result: LookupResult; tc: boolean; external: boolean }> {
    let result = first;
    const answer: RR[] = [...first.answer];
    let external = false;
    for (let hop = 0; result.chase && hop < MAX_CHASE; hop++) {
      const { target, type } = result.chase;
      const next = zone.lookup(target, type);
      if (next) {
        answer.push(...next.answer);
        result = { ...next, rcode: RCODE.NOERROR, authority: next.answer.length ? [] : next.authority };
        continue;
      }
      external = true;
      if (!this.opts.forwarder || this.opts.forwarder.upstreams.length === 0) break;
      const fwd = await this.opts.forwarder.resolve({ name: target as Name, type, class: 1 });
      this.stats.forwarded(fwd.rcode, fwd.cached);
      answer.push(...fwd.answer);
      return { result: { rcode: RCODE.NOERROR, answer, authority: [], additional: [] }, tc: fwd.tc, external };
    }
    return { result: { ...result, rcode: first.chase ? RCODE.NOERROR : result.rcode, answer }, tc: false, external };
  }
}

/** A socket handed over by the primary keeps the kernel default buffer unless asked. */
function trySetRecvBuffer(sock: dgram.Socket): void {
  try {
    if (sock.getRecvBufferSize() < RCVBUF) sock.setRecvBufferSize(RCVBUF);
  } catch {
    // not bound yet or not allowed: keep the default
  }
}
