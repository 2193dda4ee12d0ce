/**
 * Forwarding of non-cluster names to the configured upstream resolvers only (never open
 * recursion), over UDP with TCP retry on TC, with a small positive/negative cache (TTL capped)
 * and in-flight deduplication of identical questions.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SkiffError } from '../util/errors.js';
import { componentLogger } from '../util/log.js';
import { encodeQuery, parseMessage, RCODE, T, type Message, type Question, type RR } from './wire.js';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwardResult {
  rcode: number;
  /** upstream header flags (AA, RA...) */
  flags: number;
  tc: boolean;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  cached: boolean;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** per-upstream attempt timeout */
  timeoutMs?: number;
  /** cache cap for positive and negative TTLs (CoreDNS `cache 30`) */
  maxTtl?: number;
  /** TTL of negative answers without an SOA */
  negativeTtl?: number;
  cacheSize?: number;
}

/** `1.2.3.4`, `1.2.3.4:5353`, `[::1]:53`, `::1` → {host, port}. */
export function parseUpstream(s: string): Upstream {
  const v6 = s.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (v6) return { host: v6[1], port: v6[2] ? Number(v6[2]) : 53 };
  if (net.isIPv6(s)) return { host: s, port: 53 };
  const [host, port] = s.split(':');
  if (!net.isIP(host)) throw new SkiffError('ERR_DNS_UPSTREAM', `upstream "${s}" is not an IP address`);
  return { host, port: port ? Number(port) : 53 };
}

/** Nameservers of a resolv.conf that are not one of `own` (our listen addresses). */
export function resolvConfUpstreams(path = '/etc/resolv.conf', own: string[] = []): Upstream[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[0] === 'nameserver' && w[1] && net.isIP(w[1].split('%')[0]) && !own.includes(w[1]))
    .map((w) => ({ host: w[1].split('%')[0], port: 53 }));
}

/** TTLs no longer than the time the cache will still serve the answer. */
function capTtl<R extends { answer: RR[]; authority: RR[]; additional: RR[] }>(r: R, max: number): R {
  const cap = (rrs: RR[]) => rrs.map((rr) => (rr.ttl > max ? { ...rr, ttl: max } : rr));
  return { ...r, answer: cap(r.answer), authority: cap(r.authority), additional: cap(r.additional) };
}

const log = componentLogger('dns');

/**
 * Least prefetch window: the server's packet cache asks the forwarder again once a second, so a
 * window longer than that always sees a hit while the name is in use.
 */
const PREFETCH_MS = 1500;

type Entry = { stored: number; expires: number; result: Omit<ForwardResult, 'cached'> };
type Pending = { resolve: (m: Message) => void; reject: (e: Error) => void; q: Question; timer: NodeJS.Timeout };

function cacheKey(q: Question): string {
  return `${q.name.join('.').toLowerCase()}|${q.type}|${q.class}`;
}

export class Forwarder {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<ForwardResult>>();
  private readonly pending = new Map<number, Pending>();
  private sockets: { 4?: dgram.Socket; 6?: dgram.Socket } = {};
  private readonly timeoutMs: number;
  private readonly maxTtl: number;
  private readonly negativeTtl: number;
  private readonly cacheSize: number;

  constructor(private readonly opts: ForwarderOptions) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxTtl = opts.maxTtl ?? 30;
    this.negativeTtl = opts.negativeTtl ?? 5;
    this.cacheSize = opts.cacheSize ?? 10000;
  }

  get upstreams(): Upstream[] {
    return this.opts.upstreams;
  }

  /** Answers from cache or the upstreams; SERVFAIL when every upstream failed. */
  async resolve(q: Question): Promise<ForwardResult> {
    const key = cacheKey(q);
    const hit = this.fromCache(key, q);
    if (hit) return hit;
    return this.inflight.get(key) ?? this.ask(key, q);
  }

  /** One upstream query for `key`; identical questions join it until it settles. */
  private ask(key: string, q: Question): Promise<ForwardResult> {
    const p = this.query(q).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /**
   * A cached answer, TTLs capped at the time it has left. In the last tenth of its life (at least
   * the last PREFETCH_MS), a hit also refreshes it upstream in the background, so that a name
   * asked often never expires: without that, every query for it in this process waited for the
   * upstream once per cache lifetime (30 s), up to forwardTimeoutMs. The old entry is served,
   * with its TTLs still decreasing, until it expires or the refresh replaces it; a failed refresh
   * leaves it as it is.
   */
  private fromCache(key: string, q: Question): ForwardResult | undefined {
    const e = this.cache.get(key);
    if (!e) return undefined;
    const now = Date.now();
    if (now >= e.expires) {
      this.cache.delete(key);
      return undefined;
    }
    const lifetime = e.expires - e.stored;
    const window = Math.max(PREFETCH_MS, lifetime / 10);
    if (e.expires - now <= window && lifetime >= 2 * window && !this.inflight.has(key)) void this.ask(key, q);
    const left = Math.max(0, Math.ceil((e.expires - now) / 1000));
    return { ...capTtl(e.result, left), cached: true };
  }

  private async query(q: Question): Promise<ForwardResult> {
    let lastErr: unknown;
    for (const up of this.opts.upstreams) {
      try {
        let msg = await this.udpQuery(up, q);
        if (msg.tc) msg = await this.tcpQuery(up, q);
        const result = {
          rcode: msg.rcode,
          flags: msg.flags,
          tc: msg.tc,
          answer: msg.answer,
          authority: msg.authority,
          additional: msg.additional.filter((r) => r.type !== T.OPT),
        };
        const ttl = this.store(q, result);
        return ttl > 0 ? { ...capTtl(result, ttl), cached: false } : { ...result, cached: false };
      } catch (err) {
        lastErr = err;
      }
    }
    log.debug({ question: q.name.join('.'), err: lastErr instanceof Error ? lastErr.message : String(lastErr) }, 'every upstream failed');
    return { rcode: RCODE.SERVFAIL, flags: 0, tc: false, answer: [], authority: [], additional: [], cached: false };
  }

  /** Caches a result; returns the cache lifetime in seconds (0 = not cached). */
  private store(q: Question, result: Omit<ForwardResult, 'cached'>): number {
    if (result.tc || (result.rcode !== RCODE.NOERROR && result.rcode !== RCODE.NXDOMAIN)) return 0;
    let ttl: number;
    if (result.answer.length > 0) ttl = Math.min(...result.answer.map((r) => r.ttl));
    else {
      const soa = result.authority.find((r) => r.type === T.SOA);
      ttl = soa && soa.data.kind === 'soa' ? Math.min(soa.ttl, soa.data.minimum) : this.negativeTtl;
    }
    ttl = Math.min(ttl, this.maxTtl);
    if (ttl <= 0) return 0;
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    const now = Date.now();
    this.cache.set(cacheKey(q), { stored: now, expires: now + ttl * 1000, result });
    return ttl;
  }

  private socket(family: 4 | 6): dgram.Socket {
    const existing = this.sockets[family];
    if (existing) return existing;
    const s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('message', (buf) => this.onMessage(buf));
    s.on('error', () => undefined);
    s.unref();
    this.sockets[family] = s;
    return s;
  }

  private onMessage(buf: Buffer): void {
    if (buf.length < 12) return;
    const p = this.pending.get(buf.readUInt16BE(0));
    if (!p) return;
    let msg: Message;
    try {
      msg = parseMessage(buf);
    } catch {
      return; // a garbled or spoofed packet: keep waiting for the real answer
    }
    const q = msg.questions[0];
    if (!q || q.type !== p.q.type || q.name.join('.').toLowerCase() !== p.q.name.join('.').toLowerCase()) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    p.resolve(msg);
  }

  private udpQuery(up: Upstream, q: Question): Promise<Message> {
    let id = randomInt(0, 65536);
    while (this.pending.has(id)) id = randomInt(0, 65536);
    const buf = encodeQuery(id, q, { udpSize: 1232 });
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SkiffError('ERR_DNS_UPSTREAM_TIMEOUT', `upstream ${up.host}:${up.port} timed out`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, q, timer });
      this.socket(net.isIPv6(up.host) ? 6 : 4).send(buf, up.port, up.host, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SkiffError('ERR_DNS_UPSTREAM', `send to ${up.host}:${up.port} failed`, { cause: err }));
      });
    });
  }

  private tcpQuery(up: Upstream, q: Question): Promise<Message> {
    const id = randomInt(0, 65536);
    const body = encodeQuery(id, q);
    return new Promise<Message>((resolve, reject) => {
      const sock = net.connect({ host: up.host, port: up.port });
      let data = Buffer.alloc(0);
      const fail = (err: Error) => {
        sock.destroy();
        reject(new SkiffError('ERR_DNS_UPSTREAM', `tcp query to ${up.host}:${up.port} failed`, { cause: err }));
      };
      sock.setTimeout(this.timeoutMs, () => fail(new Error('timeout')));
      sock.on('error', fail);
      sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body])));
      sock.on('data', (chunk) => {
        data = Buffer.concat([data, chunk]);
        if (data.length < 2 || data.length < 2 + data.readUInt16BE(0)) return;
        sock.end();
        try {
          const msg = parseMessage(data.subarray(2, 2 + data.readUInt16BE(0)));
          if (msg.id !== id) throw new Error('id mismatch');
          resolve(msg);
        } catch (err) {
          fail(err as Error);
        }
      });
    });
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new SkiffError('ERR_DNS_CLOSED', 'forwarder closed'));
    }
    this.pending.clear();
    this.sockets[4]?.close();
    this.sockets[6]?.close();
    this.sockets = {};
  }
}
