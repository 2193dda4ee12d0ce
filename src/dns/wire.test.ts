import t from 'tap';
import { encodeMessage, encodeQuery, FLAG, formatV6, ipv6Bytes, nameFromString, parseMessage, parseQuery, RCODE, readName, rrToString, T, type RR } from './wire.js';

const name = nameFromString('big.default.svc.cluster.local');

t.test('query round trip, EDNS and case kept', async (t) => {
  const buf = encodeQuery(0xbeef, { name: nameFromString('WeB.default.svc.cluster.local'), type: T.SRV, class: 1 }, { udpSize: 1232 });
  const r = parseQuery(buf);
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.query.id, 0xbeef);
  t.ok(r.query.rd);
  t.same(r.query.question, { name: ['WeB', 'default', 'svc', 'cluster', 'local'], type: T.SRV, class: 1 });
  t.same(r.query.edns, { udpSize: 1232, version: 0 });
});

t.test('malformed queries are FORMERR / NOTIMP, never throw', async (t) => {
  const good = encodeQuery(1, { name, type: T.A, class: 1 });
  t.same(parseQuery(Buffer.alloc(3)), { ok: false, id: 0, rcode: RCODE.FORMERR, flags: 0 });
  const resp = Buffer.from(good);
  resp[2] |= 0x80;
  t.equal(parseQuery(resp).ok, false, 'a response is not a query');
  const op = Buffer.from(good);
  op[2] |= 0x10; // opcode 2 (STATUS)
  t.match(parseQuery(op), { ok: false, rcode: RCODE.NOTIMP });
  const loop = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  t.match(parseQuery(loop), { ok: false, rcode: RCODE.FORMERR }, 'self-pointer');
  t.throws(() => readName(Buffer.from([5, 97, 98]), 0), 'label past the end');
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 1 + (rnd() % 6); k++) b[rnd() % b.length] = rnd() & 0xff;
    const cut = i % 4 === 0 ? b.subarray(0, rnd() % b.length) : b;
    parseQuery(cut);
    try {
      parseMessage(cut);
    } catch {
      // parseMessage may throw; callers catch
    }
  }
  t.pass('20000 mangled packets parsed without an uncaught throw');
});

t.test('compression and truncation at 512 bytes (N1, N3)', async (t) => {
  const answer: RR[] = Array.from({ length: 40 }, (_, i) => ({ name, type: T.A, ttl: 5, data: { kind: 'addr', address: `10.244.9.${i + 1}` } }));
  const base = { id: 1, flags: FLAG.QR | FLAG.AA, rcode: 0, question: { name, type: T.A, class: 1 }, answer, authority: [], additional: [] };
  const small = encodeMessage({ ...base, limit: 512 });
  t.ok(small.truncated);
  t.ok(small.buf.length <= 512);
  const m = parseMessage(small.buf);
  t.equal(m.answer.length, 29, '47 + 29 x 16 = 511 bytes');
  t.ok(m.tc);
  const big = encodeMessage({ ...base, limit: 1232, ednsUdpSize: 1232 });
  t.notOk(big.truncated);
  const mb = parseMessage(big.buf);
  t.equal(mb.answer.length, 40);
  t.equal(mb.additional[0].type, T.OPT, 'OPT echoed');
  t.equal(big.buf.length, 47 + 640 + 11);
  const noAdd = encodeMessage({ ...base, answer: answer.slice(0, 29), additional: answer.slice(0, 5), limit: 512 });
  t.notOk(noAdd.truncated, 'dropping additional records does not set TC');
  t.equal(parseMessage(noAdd.buf).additional.length, 0);
});

t.test('every RDATA kind round-trips', async (t) => {
  const n = nameFromString('x.example');
  const rrs: RR[] = [
    { name: n, type: T.A, ttl: 1, data: { kind: 'addr', address: '192.0.2.1' } },
    { name: n, type: T.AAAA, ttl: 1, data: { kind: 'addr', address: 'fd00:10:96::60' } },
    { name: n, type: T.CNAME, ttl: 1, data: { kind: 'name', target: nameFromString('y.example') } },
    { name: n, type: T.SRV, ttl: 1, data: { kind: 'srv', priority: 0, weight: 50, port: 80, target: n } },
    { name: n, type: T.MX, ttl: 1, data: { kind: 'mx', preference: 10, target: n } },
    { name: n, type: T.TXT, ttl: 1, data: { kind: 'txt', text: ['1.1.0'] } },
    { name: n, type: T.SOA, ttl: 1, data: { kind: 'soa', mname: n, rname: n, serial: 9, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } },
    { name: n, type: 99, ttl: 1, data: { kind: 'raw', bytes: Buffer.from([1, 2, 3]) } },
  ];
  const { buf } = encodeMessage({ id: 2, flags: FLAG.QR, rcode: 0, answer: rrs, authority: [], additional: [], limit: 65535 });
  t.same(parseMessage(buf).answer.map(rrToString), rrs.map(rrToString));
});

t.test('IPv6 text forms', async (t) => {
  t.equal(formatV6(ipv6Bytes('fd00:10:244:1:0:0:0:5')!), 'fd00:10:244:1::5');
  t.equal(formatV6(ipv6Bytes('::1')!), '::1');
  t.equal(formatV6(ipv6Bytes('1:0:0:2:0:0:0:3')!), '1:0:0:2::3');
  t.equal(formatV6(ipv6Bytes('::ffff:1.2.3.4')!), '::ffff:102:304');
  t.equal(ipv6Bytes('nope'), undefined);
});
