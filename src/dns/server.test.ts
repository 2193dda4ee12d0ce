import t from 'tap';
import dgram from 'node:dgram';
import { DnsServer, packetKey } from './server.js';
import { ClusterZone, type ZoneConfig } from './records.js';
import { buildSnapshot, emptySnapshot } from './model.js';
import { encodeQuery, FLAG, nameFromString, parseMessage, RCODE, T } from './wire.js';
import { clusterIP, fixture } from '../../test/integration/dns/fixture.js';

const cfg: ZoneConfig = { clusterDomain: 'cluster.local', ttl: 5, pods: 'insecure', reverseFallthrough: false, nsAddresses: [] };
const zone = () => new ClusterZone(buildSnapshot({ ...fixture(), synced: true }), cfg);
const web = nameFromString('web.default.svc.cluster.local');

t.test('answers through handle(): flags, packet cache with the query ID and RD', async (t) => {
  const s = new DnsServer({ zone: zone() });
  t.teardown(() => s.close());
  const a = parseMessage((await s.handle(encodeQuery(11, { name: web, type: T.A, class: 1 }), false))!);
  t.equal(a.id, 11);
  t.equal(a.flags & (FLAG.QR | FLAG.AA | FLAG.RD | FLAG.RA), FLAG.QR | FLAG.AA | FLAG.RD, 'QR AA RD, no RA');
  const q2 = encodeQuery(12, { name: web, type: T.A, class: 1 }, { rd: false });
  const b = parseMessage((await s.handle(q2, false))!);
  t.equal(b.id, 12);
  t.equal(b.flags & FLAG.RD, 0, 'RD copied from this query, not the cached one');
  t.same(b.answer.map((r) => r.data), [{ kind: 'addr', address: '10.96.0.50' }]);
});

t.test('zone swap drops precomputed answers', async (t) => {
  const s = new DnsServer({ zone: zone() });
  t.teardown(() => s.close());
  const q = encodeQuery(1, { name: web, type: T.A, class: 1 });
  t.equal(parseMessage((await s.handle(q, false))!).rcode, RCODE.NOERROR);
  s.setZone(new ClusterZone(buildSnapshot({ namespaces: fixture().namespaces, services: [], slices: [], synced: true }), cfg));
  t.equal(parseMessage((await s.handle(q, false))!).rcode, RCODE.NXDOMAIN);
});

/** One query over UDP on loopback; resolves with the parsed answer. */
async function udpAsk(port: number, name: string) {
  const c = dgram.createSocket('udp4');
  try {
    const got = new Promise<Buffer>((resolve) => c.once('message', resolve));
    c.send(encodeQuery(1, { name: nameFromString(name), type: T.A, class: 1 }), port, '127.0.0.1');
    return parseMessage(await got);
  } finally {
    c.close();
  }
}

t.test('zone swap keeps the precomputed answers of unchanged Services only', async (t) => {
  let hits = 0;
  const s = new DnsServer({ zone: zone(), statsSink: (b) => (hits += b.packetHits) });
  await s.listen([{ address: '127.0.0.1', port: 0 }]);
  const ask = async (name: string) => (await udpAsk(s.port(), name)).answer.map((r) => r.data);
  await ask('web.default.svc.cluster.local');
  await ask('dual.default.svc.cluster.local');
  const f = fixture();
  f.services = f.services.map((x) => (x.metadata?.name === 'web' ? clusterIP('default', 'web', ['10.96.0.51'], [{ name: 'http', protocol: 'TCP', port: 80 }]) : x));
  s.setZone(new ClusterZone(buildSnapshot({ ...f, synced: true }), cfg));
  t.same(await ask('web.default.svc.cluster.local'), [{ kind: 'addr', address: '10.96.0.51' }], 'the changed Service answers anew');
  t.same(await ask('dual.default.svc.cluster.local'), [{ kind: 'addr', address: '10.96.0.60' }]);
  await s.close();
  t.equal(hits, 1, 'only the unchanged Service came from the packet cache');
});

t.test('refusals and errors', async (t) => {
  const s = new DnsServer({ zone: zone() });
  t.teardown(() => s.close());
  const ask = async (buf: Buffer) => parseMessage((await s.handle(buf, false))!);
  t.equal((await ask(encodeQuery(1, { name: nameFromString('cluster.local'), type: T.AXFR, class: 1 }))).rcode, RCODE.REFUSED, 'AXFR refused (J12)');
  t.equal((await ask(encodeQuery(1, { name: nameFromString('version.bind'), type: T.TXT, class: 3 }))).rcode, RCODE.REFUSED, 'CHAOS refused');
  t.equal((await ask(encodeQuery(1, { name: nameFromString('example.com'), type: T.A, class: 1 }))).rcode, RCODE.REFUSED, 'no upstreams: no recursion');
  const bad = encodeQuery(9, { name: web, type: T.A, class: 1 });
  bad.writeUInt16BE(2, 4); // qdcount 2
  t.match(await ask(bad), { id: 9, rcode: RCODE.FORMERR });
  t.equal(await s.handle(Buffer.from([1, 2, 3]), false), undefined, 'shorter than a header: dropped');
  const notSynced = new DnsServer({ zone: new ClusterZone(emptySnapshot(false), cfg) });
  t.teardown(() => notSynced.close());
  t.equal(parseMessage((await notSynced.handle(encodeQuery(1, { name: web, type: T.A, class: 1 }), false))!).rcode, RCODE.SERVFAIL, 'not synced: SERVFAIL (J11)');
});

t.test('fuzz: mangled queries always get a parseable answer or are dropped', async (t) => {
  const s = new DnsServer({ zone: zone() });
  t.teardown(() => s.close());
  const seeds = [web, nameFromString('_http._tcp.web.default.svc.cluster.local'), nameFromString('50.0.96.10.in-addr.arpa')].map((n) => encodeQuery(5, { name: n, type: T.SRV, class: 1 }, { udpSize: 4096 }));
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  let answered = 0;
  let oversize = 0;
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(seeds[i % seeds.length]);
    for (let k = 0; k < 1 + (rnd() % 5); k++) b[12 + (rnd() % (b.length - 12))] = rnd() & 0xff;
    const out = await s.handle(i % 5 === 0 ? b.subarray(0, 12 + (rnd() % (b.length - 12))) : b, false);
    if (!out) continue;
    parseMessage(out);
    if (out.length > 4096) oversize++;
    answered++;
  }
  t.ok(answered > 0, `${answered} answers, all parseable`);
  t.equal(oversize, 0, 'every UDP answer within the advertised size');
});

t.test('packet cache key: EDNS options ignored, size and transport kept, odd packets never cached', async (t) => {
  const q = (udpSize?: number) => encodeQuery(1, { name: web, type: T.A, class: 1 }, { udpSize });
  const withCookie = (udpSize: number, cookie: number) => {
    const b = q(udpSize);
    const opt = Buffer.from([0, 10, 0, 8, 0, 0, 0, 0, 0, 0, 0, cookie]); // COOKIE option, 8-byte client cookie
    const out = Buffer.concat([b, opt]);
    out.writeUInt16BE(opt.length, b.length - 2);
    return out;
  };
  t.equal(packetKey(withCookie(1232, 1), 'u'), packetKey(withCookie(1232, 2), 'u'), 'client cookies do not split the cache');
  t.not(packetKey(q(1232), 'u'), packetKey(q(4096), 'u'), 'UDP size is part of the key');
  t.not(packetKey(q(), 'u'), packetKey(q(), 't'), 'transport is part of the key');
  t.not(packetKey(q(), 'u'), packetKey(encodeQuery(1, { name: nameFromString('WEB.default.svc.cluster.local'), type: T.A, class: 1 }), 'u'), 'case is part of the key');
  const ptr = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  t.equal(packetKey(ptr, 'u'), undefined, 'compressed question: no fast path');
  const trailing = Buffer.concat([q(), Buffer.from([1, 2, 3])]);
  t.equal(packetKey(trailing, 'u'), undefined, 'trailing bytes: no fast path');
  const s = new DnsServer({ zone: zone() });
  t.teardown(() => s.close());
  const a = parseMessage((await s.handle(withCookie(1232, 1), false))!);
  const b = parseMessage((await s.handle(withCookie(1232, 2), false))!);
  t.same(b.answer, a.answer, 'same answer for both cookies');
});
