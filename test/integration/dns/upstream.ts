/**
 * A tiny upstream resolver on loopback (dns2, UDP + TCP) standing in for the host's resolvers,
 * so forwarding tests never touch the internet. It counts the questions it is asked.
 */
import dgram from 'node:dgram';
import dns2 from 'dns2';

const { Packet } = dns2;

export interface FakeUpstream {
  address: string;
  port: number;
  /** questions seen, `name|TYPE` */
  asked: string[];
  close(): Promise<void>;
}

async function freePort(address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Zone served: api.example.com A 192.0.2.10 (300 s), example.com A 192.0.2.1 (60 s), big.example.com 100 A, everything else NXDOMAIN. */
export async function startUpstream(address = '127.0.0.2'): Promise<FakeUpstream> {
  const asked: string[] = [];
  const server = dns2.createServer({
    udp: true,
    tcp: true,
    handle(request, send) {
      const res = Packet.createResponseFromRequest(request);
      const [q] = request.questions;
      const name = String(q.name).toLowerCase();
      asked.push(`${name}|${q.type}`);
      res.header.ra = 1;
      const a = (n: string, ip: string, ttl: number) => res.answers.push({ name: n, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl, address: ip });
      if (name === 'api.example.com' && q.type === Packet.TYPE.A) a(q.name, '192.0.2.10', 300);
      else if (name === 'example.com' && q.type === Packet.TYPE.A) a(q.name, '192.0.2.1', 60);
      else if (name === 'big.example.com' && q.type === Packet.TYPE.A) for (let i = 1; i <= 100; i++) a(q.name, `192.0.2.${i}`, 60);
      else if (!['api.example.com', 'example.com', 'big.example.com'].includes(name)) {
        res.header.rcode = 3;
        res.authorities.push({ name: 'example.', type: Packet.TYPE.SOA, class: Packet.CLASS.IN, ttl: 60, primary: 'ns.example', admin: 'hostmaster.example', serial: 1, refresh: 3600, retry: 600, expiration: 86400, minimum: 60 });
      }
      send(res);
    },
  });
  const port = await freePort(address);
  await server.listen({ udp: { port, address }, tcp: { port, address } });
  return { address, port, asked, close: () => server.close() };
}
