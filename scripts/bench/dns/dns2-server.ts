/**
 * dns2 out of the box, for the benchmark's optional comparison (BENCH_DNS2=1): one process, a
 * dns2 UDP server answering A queries for the benchmark's names from a Map (what our packet cache
 * replaces: dns2 parses every query into objects and encodes every answer anew).
 *
 *   node --import=... scripts/bench/dns/dns2-server.ts HOSTS_FILE ADDRESS
 *
 * Prints the bound port on stdout, then serves until killed.
 */
import { readFileSync } from 'node:fs';
import dns2 from 'dns2';

const { Packet } = dns2;
const [hostsFile, address] = process.argv.slice(2);
const names = new Map<string, string>();
for (const line of readFileSync(hostsFile, 'utf8').split('\n')) {
  const [ip, name] = line.split(/\s+/);
  if (ip && name) names.set(name.toLowerCase(), ip);
}

const server = dns2.createUDPServer((request, send) => {
  const res = Packet.createResponseFromRequest(request);
  const [q] = request.questions;
  const ip = q && q.type === Packet.TYPE.A ? names.get(String(q.name).toLowerCase()) : undefined;
  // dns2's typings want a Resource class instance; its encoder takes this plain record (as in its README)
  if (ip) res.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 5, address: ip } as unknown as (typeof res.answers)[number]);
  else res.header.rcode = 3;
  void send(res);
});
server.bind(0, address, () => process.stdout.write(`${server.address().port}\n`));
