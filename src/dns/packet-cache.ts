/**
 * The packet cache: precomputed wire answers keyed on the question bytes of the query, plus the
 * transport and the EDNS UDP size and version (EDNS options such as cookies are left out). A hit
 * costs a hash over the question, one Map lookup on a small integer, a byte compare and a copy
 * of the answer with the query's ID and RD bit patched in; it builds no string and no object.
 *
 * Only plain uncompressed queries are cacheable (QR=0, opcode 0, one question, no answer or
 * authority RRs, at most an OPT); anything else takes the full path.
 */

export interface CachedAnswer {
  /** the answer with RD cleared; ID and RD are patched in per query */
  buf: Buffer;
  /** 0 = valid until the zone changes, else a Date.now() deadline */
  expires: number;
  rcode: number;
  qtype: number;
  /**
   * The Service (`ns/name`) whose data alone decides this answer. A zone swap keeps the entry
   * when that Service and its endpoints are unchanged; entries without it are dropped on a swap.
   */
  dep?: string;
}

/** A class, not a spread literal, so that every entry has one hidden class and the hot path's property loads stay monomorphic. */
class Entry implements CachedAnswer {
  constructor(
    readonly buf: Buffer,
    readonly expires: number,
    readonly rcode: number,
    readonly qtype: number,
    readonly dep: string | undefined,
    /** the query's bytes 4..end of question (header counts + question), to rule out hash collisions */
    readonly question: Buffer,
    readonly tcp: boolean,
    readonly edns: number,
  ) {}
}

const NO_EDNS = -1;

export class PacketCache {
  private entries = new Map<number, Entry>();
  // Filled by locate() for the packet at hand; fields, so that the hot path allocates nothing.
  private hash = 0;
  private qend = 0;
  private edns = NO_EDNS;

  constructor(private readonly maxEntries = 100_000) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached answer to this query, if any (not yet patched: see `reply`). */
  get(buf: Buffer, tcp: boolean, now: () => number = Date.now): CachedAnswer | undefined {
    if (!this.locate(buf, tcp)) return undefined;
    const e = this.entries.get(this.hash);
    if (!e || e.tcp !== tcp || e.edns !== this.edns || !sameBytes(buf, 4, this.qend, e.question)) return undefined;
    if (e.expires !== 0 && e.expires < now()) return undefined;
    return e;
  }

  /** Stores `answer` for this query; false if the query is not cacheable. */
  set(buf: Buffer, tcp: boolean, answer: CachedAnswer): boolean {
    if (!this.locate(buf, tcp)) return false;
    if (this.entries.size >= this.maxEntries) this.entries = new Map();
    const stored = Buffer.from(answer.buf);
    stored[2] &= ~0x01; // RD is patched in per query
    const question = Buffer.from(buf.subarray(4, this.qend));
    this.entries.set(this.hash, new Entry(stored, answer.expires, answer.rcode, answer.qtype, answer.dep, question, tcp, this.edns));
    return true;
  }

  clear(): void {
    this.entries = new Map();
  }

  /** Keeps only the entries whose `dep` is set and not in `changed` (after a zone swap). */
  retain(changed: ReadonlySet<string>): void {
    for (const [k, e] of this.entries) if (e.dep === undefined || changed.has(e.dep)) this.entries.delete(k);
  }

  /** The hash key of a query, or undefined when it is not cacheable (exported for tests). */
  key(buf: Buffer, tcp: boolean): number | undefined {
    return this.locate(buf, tcp) ? this.hash : undefined;
  }

  /**
   * Checks that `buf` is a plain query and sets hash, qend and edns. The hash is FNV-1a over the
   * header counts and the question bytes, then the transport and EDNS tuple, cut to 30 bits so
   * that V8 keeps it a small integer.
   */
  private locate(buf: Buffer, tcp: boolean): boolean {
    const len = buf.length;
    if (len < 17 || buf[2] & 0xf8 || buf[4] !== 0 || buf[5] !== 1 || buf[6] | buf[7] | buf[8] | buf[9] | buf[10]) return false;
    let p = 12;
    while (p < len && buf[p] !== 0) {
      if (buf[p] > 63) return false;
      p += buf[p] + 1;
    }
    const qend = p + 5;
    if (qend > len) return false;
    let edns = NO_EDNS;
    if (buf[11] === 0) {
      if (qend !== len) return false;
    } else {
      // OPT: root name (1), type (2), UDP size (2), ext-rcode (1), version (1), flags (2), rdlen (2)
      if (buf[11] !== 1 || qend + 11 > len || buf[qend] !== 0 || buf[qend + 1] !== 0 || buf[qend + 2] !== 41) return false;
      edns = (buf[qend + 3] << 16) | (buf[qend + 4] << 8) | buf[qend + 6];
    }
    let h = 0x811c9dc5;
    for (let i = 4; i < qend; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    h = Math.imul(h ^ (tcp ? 1 : 0), 0x01000193);
    h = Math.imul(h ^ edns, 0x01000193);
    this.hash = (h ^ (h >>> 15)) & 0x3fffffff;
    this.qend = qend;
    this.edns = edns;
    return true;
  }
}

/** A copy of a cached answer carrying the query's ID and RD bit. */
export function reply(answer: CachedAnswer, query: Buffer): Buffer {
  const out = Buffer.allocUnsafe(answer.buf.length);
  answer.buf.copy(out);
  out[0] = query[0];
  out[1] = query[1];
  out[2] |= query[2] & 0x01;
  return out;
}

function sameBytes(buf: Buffer, start: number, end: number, other: Buffer): boolean {
  if (end - start !== other.length) return false;
  for (let i = 0; i < other.length; i++) if (buf[start + i] !== other[i]) return false;
  return true;
}
