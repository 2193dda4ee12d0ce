import t from 'tap';
import { createServer, connect, type Server, type Socket } from 'node:net';
import {
  decodeHeaderBlock, encodeControl, encodeData, encodeHeaderBlock, FLAG_FIN, HeaderCodec, parseFrames, SPDY3_DICTIONARY,
  type SpdyFrame, TYPE_PING, TYPE_RST_STREAM, TYPE_SYN_REPLY, TYPE_SYN_STREAM,
} from './portforward-spdy.js';
import { renderRelayCommand, tcpDialer, PortForwardSession } from './portforward.js';
import { componentLogger } from '../../util/log.js';

function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

t.test('SPDY/3 dictionary is the spec constant', async (t) => {
  t.equal(SPDY3_DICTIONARY.length, 1423, 'length');
  // zlib's DICTID of the SPDY/3 dictionary (what every SPDY/3 peer puts into its first header block)
  t.equal(adler32(SPDY3_DICTIONARY).toString(16), 'e3c6a7c2', 'adler32');
});

t.test('frames: parse what is encoded, keep partial frames', async (t) => {
  const a = encodeData(3, FLAG_FIN, Buffer.from('hello'));
  const b = encodeControl(TYPE_PING, 0, Buffer.from([0, 0, 0, 1]));
  const all = Buffer.concat([a, b]);
  const first = parseFrames(all.subarray(0, a.length + 3));
  t.same(first.frames, [{ control: false, streamId: 3, flags: FLAG_FIN, data: Buffer.from('hello') }]);
  t.equal(first.rest.length, 3, 'partial control frame stays');
  const second = parseFrames(Buffer.concat([first.rest, all.subarray(a.length + 3)]));
  t.same(second.frames, [{ control: true, version: 3, type: TYPE_PING, flags: 0, data: Buffer.from([0, 0, 0, 1]) }]);
  t.equal(second.rest.length, 0);
});

t.test('header blocks round-trip through two codecs sharing one zlib context per direction', async (t) => {
  t.same(decodeHeaderBlock(encodeHeaderBlock({ StreamType: 'data', port: '80' })), { streamtype: 'data', port: '80' });
  t.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9])), /truncated/);
  const client = new HeaderCodec();
  const server = new HeaderCodec();
  t.teardown(() => { client.close(); server.close(); });
  for (const h of [{ streamtype: 'error', port: '80', requestid: '0' }, { streamtype: 'data', port: '80', requestid: '0' }, {}]) {
    t.same(await server.decode(await client.encode(h)), h);
  }
  // blocks started together (a SYN_REPLY per stream, not awaited in between) must not mix
  const many = Array.from({ length: 20 }, (_, i) => ({ requestid: String(i), port: String(1000 + i) }));
  const blocks = await Promise.all(many.map((h) => client.encode(h)));
  const back = await Promise.all(blocks.map((b) => server.decode(b)));
  t.same(back, many, 'concurrent encodes/decodes keep their order and content');
});

/** A test-side SPDY client: sends SYN_STREAMs and collects frames per stream. */
class Client {
  private buf = Buffer.alloc(0);
  readonly codec = new HeaderCodec();
  readonly frames: SpdyFrame[] = [];
  constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      const r = parseFrames(Buffer.concat([this.buf, c]));
      this.buf = r.rest;
      this.frames.push(...r.frames);
    });
  }

  async open(id: number, headers: Record<string, string>, flags = 0): Promise<void> {
    const head = Buffer.alloc(10);
    head.writeUInt32BE(id);
    this.sock.write(encodeControl(TYPE_SYN_STREAM, flags, Buffer.concat([head, await this.codec.encode(headers)])));
  }

  data(id: number): string {
    return this.frames.filter((f) => !f.control && f.streamId === id).map((f) => f.data.toString()).join('');
  }

  fin(id: number): boolean {
    return this.frames.some((f) => !f.control && f.streamId === id && (f.flags & FLAG_FIN) !== 0);
  }

  control(type: number): SpdyFrame[] {
    return this.frames.filter((f) => f.control && f.type === type);
  }
}

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

t.test('session: replies, pipes a data stream to the pod port, reports dial errors', async (t) => {
  // the "pod": answers one line and closes
  const pod = createServer((s) => s.once('data', (d) => s.end(`got ${d.toString()}`)));
  const podPort = await listen(pod);
  t.teardown(() => pod.close());
  const sessions: PortForwardSession[] = [];
  const front = createServer((s) => sessions.push(new PortForwardSession(s, { podIP: '127.0.0.1', dial: tcpDialer('127.0.0.1'), log: componentLogger('test') })));
  const frontPort = await listen(front);
  t.teardown(() => { for (const s of sessions) s.close(); front.close(); });
  const sock = connect(frontPort, '127.0.0.1');
  t.teardown(() => sock.destroy());
  const c = new Client(sock);
  t.teardown(() => c.codec.close());

  await c.open(1, { streamtype: 'error', port: String(podPort), requestid: '0' }, FLAG_FIN);
  await c.open(3, { streamtype: 'data', port: String(podPort), requestid: '0' });
  sock.write(encodeData(3, 0, Buffer.from('ping')));
  await until('data FIN', () => c.fin(3) && c.fin(1));
  t.equal(c.data(3), 'got ping', 'pod answer on the data stream');
  t.equal(c.data(1), '', 'nothing on the error stream');
  const replies = c.control(TYPE_SYN_REPLY).map((f) => f.data.readUInt32BE(0));
  t.same(replies, [1, 3], 'both streams answered');

  // a port nobody listens on: the error stream carries the reason
  const closed = createServer();
  const deadPort = await listen(closed);
  await new Promise((r) => closed.close(r));
  await c.open(5, { streamtype: 'error', port: String(deadPort), requestid: '1' }, FLAG_FIN);
  await c.open(7, { streamtype: 'data', port: String(deadPort), requestid: '1' });
  await until('error FIN', () => c.fin(5) && c.fin(7));
  t.match(c.data(5), /ECONNREFUSED/);

  // bad headers: RST; PING echoed
  await c.open(9, { streamtype: 'data', port: 'x', requestid: '2' });
  sock.write(encodeControl(TYPE_PING, 0, Buffer.from([0, 0, 0, 7])));
  await until('rst and ping', () => c.control(TYPE_RST_STREAM).length === 1 && c.control(TYPE_PING).length === 1);
  t.equal(c.control(TYPE_RST_STREAM)[0].data.readUInt32BE(0), 9);
  t.equal(c.control(TYPE_PING)[0].data.readUInt32BE(0), 7);
});

t.test('session: a megabyte each way through one data stream', async (t) => {
  const pod = createServer((s) => s.pipe(s)); // echo
  const podPort = await listen(pod);
  t.teardown(() => pod.close());
  const sessions: PortForwardSession[] = [];
  const front = createServer((s) => sessions.push(new PortForwardSession(s, { podIP: '127.0.0.1', dial: tcpDialer('127.0.0.1'), log: componentLogger('test') })));
  const frontPort = await listen(front);
  t.teardown(() => { for (const s of sessions) s.close(); front.close(); });
  const sock = connect(frontPort, '127.0.0.1');
  t.teardown(() => sock.destroy());
  const c = new Client(sock);
  t.teardown(() => c.codec.close());
  await c.open(1, { streamtype: 'error', port: String(podPort), requestid: '0' }, FLAG_FIN);
  await c.open(3, { streamtype: 'data', port: String(podPort), requestid: '0' });
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  for (let off = 0; off < payload.length; off += 50_000) sock.write(encodeData(3, 0, payload.subarray(off, off + 50_000)));
  sock.write(encodeData(3, FLAG_FIN, Buffer.alloc(0)));
  await until('echo FIN', () => c.fin(3), 20_000);
  const got = Buffer.concat(c.frames.filter((f) => !f.control && f.streamId === 3).map((f) => f.data));
  t.equal(got.length, payload.length, 'all bytes came back');
  t.ok(got.equals(payload), 'in order and intact');
  t.ok(c.fin(1), 'error stream closed without a message');
  t.equal(c.data(1), '');
});

t.test('the relay enters only the pod\'s network namespace and dials its 127.0.0.1', async (t) => {
  const [file, args] = renderRelayCommand({ pid: 4242 }, 8080, '/usr/bin/node');
  t.equal(file, 'nsenter');
  t.same([args[0], args[1], args[2], ...args.slice(4)], ['--net=/proc/4242/ns/net', '/usr/bin/node', '-e', '127.0.0.1', '8080']);
  t.equal(renderRelayCommand({ name: 'skp-abc' }, 80)[1][0], '--net=/var/run/netns/skp-abc', 'a named netns by its bind mount');
});
