/**
 * Profiles skiff's DNS hot path: starts the server in this process with the benchmark's names and
 * runs dnsperf against it at a fixed rate; run it under `node --cpu-prof` and read the profile.
 *
 *   node --cpu-prof --import=... scripts/bench/dns/profile.ts [RATE] [SECONDS] [cluster|forward]
 *
 * Prints the server's CPU per 1000 answered queries (JSON).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import { startDns } from '../../../src/dns/index.js';
import { dnsperf, summary } from './dnsperf.js';

const [rate = '10000', seconds = '8', which = 'cluster'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'skiff-dns-prof-'));
const client = new FakeApiClient();
client.seed(R.namespaces, { metadata: { name: 'bench' } } as KubeObject);
const names: string[] = [];
for (let i = 0; i < 1000; i++) {
  const ip = `10.96.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`;
  client.seed(R.services, { metadata: { namespace: 'bench', name: `svc-${i}` }, spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] } } as KubeObject);
  names.push(`svc-${i}.bench.svc.cluster.local A`);
}
writeFileSync(join(dir, 'q.txt'), (which === 'cluster' ? names : ['localhost A']).join('\n') + '\n');
const dns = await startDns({ client, listen: [{ address: '127.0.0.65', port: 0 }], upstreams: ['127.0.0.1:1'], rateLimit: { qps: 0, burst: 0 } });
try {
  const target = { address: '127.0.0.65', port: dns.port() };
  await dnsperf(target, ['-d', join(dir, 'q.txt'), '-n', '2', '-t', '1'], join(dir, 'w.out'), 10_000);
  const c0 = process.cpuUsage();
  const args = ['-d', join(dir, 'q.txt'), '-l', seconds, '-c', '4', '-q', '500', '-t', '2', ...(rate === 'max' ? [] : ['-Q', rate])];
  const s = summary(await dnsperf(target, args, join(dir, 'p.out'), (Number(seconds) + 10) * 1000));
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ ...s, cpu_ms_per_1k_queries: Math.round(((c.user + c.system) / (s.sent - s.lost)) * 1000) / 1000, user_ms: Math.round(c.user / 1000), sys_ms: Math.round(c.system / 1000) }) + '\n');
} finally {
  await dns.stop();
  rmSync(dir, { recursive: true, force: true });
}
