import t from 'tap';
import { PacketCache, reply } from './packet-cache.js';
import { encodeQuery, nameFromString, T } from './wire.js';

const q = (name: string, opts: { id?: number; rd?: boolean; udpSize?: number } = {}) => encodeQuery(opts.id ?? 1, { name: nameFromString(name), type: T.A, class: 1 }, opts);
/** a fake answer: the query's header and question, marked so tests can tell answers apart */
const answer = (query: Buffer, mark: number) => Buffer.concat([query, Buffer.from([mark])]);

t.test('a hit carries the query ID and RD bit over the stored answer', async (t) => {
  const c = new PacketCache();
  const first = q('web.default.svc.cluster.local', { id: 7 });
  t.ok(c.set(first, false, { buf: answer(first, 1), expires: 0, rcode: 0, qtype: T.A }));
  const again = q('web.default.svc.cluster.local', { id: 0xbeef, rd: false });
  const hit = c.get(again, false);
  t.ok(hit, 'same question, other ID: hit');
  const out = reply(hit!, again);
  t.equal(out.readUInt16BE(0), 0xbeef);
  t.equal(out[2] & 1, 0, 'RD from this query');
  t.equal(out[out.length - 1], 1);
  t.equal(reply(hit!, first)[2] & 1, 1, 'RD set again for a query with RD');
  t.not(out, hit!.buf, 'a copy: the stored answer is never handed out');
});

t.test('what splits the cache and what is never cached', async (t) => {
  const c = new PacketCache();
  const base = q('web.default.svc.cluster.local', { udpSize: 1232 });
  c.set(base, false, { buf: answer(base, 1), expires: 0, rcode: 0, qtype: T.A });
  t.equal(c.get(base, true), undefined, 'TCP does not get the UDP answer');
  t.equal(c.get(q('web.default.svc.cluster.local', { udpSize: 4096 }), false), undefined, 'another EDNS size');
  t.equal(c.get(q('web.default.svc.cluster.local'), false), undefined, 'no EDNS');
  t.equal(c.get(q('WEB.default.svc.cluster.local', { udpSize: 1232 }), false), undefined, 'case kept');
  const bad = Buffer.from(base);
  bad[2] |= 0x80; // QR: a response
  t.equal(c.set(bad, false, { buf: answer(bad, 2), expires: 0, rcode: 0, qtype: T.A }), false, 'responses are not cacheable');
  t.equal(c.key(Buffer.concat([q('a.b'), Buffer.from([0])]), false), undefined, 'trailing bytes');
});

t.test('hash collisions never serve another question', async (t) => {
  const c = new PacketCache();
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair && i < 1_000_000; i++) {
    const name = `s${i}.bench.svc.cluster.local`;
    const k = c.key(q(name), false)!;
    const other = seen.get(k);
    if (other) pair = [other, name];
    else seen.set(k, name);
  }
  t.ok(pair, 'found two names with the same 30-bit key');
  const [a, b] = pair!;
  c.set(q(a), false, { buf: answer(q(a), 1), expires: 0, rcode: 0, qtype: T.A });
  t.equal(c.get(q(b), false), undefined, `${b} misses although it hashes like ${a}`);
  t.ok(c.get(q(a), false));
});

t.test('expiry, size cap and retain after a zone swap', async (t) => {
  const c = new PacketCache(3);
  const names = ['a.x.svc.cluster.local', 'b.x.svc.cluster.local', 'fwd.example'];
  c.set(q(names[0]), false, { buf: answer(q(names[0]), 1), expires: 0, rcode: 0, qtype: T.A, dep: 'x/a' });
  c.set(q(names[1]), false, { buf: answer(q(names[1]), 2), expires: 0, rcode: 0, qtype: T.A, dep: 'x/b' });
  c.set(q(names[2]), false, { buf: answer(q(names[2]), 3), expires: 1000, rcode: 0, qtype: T.A });
  t.ok(c.get(q(names[2]), false, () => 999), 'before its deadline');
  t.equal(c.get(q(names[2]), false, () => 1001), undefined, 'after its deadline');
  c.retain(new Set(['x/b']));
  t.ok(c.get(q(names[0]), false), 'unchanged Service: kept');
  t.equal(c.get(q(names[1]), false), undefined, 'changed Service: dropped');
  t.equal(c.get(q(names[2]), false, () => 0), undefined, 'no dependency recorded: dropped');
  for (const n of ['c', 'd', 'e']) c.set(q(`${n}.x`), false, { buf: answer(q(`${n}.x`), 4), expires: 0, rcode: 0, qtype: T.A });
  t.ok(c.size <= 3, `size stays within the cap (${c.size})`);
});
