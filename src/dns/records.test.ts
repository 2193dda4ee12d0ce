import t from 'tap';
import { buildSnapshot } from './model.js';
import { ClusterZone, endpointName, podLabelToIP, reverseToIP, type ZoneConfig } from './records.js';
import { nameFromString, RCODE, rrToString, T } from './wire.js';
import { fixture } from '../../test/integration/dns/fixture.js';

const base: ZoneConfig = { clusterDomain: 'cluster.local', ttl: 5, pods: 'insecure', reverseFallthrough: false, nsAddresses: ['127.0.0.1'] };

function zoneFor(opts: { pnr?: boolean; cfg?: Partial<ZoneConfig>; synced?: boolean } = {}) {
  const f = fixture({ publishNotReady: opts.pnr });
  return new ClusterZone(buildSnapshot({ ...f, synced: opts.synced ?? true, serial: 1 }), { ...base, ...opts.cfg });
}

type Case = {
  id: string;
  q: string;
  type: keyof typeof T;
  rcode?: keyof typeof RCODE;
  an?: string[];
  ar?: string[];
  /** owner of the SOA expected in the authority section (negative answers) */
  soa?: string;
  zone?: Parameters<typeof zoneFor>[0];
};

const Z = 'svc.cluster.local.';
const cases: Case[] = [
  { id: 'A1', q: 'dns-version.cluster.local', type: 'TXT', an: ['dns-version.cluster.local. 28800 TXT "1.1.0"'] },
  { id: 'A2', q: 'DNS-VERSION.Cluster.Local', type: 'TXT', an: ['DNS-VERSION.Cluster.Local. 28800 TXT "1.1.0"'] },
  { id: 'B1', q: `web.default.${Z}`, type: 'A', an: [`web.default.${Z} 5 A 10.96.0.50`] },
  { id: 'B2', q: `web.default.${Z}`, type: 'AAAA', an: [], soa: 'cluster.local.' },
  { id: 'B3', q: `dual.default.${Z}`, type: 'A', an: [`dual.default.${Z} 5 A 10.96.0.60`] },
  { id: 'B4', q: `dual.default.${Z}`, type: 'AAAA', an: [`dual.default.${Z} 5 AAAA fd00:10:96::60`] },
  { id: 'B5', q: `api6.prod.${Z}`, type: 'AAAA', an: [`api6.prod.${Z} 5 AAAA fd00:10:96::70`] },
  { id: 'B6', q: `api6.prod.${Z}`, type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'B7', q: `empty.default.${Z}`, type: 'A', an: [`empty.default.${Z} 5 A 10.96.0.80`] },
  { id: 'B8', q: `nosuch.default.${Z}`, type: 'A', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'B9', q: `nosuch.default.${Z}`, type: 'AAAA', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'B10', q: `web.staging.${Z}`, type: 'A', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'B11', q: `web.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'B12', q: 'WEB.Default.SVC.cluster.local', type: 'A', an: ['WEB.Default.SVC.cluster.local. 5 A 10.96.0.50'] },
  ...(['TXT', 'MX', 'CNAME', 'HINFO', 'SOA', 'NS', 'ANY'] as const).map((type) => ({ id: `B13-${type}`, q: `web.default.${Z}`, type, an: [], soa: 'cluster.local.' })),
  { id: 'B14', q: `kubernetes.default.${Z}`, type: 'A', an: [`kubernetes.default.${Z} 5 A 10.96.0.1`] },
  { id: 'B15', q: `kube-dns.kube-system.${Z}`, type: 'A', an: [`kube-dns.kube-system.${Z} 5 A 10.96.0.10`] },
  { id: 'B16', q: `10-244-1-10.web.default.${Z}`, type: 'A', an: [`10-244-1-10.web.default.${Z} 5 A 10.244.1.10`] },
  { id: 'B17a', q: 'svc.cluster.local', type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'B17b', q: `default.${Z}`, type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'B18', q: `staging.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'C1', q: `_http._tcp.web.default.${Z}`, type: 'SRV', an: [`_http._tcp.web.default.${Z} 5 SRV 0 100 80 web.default.${Z}`], ar: [`web.default.${Z} 5 A 10.96.0.50`] },
  { id: 'C2', q: `_dns._udp.web.default.${Z}`, type: 'SRV', an: [`_dns._udp.web.default.${Z} 5 SRV 0 100 53 web.default.${Z}`], ar: [`web.default.${Z} 5 A 10.96.0.50`] },
  { id: 'C3', q: `_dns._tcp.web.default.${Z}`, type: 'SRV', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'C4', q: `_https._tcp.web.default.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'C5', q: '_HTTP._TCP.web.default.svc.CLUSTER.local', type: 'SRV', an: ['_HTTP._TCP.web.default.svc.CLUSTER.local. 5 SRV 0 100 80 web.default.svc.CLUSTER.local.'], ar: ['web.default.svc.CLUSTER.local. 5 A 10.96.0.50'] },
  { id: 'C6', q: `web.default.${Z}`, type: 'SRV', an: [`web.default.${Z} 5 SRV 0 50 53 web.default.${Z}`, `web.default.${Z} 5 SRV 0 50 80 web.default.${Z}`], ar: [`web.default.${Z} 5 A 10.96.0.50`] },
  { id: 'C7', q: `_http._tcp.dual.default.${Z}`, type: 'SRV', an: [`_http._tcp.dual.default.${Z} 5 SRV 0 50 80 dual.default.${Z}`], ar: [`dual.default.${Z} 5 A 10.96.0.60`, `dual.default.${Z} 5 AAAA fd00:10:96::60`] },
  { id: 'C8', q: `_grpc._tcp.api6.prod.${Z}`, type: 'SRV', an: [`_grpc._tcp.api6.prod.${Z} 5 SRV 0 100 9090 api6.prod.${Z}`], ar: [`api6.prod.${Z} 5 AAAA fd00:10:96::70`] },
  { id: 'C9', q: `_http._tcp.legacy.default.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'C9b', q: `legacy.default.${Z}`, type: 'SRV', an: [`legacy.default.${Z} 5 SRV 0 100 8080 legacy.default.${Z}`], ar: [`legacy.default.${Z} 5 A 10.96.0.90`] },
  { id: 'C10', q: `_http._tcp.empty.default.${Z}`, type: 'SRV', an: [`_http._tcp.empty.default.${Z} 5 SRV 0 100 80 empty.default.${Z}`], ar: [`empty.default.${Z} 5 A 10.96.0.80`] },
  { id: 'D1', q: `db.prod.${Z}`, type: 'A', an: [`db.prod.${Z} 5 A 10.244.1.20`, `db.prod.${Z} 5 A 10.244.2.21`] },
  { id: 'D2', q: `db.prod.${Z}`, type: 'AAAA', an: [], soa: 'cluster.local.' },
  { id: 'D3', q: `db-0.db.prod.${Z}`, type: 'A', an: [`db-0.db.prod.${Z} 5 A 10.244.1.20`] },
  { id: 'D4', q: `db-1.db.prod.${Z}`, type: 'A', an: [`db-1.db.prod.${Z} 5 A 10.244.2.21`] },
  { id: 'D5', q: `db-2.db.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'D6', q: `nosuch.db.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'D7', q: `10-244-1-20.db.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'D8', q: `10-244-1-20.db-reader.prod.${Z}`, type: 'A', an: [`10-244-1-20.db-reader.prod.${Z} 5 A 10.244.1.20`] },
  { id: 'D9', q: `db-reader.prod.${Z}`, type: 'A', an: [`db-reader.prod.${Z} 5 A 10.244.1.20`, `db-reader.prod.${Z} 5 A 10.244.2.21`] },
  { id: 'D10', q: `db.prod.${Z}`, type: 'A', zone: { pnr: true }, an: [`db.prod.${Z} 5 A 10.244.1.20`, `db.prod.${Z} 5 A 10.244.2.21`, `db.prod.${Z} 5 A 10.244.3.22`] },
  { id: 'D11', q: `db-2.db.prod.${Z}`, type: 'A', zone: { pnr: true }, an: [`db-2.db.prod.${Z} 5 A 10.244.3.22`] },
  { id: 'D12', q: `cache.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN', soa: 'cluster.local.' },
  { id: 'D13', q: `cache.prod.${Z}`, type: 'AAAA', rcode: 'NXDOMAIN' },
  { id: 'D14', q: `dup-name.dups.prod.${Z}`, type: 'A', an: [`dup-name.dups.prod.${Z} 5 A 10.244.5.1`, `dup-name.dups.prod.${Z} 5 A 10.244.5.2`] },
  { id: 'D15', q: `hdls6.prod.${Z}`, type: 'AAAA', an: [`hdls6.prod.${Z} 5 AAAA 5678:abcd::1`, `hdls6.prod.${Z} 5 AAAA 5678:abcd::2`] },
  { id: 'D15b', q: `hdls6.prod.${Z}`, type: 'A', an: [`hdls6.prod.${Z} 5 A 10.244.4.1`] },
  { id: 'D15c', q: `5678-abcd--1.hdls6.prod.${Z}`, type: 'AAAA', an: [`5678-abcd--1.hdls6.prod.${Z} 5 AAAA 5678:abcd::1`] },
  { id: 'D16', q: `portless.prod.${Z}`, type: 'A', an: [`portless.prod.${Z} 5 A 172.0.0.20`] },
  { id: 'D16b', q: `portless.prod.${Z}`, type: 'SRV', an: [], soa: 'cluster.local.' },
  { id: 'E1', q: `_postgres._tcp.db.prod.${Z}`, type: 'SRV', an: [`_postgres._tcp.db.prod.${Z} 5 SRV 0 50 5432 db-0.db.prod.${Z}`, `_postgres._tcp.db.prod.${Z} 5 SRV 0 50 5432 db-1.db.prod.${Z}`], ar: [`db-0.db.prod.${Z} 5 A 10.244.1.20`, `db-1.db.prod.${Z} 5 A 10.244.2.21`] },
  { id: 'E2', q: `_postgres._tcp.db.prod.${Z}`, type: 'SRV', zone: { pnr: true }, an: [0, 1, 2].map((i) => `_postgres._tcp.db.prod.${Z} 5 SRV 0 33 5432 db-${i}.db.prod.${Z}`), ar: [`db-0.db.prod.${Z} 5 A 10.244.1.20`, `db-1.db.prod.${Z} 5 A 10.244.2.21`, `db-2.db.prod.${Z} 5 A 10.244.3.22`] },
  { id: 'E3', q: `_postgres._tcp.db-reader.prod.${Z}`, type: 'SRV', an: [`_postgres._tcp.db-reader.prod.${Z} 5 SRV 0 50 5432 10-244-1-20.db-reader.prod.${Z}`, `_postgres._tcp.db-reader.prod.${Z} 5 SRV 0 50 5432 10-244-2-21.db-reader.prod.${Z}`], ar: [`10-244-1-20.db-reader.prod.${Z} 5 A 10.244.1.20`, `10-244-2-21.db-reader.prod.${Z} 5 A 10.244.2.21`] },
  { id: 'E4', q: `_postgres._udp.db.prod.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'E5', q: `_redis._tcp.cache.prod.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'F1', q: '50.0.96.10.in-addr.arpa', type: 'PTR', an: [`50.0.96.10.in-addr.arpa. 5 PTR web.default.${Z}`] },
  { id: 'F2', q: '10.0.96.10.in-addr.arpa', type: 'PTR', an: [`10.0.96.10.in-addr.arpa. 5 PTR kube-dns.kube-system.${Z}`] },
  { id: 'F3', q: '60.0.96.10.in-addr.arpa', type: 'PTR', an: [`60.0.96.10.in-addr.arpa. 5 PTR dual.default.${Z}`] },
  { id: 'F4', q: '0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa', type: 'PTR', an: [`0.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 PTR dual.default.${Z}`] },
  { id: 'F5', q: '0.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa', type: 'PTR', an: [`0.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 PTR api6.prod.${Z}`] },
  { id: 'F6', q: '20.1.244.10.in-addr.arpa', type: 'PTR', an: [`20.1.244.10.in-addr.arpa. 5 PTR 10-244-1-20.db-reader.prod.${Z}`, `20.1.244.10.in-addr.arpa. 5 PTR db-0.db.prod.${Z}`] },
  { id: 'F7', q: '10.1.244.10.in-addr.arpa', type: 'PTR', an: [`10.1.244.10.in-addr.arpa. 5 PTR 10-244-1-10.web.default.${Z}`] },
  { id: 'F8', q: '22.3.244.10.in-addr.arpa', type: 'PTR', rcode: 'NXDOMAIN', soa: 'in-addr.arpa.' },
  { id: 'F8-pnr', q: '22.3.244.10.in-addr.arpa', type: 'PTR', zone: { pnr: true }, an: [`22.3.244.10.in-addr.arpa. 5 PTR db-2.db.prod.${Z}`] },
  { id: 'F9', q: '5.1.244.10.in-addr.arpa', type: 'PTR', rcode: 'NXDOMAIN', soa: 'in-addr.arpa.' },
  { id: 'F11', q: `web.default.${Z}`, type: 'PTR', an: [], soa: 'cluster.local.' },
  { id: 'F12', q: '100.0.0.10.cluster.local', type: 'PTR', rcode: 'NXDOMAIN' },
  { id: 'H1', q: `ext.default.${Z}`, type: 'CNAME', an: [`ext.default.${Z} 5 CNAME api.example.com.`] },
  { id: 'H5', q: `foo.ext.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'H6', q: `ext.default.${Z}`, type: 'SRV', an: [], soa: 'cluster.local.' },
  { id: 'H7', q: `_http._tcp.ext.default.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'H10', q: `ext-ip.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'I1', q: '10-244-1-5.default.pod.cluster.local', type: 'A', an: ['10-244-1-5.default.pod.cluster.local. 5 A 10.244.1.5'] },
  { id: 'I2', q: '1-2-3-4.default.pod.cluster.local', type: 'A', an: ['1-2-3-4.default.pod.cluster.local. 5 A 1.2.3.4'] },
  { id: 'I3', q: '10-244-1-5.prod.pod.cluster.local', type: 'A', an: ['10-244-1-5.prod.pod.cluster.local. 5 A 10.244.1.5'] },
  { id: 'I4', q: '10-244-1-5.staging.pod.cluster.local', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'I5', q: 'foo.default.pod.cluster.local', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'I6', q: '10-244-1-5.default.pod.cluster.local', type: 'AAAA', an: [], soa: 'cluster.local.' },
  { id: 'I7', q: 'fd00-10-244-1--5.default.pod.cluster.local', type: 'AAAA', an: ['fd00-10-244-1--5.default.pod.cluster.local. 5 AAAA fd00:10:244:1::5'] },
  { id: 'I8', q: 'default.pod.cluster.local', type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'I9', q: 'pod.cluster.local', type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'I10', q: '10-244-1-5.default.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'verified' } }, an: ['10-244-1-5.default.pod.cluster.local. 5 A 10.244.1.5'] },
  { id: 'I11', q: '10-244-1-5.prod.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'verified' } }, rcode: 'NXDOMAIN' },
  { id: 'I12', q: '1-2-3-4.default.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'verified' } }, rcode: 'NXDOMAIN' },
  { id: 'I13', q: 'staging.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'verified' } }, rcode: 'NXDOMAIN' },
  { id: 'I14a', q: '10-244-1-5.default.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'disabled' } }, rcode: 'NXDOMAIN' },
  { id: 'I14b', q: 'default.pod.cluster.local', type: 'A', zone: { cfg: { pods: 'disabled' } }, rcode: 'NXDOMAIN' },
  { id: 'J1', q: 'cluster.local', type: 'SOA', an: ['cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5'] },
  { id: 'J2', q: 'cluster.local', type: 'NS', an: [`cluster.local. 5 NS kube-dns.kube-system.${Z}`], ar: [`kube-dns.kube-system.${Z} 5 A 10.96.0.10`] },
  { id: 'J3', q: 'cluster.local', type: 'A', an: [], soa: 'cluster.local.' },
  { id: 'J4', q: 'svc.cluster.local', type: 'NS', an: [], soa: 'cluster.local.' },
  { id: 'J5', q: 'foo.cluster.local', type: 'NS', rcode: 'NXDOMAIN' },
  { id: 'J5b', q: `foo.${Z}`, type: 'NS', rcode: 'NXDOMAIN' },
  { id: 'J6', q: 'foo.cluster.local', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'J7', q: 'example.org.cluster.local', type: 'PTR', rcode: 'NXDOMAIN' },
  { id: 'J8', q: `x.y.z.web.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'J9', q: 'svc1.testns.svc.0.10.in-addr.arpa', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'J10', q: `nosuch.default.${Z}`, type: 'TXT', rcode: 'NXDOMAIN' },
  { id: 'J11', q: `nosuch.default.${Z}`, type: 'A', zone: { synced: false }, rcode: 'SERVFAIL', soa: 'cluster.local.' },
  { id: 'J12', q: 'cluster.local', type: 'AXFR', rcode: 'REFUSED' },
  { id: 'K1', q: `*.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'K2', q: `*.db.prod.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'K3', q: 'web.*.svc.cluster.local', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'K4', q: `any.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'K5', q: `_http.*.web.default.${Z}`, type: 'SRV', rcode: 'NXDOMAIN' },
  { id: 'L-db.prod', q: `db.prod.default.${Z}`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'L-db.prod.svc', q: `db.prod.svc.svc.cluster.local`, type: 'A', rcode: 'NXDOMAIN' },
  { id: 'L-example', q: 'example.com.cluster.local', type: 'A', rcode: 'NXDOMAIN' },
  { id: 'ttl', q: `web.default.${Z}`, type: 'A', zone: { cfg: { ttl: 30 } }, an: [`web.default.${Z} 30 A 10.96.0.50`] },
];

t.test('record forms against the DNS.md fixture', async (t) => {
  for (const c of cases) {
    const zone = zoneFor(c.zone);
    const res = zone.lookup(nameFromString(c.q), T[c.type]);
    if (!res) {
      t.fail(`${c.id}: not answered by the zone`);
      continue;
    }
    t.equal(res.rcode, RCODE[c.rcode ?? 'NOERROR'], `${c.id} rcode`);
    if (c.an) t.same(res.answer.map(rrToString).sort(), [...c.an].sort(), `${c.id} answer`);
    if (c.ar) t.same(res.additional.map(rrToString).sort(), [...c.ar].sort(), `${c.id} additional`);
    if (c.soa) t.same(res.authority.map((r) => `${r.name.join('.')}. ${r.type}`), [`${c.soa} ${T.SOA}`], `${c.id} SOA in authority`);
    if (c.rcode === 'NXDOMAIN') t.equal(res.authority[0]?.type, T.SOA, `${c.id} NXDOMAIN carries SOA`);
  }
});

t.test('ExternalName A asks the server to chase the target', async (t) => {
  const res = zoneFor().lookup(nameFromString(`ext.default.${Z}`), T.A)!;
  t.same(res.answer.map(rrToString), [`ext.default.${Z} 5 CNAME api.example.com.`]);
  t.same(res.chase, { target: ['api', 'example', 'com'], type: T.A });
});

t.test('dep: only positive answers decided by one Service', async (t) => {
  const z = zoneFor();
  const dep = (q: string, type: keyof typeof T) => z.lookup(nameFromString(q), T[type])?.dep;
  t.equal(dep(`web.default.${Z}`, 'A'), 'default/web');
  t.equal(dep(`_http._tcp.web.default.${Z}`, 'SRV'), 'default/web');
  t.equal(dep(`db-0.db.prod.${Z}`, 'A'), 'prod/db', 'endpoint name');
  t.equal(dep(`db.prod.${Z}`, 'SRV'), 'prod/db', 'headless SRV');
  t.equal(dep(`web.default.${Z}`, 'AAAA'), undefined, 'NODATA carries the SOA, whose serial changes with every zone');
  t.equal(dep(`nosuch.default.${Z}`, 'A'), undefined, 'NXDOMAIN: a new Service could answer it');
  t.equal(dep(`ext.default.${Z}`, 'A'), undefined, 'ExternalName chase depends on the target too');
  t.equal(dep('dns-version.cluster.local', 'TXT'), undefined);
  t.equal(dep('50.0.96.10.in-addr.arpa', 'PTR'), undefined, 'PTR is indexed over every Service');
});

t.test('names outside our zones are not ours', async (t) => {
  t.equal(zoneFor().lookup(nameFromString('example.com'), T.A), undefined);
  t.equal(zoneFor().lookup(nameFromString('kubernetes.default'), T.A), undefined);
  const ft = zoneFor({ cfg: { reverseFallthrough: true } });
  t.equal(ft.lookup(nameFromString('8.8.8.8.in-addr.arpa'), T.PTR), undefined, 'unknown reverse falls through');
  t.ok(ft.lookup(nameFromString('50.0.96.10.in-addr.arpa'), T.PTR), 'known reverse still answered');
});

t.test('helpers', async (t) => {
  t.equal(podLabelToIP('10-244-1-5'), '10.244.1.5');
  t.equal(podLabelToIP('fd00-10-244-1--5'), 'fd00:10:244:1::5');
  t.equal(podLabelToIP('1-2-3'), undefined);
  t.equal(podLabelToIP('foo'), undefined);
  t.equal(reverseToIP(['4', '3', '2', '1'], false), '1.2.3.4');
  t.equal(reverseToIP(['256', '3', '2', '1'], false), undefined);
  t.equal(reverseToIP(['3', '2', '1'], false), undefined);
  t.equal(endpointName({ address: '5678:abcd::', ready: true, ports: [] }), '5678-abcd--0');
  t.equal(endpointName({ address: '10.0.0.1', ready: true, ports: [], hostname: 'h' }), 'h');
});
