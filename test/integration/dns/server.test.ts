/**
 * The running server, queried with dig over UDP and TCP on loopback: every record form, NXDOMAIN
 * vs NODATA, truncation and TCP fallback, ExternalName through a loopback upstream, forwarding
 * and its cache, live updates, rate limits and garbage packets.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { FakeApiClient } from '../../../src/client/fake.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import { startDns } from '../../../src/dns/index.js';
import { encodeQuery } from '../../../src/dns/wire.js';
import { fixture, clusterIP, slice } from './fixture.js';
import { startUpstream } from './upstream.js';
import { dig } from './dig.js';

const Z = 'svc.cluster.local.';

function seeded(): FakeApiClient {
  const client = new FakeApiClient();
  const f = fixture();
  for (const o of f.namespaces) client.seed(R.namespaces, o as KubeObject);
  for (const o of f.services) client.seed(R.services, o as KubeObject);
  for (const o of f.slices) client.seed(R.endpointslices, o as KubeObject);
  return client;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('cluster DNS over dig', async (t) => {
  const upstream = await startUpstream('127.0.0.2');
  t.teardown(() => upstream.close());
  const client = seeded();
  const dns = await startDns({ client, listen: [{ address: '127.0.0.3', port: 0 }], upstreams: [`${upstream.address}:${upstream.port}`], rateLimit: { qps: 0, burst: 0 }, reverseFallthrough: false });
  t.teardown(() => dns.stop());
  const srv = { address: '127.0.0.3', port: dns.port() };
  const q = (name: string, type: string, extra: string[] = []) => dig(srv, name, type, extra);
  const ready = await until(() => q(`web.default.${Z}`, 'A'), (r) => r.status === 'NOERROR');
  t.equal(ready.status, 'NOERROR', 'server synced');

  for (const transport of [[], ['+tcp']]) {
    const label = transport.length ? 'tcp' : 'udp';
    t.test(`record forms over ${label}`, async (t) => {
      const expect = async (name: string, type: string, status: string, answer: string[] | undefined, extra: { ar?: string[]; soa?: boolean } = {}) => {
        const r = await q(name, type, transport);
        t.equal(r.status, status, `${name} ${type} status`);
        if (answer) t.same([...r.answer].sort(), [...answer].sort(), `${name} ${type} answer`);
        if (extra.ar) t.same([...r.additional].sort(), [...extra.ar].sort(), `${name} ${type} additional`);
        if (extra.soa) t.match(r.authority, [/ SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5$/], `${name} ${type} SOA in authority`);
        if (r.status !== 'SERVFAIL' && !name.includes('example')) t.ok(r.flags.includes('aa'), `${name} ${type} AA set`);
        t.notOk(r.flags.includes('tc'), `${name} ${type} not truncated`);
        return r;
      };
      await expect('dns-version.cluster.local.', 'TXT', 'NOERROR', ['dns-version.cluster.local. 28800 TXT "1.1.0"']);
      await expect(`web.default.${Z}`, 'A', 'NOERROR', [`web.default.${Z} 5 A 10.96.0.50`]);
      await expect('WEB.Default.SVC.cluster.local.', 'A', 'NOERROR', ['WEB.Default.SVC.cluster.local. 5 A 10.96.0.50']);
      await expect(`web.default.${Z}`, 'AAAA', 'NOERROR', [], { soa: true });
      await expect(`dual.default.${Z}`, 'AAAA', 'NOERROR', [`dual.default.${Z} 5 AAAA fd00:10:96::60`]);
      await expect(`nosuch.default.${Z}`, 'A', 'NXDOMAIN', [], { soa: true });
      await expect(`web.staging.${Z}`, 'A', 'NXDOMAIN', [], { soa: true });
      await expect(`_http._tcp.web.default.${Z}`, 'SRV', 'NOERROR', [`_http._tcp.web.default.${Z} 5 SRV 0 100 80 web.default.${Z}`], { ar: [`web.default.${Z} 5 A 10.96.0.50`] });
      await expect(`_dns._tcp.web.default.${Z}`, 'SRV', 'NXDOMAIN', [], { soa: true });
      await expect(`db.prod.${Z}`, 'A', 'NOERROR', [`db.prod.${Z} 5 A 10.244.1.20`, `db.prod.${Z} 5 A 10.244.2.21`]);
      await expect(`db-0.db.prod.${Z}`, 'A', 'NOERROR', [`db-0.db.prod.${Z} 5 A 10.244.1.20`]);
      await expect(`db-2.db.prod.${Z}`, 'A', 'NXDOMAIN', [], { soa: true });
      await expect(`cache.prod.${Z}`, 'A', 'NXDOMAIN', [], { soa: true });
      await expect(`_postgres._tcp.db.prod.${Z}`, 'SRV', 'NOERROR', [`_postgres._tcp.db.prod.${Z} 5 SRV 0 50 5432 db-0.db.prod.${Z}`, `_postgres._tcp.db.prod.${Z} 5 SRV 0 50 5432 db-1.db.prod.${Z}`], {
        ar: [`db-0.db.prod.${Z} 5 A 10.244.1.20`, `db-1.db.prod.${Z} 5 A 10.244.2.21`],
      });
      await expect('50.0.96.10.in-addr.arpa.', 'PTR', 'NOERROR', [`50.0.96.10.in-addr.arpa. 5 PTR web.default.${Z}`]);
      await expect('20.1.244.10.in-addr.arpa.', 'PTR', 'NOERROR', [`20.1.244.10.in-addr.arpa. 5 PTR 10-244-1-20.db-reader.prod.${Z}`, `20.1.244.10.in-addr.arpa. 5 PTR db-0.db.prod.${Z}`]);
      await expect('0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.', 'PTR', 'NOERROR', [`0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 PTR dual.default.${Z}`]);
      await expect('22.3.244.10.in-addr.arpa.', 'PTR', 'NXDOMAIN', []);
      await expect(`ext.default.${Z}`, 'CNAME', 'NOERROR', [`ext.default.${Z} 5 CNAME api.example.com.`]);
      const ext = await expect(`ext.default.${Z}`, 'A', 'NOERROR', undefined);
      t.equal(ext.answer.length, 2);
      t.equal(ext.answer[0], `ext.default.${Z} 5 CNAME api.example.com.`, 'ExternalName: CNAME first');
      t.match(ext.answer[1], /^api\.example\.com\. (\d+) A 192\.0\.2\.10$/, 'then the upstream A');
      t.ok(Number(ext.answer[1].split(' ')[1]) <= 30, 'upstream TTL capped by the forward cache (30 s)');
      const internal = await expect(`ext-internal.default.${Z}`, 'A', 'NOERROR', undefined);
      t.same(internal.answer, [`ext-internal.default.${Z} 5 CNAME web.default.${Z}`, `web.default.${Z} 5 A 10.96.0.50`], 'in-zone ExternalName chased');
      await expect('10-244-1-5.default.pod.cluster.local.', 'A', 'NOERROR', ['10-244-1-5.default.pod.cluster.local. 5 A 10.244.1.5']);
    });
  }

  t.test('pod search path, ndots 5 (L): wrong candidates are NXDOMAIN, the right one answers', async (t) => {
    const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];
    const resolve = async (typed: string) => {
      const statuses: string[] = [];
      const candidates = [...search.map((s) => `${typed}.${s}.`), `${typed}.`];
      for (const c of candidates) {
        const r = await q(c, 'A');
        statuses.push(r.status);
        if (r.status === 'NOERROR' && r.answer.length) return { statuses, answer: r.answer.map((l) => l.split(' ')[3]).sort() };
      }
      return { statuses, answer: [] };
    };
    t.same(await resolve('web'), { statuses: ['NOERROR'], answer: ['10.96.0.50'] });
    t.same(await resolve('kubernetes.default'), { statuses: ['NXDOMAIN', 'NOERROR'], answer: ['10.96.0.1'] });
    t.same(await resolve('db.prod'), { statuses: ['NXDOMAIN', 'NOERROR'], answer: ['10.244.1.20', '10.244.2.21'] });
    t.same(await resolve('db.prod.svc'), { statuses: ['NXDOMAIN', 'NXDOMAIN', 'NOERROR'], answer: ['10.244.1.20', '10.244.2.21'] });
    t.same(await resolve('example.com'), { statuses: ['NXDOMAIN', 'NXDOMAIN', 'NXDOMAIN', 'NOERROR'], answer: ['192.0.2.1'] });
    t.same((await resolve('data')).statuses, ['NXDOMAIN', 'NXDOMAIN', 'NXDOMAIN', 'NXDOMAIN'], 'a name in no namespace fails everywhere');
    const aaaa = await q(`ext.default.${Z}`, 'AAAA');
    t.same(aaaa.answer, [`ext.default.${Z} 5 CNAME api.example.com.`], 'H3: upstream has no AAAA, only the CNAME');
    t.equal(aaaa.status, 'NOERROR');
  });

  t.test('truncation and TCP fallback (N1-N3)', async (t) => {
    const udp = await q(`big.default.${Z}`, 'A', ['+noedns', '+ignore']);
    t.ok(udp.flags.includes('tc'), 'TC over UDP without EDNS');
    t.equal(udp.answer.length, 29, '29 compressed A RRs fit in 512 bytes');
    const tcp = await q(`big.default.${Z}`, 'A', ['+tcp']);
    t.notOk(tcp.flags.includes('tc'));
    t.equal(tcp.answer.length, 40, 'all 40 over TCP');
    const edns = await q(`big.default.${Z}`, 'A', ['+bufsize=1232', '+ignore']);
    t.notOk(edns.flags.includes('tc'));
    t.equal(edns.answer.length, 40, 'all 40 with EDNS 1232');
    t.match(edns.raw, /; EDNS: version: 0, flags:; udp: 1232/, 'OPT in the response');
    const fallback = await q(`big.default.${Z}`, 'A', ['+noedns']);
    t.equal(fallback.answer.length, 40, 'dig retries over TCP on TC and gets everything');
  });

  t.test('forwarding (M1, M2, M7) and its cache', async (t) => {
    const r1 = await q('example.com.', 'A');
    const before = upstream.asked.filter((a) => a.startsWith('example.com|')).length;
    t.ok(before >= 1, 'example.com was asked upstream');
    t.equal(r1.status, 'NOERROR');
    t.equal(r1.answer.length, 1);
    const [, ttl, , addr] = r1.answer[0].split(' ');
    t.equal(addr, '192.0.2.1');
    t.ok(Number(ttl) >= 1 && Number(ttl) <= 30, `upstream TTL 60 capped to <= 30 by the cache (${ttl})`);
    t.ok(r1.flags.includes('ra'), 'upstream flags relayed');
    const r2 = await q('EXAMPLE.com.', 'A');
    t.same(r2.answer.map((l) => l.split(' ')[3]), ['192.0.2.1']);
    t.equal(upstream.asked.filter((a) => a.startsWith('example.com|')).length, before, 'second query (other case) served from cache');
    const nx = await q('doesnotexist.example.', 'A');
    t.equal(nx.status, 'NXDOMAIN');
    t.notOk(nx.flags.includes('aa'), 'upstream NXDOMAIN is not authoritative');
    t.equal((await q('kubernetes.default.', 'A')).status, 'NXDOMAIN', 'a bare kubernetes.default goes upstream');
    t.equal((await q(`nosuch.default.${Z}`, 'A')).status, 'NXDOMAIN');
    t.notOk(upstream.asked.some((a) => a.includes('cluster.local')), 'cluster names are never forwarded');
  });

  t.test('upstream answer larger than the client limit (H11/N6)', async (t) => {
    const udp = await q('big.example.com.', 'A', ['+noedns', '+ignore']);
    t.ok(udp.flags.includes('tc'), 'TC for the UDP client');
    const tcp = await q('big.example.com.', 'A', ['+tcp']);
    t.equal(tcp.answer.length, 100, 'full upstream answer over TCP (fetched from upstream over TCP)');
  });

  t.test('changes appear without restart (polled, 3 s deadline)', async (t) => {
    await client.create(R.services, clusterIP('default', 'late', ['10.96.0.77'], [{ name: 'http', protocol: 'TCP', port: 80 }]) as KubeObject);
    const started = Date.now();
    const r = await until(() => q(`late.default.${Z}`, 'A'), (x) => x.status === 'NOERROR', 3000);
    t.same(r.answer, [`late.default.${Z} 5 A 10.96.0.77`]);
    t.comment(`new Service served after ${Date.now() - started} ms (target: 1 s; not asserted, the machine is shared)`);
    await client.create(R.endpointslices, slice('prod', 'cache', [{ ip: '10.244.3.31' }], [{ name: 'redis', port: 6379 }], 'b') as KubeObject);
    const c = await until(() => q(`cache.prod.${Z}`, 'A'), (x) => x.status === 'NOERROR', 3000);
    t.same(c.answer, [`cache.prod.${Z} 5 A 10.244.3.31`], 'headless service gains a ready endpoint');
    await client.delete(R.services, 'late', 'default');
    const gone = await until(() => q(`late.default.${Z}`, 'A'), (x) => x.status === 'NXDOMAIN', 3000);
    t.equal(gone.status, 'NXDOMAIN', 'deleted service disappears');
  });

  t.test('garbage packets never crash it', async (t) => {
    const sock = dgram.createSocket('udp4');
    t.teardown(() => sock.close());
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    const good = encodeQuery(0x1234, { name: ['web', 'default', 'svc', 'cluster', 'local'], type: 1, class: 1 });
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(good);
      for (let k = 0; k < 1 + (rnd() % 4); k++) b[rnd() % b.length] = rnd() & 0xff;
      sock.send(i % 3 === 0 ? b.subarray(0, rnd() % b.length) : b, srv.port, srv.address);
    }
    sock.send(Buffer.alloc(0), srv.port, srv.address);
    await until(async () => replies.length, (n) => n > 0, 2000);
    t.ok(replies.length > 0, `FORMERR/answers came back for mangled packets (${replies.length})`);
    const r = await q(`web.default.${Z}`, 'A');
    t.equal(r.status, 'NOERROR', 'still answering after 300 mangled packets');
  });
});

t.test('rate limit, SERVFAIL on dead upstream, SERVFAIL before sync', async (t) => {
  const client = seeded();
  const dns = await startDns({ client, listen: [{ address: '127.0.0.4', port: 0 }], upstreams: ['127.0.0.5:9'], rateLimit: { qps: 1, burst: 3 }, forwardTimeoutMs: 200 });
  t.teardown(() => dns.stop());
  const srv = { address: '127.0.0.4', port: dns.port() };
  const first = await until(() => dig(srv, 'example.com.', 'A'), (r) => r.status !== 'NONE', 3000);
  t.equal(first.status, 'SERVFAIL', 'no upstream answers: SERVFAIL (M5)');
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  let replies = 0;
  sock.on('message', () => replies++);
  const query = encodeQuery(7, { name: ['web', 'default', 'svc', 'cluster', 'local'], type: 1, class: 1 });
  for (let i = 0; i < 20; i++) sock.send(query, srv.port, srv.address);
  await until(async () => replies, (n) => n >= 1, 2000);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(replies >= 1 && replies <= 4, `per-client limit: ${replies} of 20 answered`);
});

t.test('workers: a forked process shares the UDP socket and follows every snapshot', async (t) => {
  const client = seeded();
  const dns = await startDns({ client, listen: [{ address: '127.0.0.6', port: 0 }], upstreams: [], rateLimit: { qps: 0, burst: 0 }, workers: 2 });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : dns.stop()));
  const srv = { address: '127.0.0.6', port: dns.port() };
  const { execFileSync } = await import('node:child_process');
  const children = () => execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).toString().split('\n').filter((l) => /dns\/worker\.(ts|js)/.test(l));
  t.equal(children().length, 1, 'one worker process besides this one');
  const ready = await until(() => dig(srv, `web.default.${Z}`, 'A'), (r) => r.status === 'NOERROR');
  t.equal(ready.status, 'NOERROR');
  await client.update(R.services, { ...clusterIP('default', 'web', ['10.96.0.51'], [{ name: 'http', protocol: 'TCP', port: 80 }]) } as KubeObject);
  // Raw UDP queries from many source ports: the kernel hands them to both processes.
  const sock = dgram.createSocket('udp4');
  t.teardown(() => sock.close());
  const answers = new Map<number, string>();
  sock.on('message', (m) => answers.set(m.readUInt16BE(0), m.subarray(m.length - 4).join('.')));
  const ask = async () => {
    answers.clear();
    for (let i = 0; i < 200; i++) sock.send(encodeQuery(i, { name: ['web', 'default', 'svc', 'cluster', 'local'], type: 1, class: 1 }), srv.port, srv.address);
    await until(async () => answers.size, (n) => n === 200, 3000);
    return [...answers.values()];
  };
  const after = await until(ask, (vals) => vals.length === 200 && vals.every((v) => v === '10.96.0.51'), 3000);
  t.equal(after.length, 200, 'every query answered');
  t.same([...new Set(after)], ['10.96.0.51'], 'no process serves the old ClusterIP');
  // A worker that dies is replaced and starts from the current snapshot.
  const [pid] = children()[0].trim().split(/\s+/);
  process.kill(Number(pid), 'SIGKILL');
  const respawned = await until(async () => children().map((l) => l.trim().split(/\s+/)[0]), (pids) => pids.length === 1 && pids[0] !== pid, 60_000);
  t.ok(respawned.length === 1 && respawned[0] !== pid, 'a new worker replaced the killed one');
  const again = await until(ask, (vals) => vals.length === 200 && vals.every((v) => v === '10.96.0.51'), 3000);
  t.same([...new Set(again)], ['10.96.0.51'], 'the new worker serves the current snapshot');
  await dns.stop();
  stopped = true;
  t.equal(children().length, 0, 'worker gone after stop()');
  const busy = await startDns({ client, listen: [{ address: '127.0.0.6', port: srv.port }], upstreams: [] }).then(
    (d) => d.stop().then(() => 'started'),
    (err: { code?: string }) => err.code,
  );
  t.equal(busy, 'started', 'the port is free again after stop()');
});
