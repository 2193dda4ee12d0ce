// Probes a service from inside a netns and prints JSON: { replies: ["name src", ...], errors: { CODE: n } }.
//   node client.mjs tcp HOST PORT COUNT
//   node client.mjs udp HOST PORT COUNT SOURCE_PORT
import net from 'node:net';
import dgram from 'node:dgram';

const [mode, host, portStr, countStr, sportStr] = process.argv.slice(2);
const port = Number(portStr);
const count = Number(countStr);
const replies = [];
const errors = {};
const fail = (code) => (errors[code] = (errors[code] ?? 0) + 1);

function tcpOnce() {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    s.setTimeout(2000, () => {
      fail('TIMEOUT');
      s.destroy();
      resolve();
    });
    s.on('data', (d) => (data += d));
    s.on('error', (e) => {
      fail(e.code ?? 'ERROR');
      resolve();
    });
    s.on('close', () => {
      if (data) replies.push(data.trim());
      resolve();
    });
  });
}

async function udpAll() {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(Number(sportStr), '0.0.0.0', r));
  for (let i = 0; i < count; i++) {
    const got = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 700);
      sock.once('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
      sock.send(`probe ${i}`, port, host);
    });
    if (got) replies.push(got);
    else fail('NOREPLY');
  }
  sock.close();
}

if (mode === 'tcp') for (let i = 0; i < count; i++) await tcpOnce();
else await udpAll();
process.stdout.write(JSON.stringify({ replies, errors }) + '\n');
