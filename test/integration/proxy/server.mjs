// A pod's workload: answers TCP and UDP with "<name> <client address>" (client IP checks).
import net from 'node:net';
import dgram from 'node:dgram';

const [name, tcpPort, udpPort] = process.argv.slice(2);
const tcp = net.createServer((s) => s.end(`${name} ${s.remoteAddress}\n`));
const udp = dgram.createSocket('udp4');
udp.on('message', (_m, r) => udp.send(`${name} ${r.address}`, r.port, r.address));
await new Promise((r) => tcp.listen(Number(tcpPort), '0.0.0.0', r));
await new Promise((r) => udp.bind(Number(udpPort), '0.0.0.0', r));
process.stdout.write('ready\n');
