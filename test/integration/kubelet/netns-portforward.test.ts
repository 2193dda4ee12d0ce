// Port-forward to a netns-runtime pod through the kubelet's /portForward (the legacy SPDY/3.1
// upgrade, as kubectl does with KUBECTL_PORT_FORWARD_WEBSOCKETS=false): the stream reaches a server
// bound only to the pod's 127.0.0.1, which the pod IP does not answer on.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { R } from '../../../src/api/registry.js';
import { encodeControl, encodeData, FLAG_FIN, HeaderCodec, parseFrames, type SpdyFrame, TYPE_SYN_STREAM } from '../../../src/kubelet/streaming/portforward-spdy.js';
import { getPod, isReady, podSpec, startTestNode, waitFor } from './harness.js';

function upgrade(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'portforward.k8s.io' } });
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res) => reject(new Error(`kubelet answered ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

/** One request/response exchange on a new (error, data) stream pair; resolves with what the pod sent and the error stream's text. */
async function exchange(sock: Socket, codec: HeaderCodec, frames: SpdyFrame[], ids: [number, number], port: number, payload: string): Promise<{ data: string; error: string }> {
  const syn = async (id: number, headers: Record<string, string>, flags: number) => {
    const head = Buffer.alloc(10);
    head.writeUInt32BE(id);
    sock.write(encodeControl(TYPE_SYN_STREAM, flags, Buffer.concat([head, await codec.encode(headers)])));
  };
  const [errId, dataId] = ids;
  await syn(errId, { streamtype: 'error', port: String(port), requestid: String(errId) }, FLAG_FIN);
  await syn(dataId, { streamtype: 'data', port: String(port), requestid: String(errId) }, 0);
  sock.write(encodeData(dataId, FLAG_FIN, Buffer.from(payload)));
  const fin = (id: number) => frames.some((f) => !f.control && f.streamId === id && (f.flags & FLAG_FIN) !== 0);
  await waitFor(`stream ${dataId} to finish`, () => fin(dataId), 15_000, 20);
  const text = (id: number) => frames.filter((f) => !f.control && f.streamId === id).map((f) => f.data.toString()).join('');
  return { data: text(dataId), error: text(errId) };
}

t.test('netns runtime: port-forward reaches a server bound to the pod\'s 127.0.0.1', async (t) => {
  const node = await startTestNode(t, { runtime: 'netns' });
  const dir = await mkdtemp(join(tmpdir(), 'skiff-pflo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'index.html'), 'hello-localhost\n');
  await node.client.create(R.pods, podSpec('lo', node.nodeName, { containers: [{ name: 'web', image: 'host', command: ['busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', dir] }] }), 'default');
  const pod = await waitFor('lo ready', async () => { const p = await getPod(node.client, 'lo'); return isReady(p) ? p : undefined; }, 30_000);
  // the server is up once it answers inside the pod's netns
  const direct = await node.host.exec('curl', ['-s', '--max-time', '2', `http://${pod.status!.podIP}:8080/`], { allowFail: true });
  t.not(direct.exitCode, 0, 'nothing answers on the pod IP');

  const sock = await upgrade(node.port(), '/portForward/default/lo');
  t.teardown(() => sock.destroy());
  const codec = new HeaderCodec();
  t.teardown(() => codec.close());
  const frames: SpdyFrame[] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (c: Buffer) => {
    const r = parseFrames(Buffer.concat([buf, c]));
    buf = r.rest;
    frames.push(...r.frames);
  });
  let next = 1;
  const ids = (): [number, number] => { next += 4; return [next - 4, next - 2]; };
  const ok = await waitFor('the httpd to answer through port-forward', async () => {
    const r = await exchange(sock, codec, frames, ids(), 8080, 'GET / HTTP/1.0\r\n\r\n');
    return r.data.includes('200') ? r : undefined;
  }, 20_000, 200);
  t.match(ok.data, /hello-localhost/, 'the page of the localhost-only server');
  t.equal(ok.error, '', 'no error');

  const refused = await exchange(sock, codec, frames, ids(), 8081, 'x');
  t.match(refused.error, /ECONNREFUSED 127\.0\.0\.1:8081/, 'a closed port on the pod\'s localhost is refused there');
});
