import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { FakeApiClient, R, ingress, ingressClass, request, seedService, startTestIngress, waitFor } from './helpers.js';

/**
 * Framing through the raw-socket fast path: chunked, HEAD, 204/304, close-delimited, large bodies,
 * pipelining (also across a hand-off to node:http), clients and upstreams going away, and request
 * smuggling attempts answered 400.
 */

interface Parsed { status: number; headers: Record<string, string>; body: string }

/** Splits a byte stream into HTTP/1.1 responses (`heads`: the requests that were HEAD). */
function splitResponses(data: Buffer, heads: boolean[]): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  for (const isHead of heads) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.toString('latin1', at, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const status = Number(lines[0].split(' ')[1]);
    at = end + 4;
    let body = '';
    if (isHead || status === 204 || status === 304) {
      // no body
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at);
        const size = parseInt(data.toString('latin1', at, lineEnd), 16);
        at = lineEnd + 2;
        if (size === 0) {
          at = data.indexOf('\r\n\r\n', at - 2) + 4;
          break;
        }
        body += data.toString('latin1', at, at + size);
        at += size + 2;
      }
    } else {
      const n = Number(headers['content-length'] ?? 0);
      body = data.toString('latin1', at, at + n);
      at += n;
    }
    out.push({ status, headers, body });
  }
  return out;
}

/** Writes raw bytes, reads until `enough(received)` or the connection closes. */
function raw(port: number, bytes: string | Buffer, enough: (b: Buffer) => boolean = () => false): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closed = false;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer; got ${JSON.stringify(data.toString('latin1').slice(0, 300))}`)); }, 10_000);
    s.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      if (enough(data)) { clearTimeout(timer); s.destroy(); resolve({ data, closed }); }
    });
    s.on('close', () => { closed = true; clearTimeout(timer); resolve({ data, closed }); });
    s.on('error', () => undefined);
    s.write(bytes);
  });
}

const count = (b: Buffer, re: RegExp) => (b.toString('latin1').match(re) ?? []).length;

t.test('fast path framing', async (t) => {
  let aborted = 0;
  let upstreamRequests = 0;
  const big = Buffer.alloc(2 * 1024 * 1024, 'x');
  const upstream = http.createServer((req, res) => {
    upstreamRequests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      if (path === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('hello ');
        setTimeout(() => { res.write('x'.repeat(5000)); res.end(' bye'); }, 10);
      } else if (path === '/204') {
        res.writeHead(204).end();
      } else if (path === '/304') {
        res.writeHead(304, { etag: '"x"' }).end();
      } else if (path === '/big') {
        res.writeHead(200, { 'content-length': big.length }).end(req.method === 'HEAD' ? undefined : big);
      } else if (path === '/slow') {
        res.writeHead(200, { 'content-length': 100 });
        res.write('part');
        res.on('close', () => { if (!res.writableFinished) aborted++; });
      } else {
        const body = JSON.stringify({ path, method: req.method, bodyBytes: Buffer.concat(chunks).length, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.5', r));
  t.teardown(() => { upstream.closeAllConnections(); return new Promise<void>((r) => upstream.close(() => r())); });
  // an upstream that ends its body by closing (no length, no chunking)
  const closer = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close')));
  await new Promise<void>((r) => closer.listen(0, '127.0.0.6', r));
  t.teardown(() => new Promise<void>((r) => closer.close(() => r())));

  const client = new FakeApiClient();
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-fp', [{ address: '127.0.0.5', port: (upstream.address() as AddressInfo).port }]);
  await seedService(client, 'svc-close', [{ address: '127.0.0.6', port: (closer.address() as AddressInfo).port }]);
  await client.create(R.ingresses, ingress('fp', [{ host: 'fp.com', paths: [{ path: '/', service: 'svc-fp' }] }, { host: 'close.com', paths: [{ path: '/', service: 'svc-close' }] }], { annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '8m' } }));
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());
  const port = ing.httpPort;

  await t.test('keep-alive requests on one connection: chunked, HEAD, 204, 304, large bodies', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const sockets = new Set<net.Socket>();
    const get = async (path: string, extra: { method?: string; body?: Buffer } = {}) => {
      const r = await request(port, { host: 'fp.com', path, agent, ...extra });
      return r;
    };
    agent.on('free', (s: net.Socket) => sockets.add(s));
    const chunked = await get('/chunked');
    t.equal(chunked.status, 200);
    t.equal(chunked.headers['transfer-encoding'], 'chunked');
    t.equal(chunked.body, `hello ${'x'.repeat(5000)} bye`, 'chunked body relayed whole');
    const head = await get('/big', { method: 'HEAD' });
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], String(big.length), 'HEAD keeps the length');
    t.equal(head.body, '');
    t.equal((await get('/204')).status, 204);
    const notModified = await get('/304');
    t.equal(notModified.status, 304);
    t.equal(notModified.headers.etag, '"x"');
    const down = await get('/big');
    t.equal(down.body.length, big.length, '2 MiB response');
    const up = await get('/echo', { method: 'POST', body: Buffer.alloc(3 * 1024 * 1024, 'y') });
    t.equal(up.json().bodyBytes, 3 * 1024 * 1024, '3 MiB request body');
    const after = await get('/after');
    t.equal(after.json().path, '/after');
    t.equal(sockets.size, 1, 'one client connection carried all of them');
    t.equal(after.headers.server, 'skiff-ingress');
    t.match(after.headers['x-request-id'], /^[0-9a-f]{32}$/);
    const fwd = after.json<{ headers: Record<string, string> }>().headers;
    t.equal(fwd['x-forwarded-for'], '127.0.0.1');
    t.equal(fwd['x-forwarded-proto'], 'http');
    t.equal(fwd['x-forwarded-host'], 'fp.com');
    t.equal(fwd['x-request-id'], after.headers['x-request-id']);
  });

  await t.test('close-delimited upstream body -> chunked to the client, connection kept', async (t) => {
    const { data, closed } = await raw(port, 'GET /a HTTP/1.1\r\nHost: close.com\r\n\r\nGET /b HTTP/1.1\r\nHost: close.com\r\n\r\n', (b) => count(b, /0\r\n\r\n/g) >= 2);
    const rs = splitResponses(data, [false, false]);
    t.same(rs.map((r) => [r.status, r.body, r.headers['transfer-encoding']]), [[200, 'until close', 'chunked'], [200, 'until close', 'chunked']]);
    t.notOk(closed, 'client connection still open');
  });

  await t.test('pipelined requests answered in order, across a hand-off to node:http', async (t) => {
    const reqs = [
      'GET /one HTTP/1.1\r\nHost: fp.com\r\n\r\n',
      'HEAD /big HTTP/1.1\r\nHost: fp.com\r\n\r\n',
      'POST /two HTTP/1.1\r\nHost: fp.com\r\nContent-Length: 3\r\n\r\nabc',
      'GET /chunked HTTP/1.1\r\nHost: fp.com\r\n\r\n',
      // chunked request body: the fast path hands the connection to node:http here
      'POST /three HTTP/1.1\r\nHost: fp.com\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n',
      'GET /four HTTP/1.1\r\nHost: fp.com\r\nConnection: close\r\n\r\n',
    ];
    const { data, closed } = await raw(port, reqs.join(''));
    t.ok(closed, 'closed after Connection: close');
    const rs = splitResponses(data, [false, true, false, false, false, false]);
    t.equal(rs.length, 6);
    t.same(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    t.equal(JSON.parse(rs[0].body).path, '/one');
    t.equal(rs[1].headers['content-length'], String(big.length));
    t.match(JSON.parse(rs[2].body), { path: '/two', method: 'POST', bodyBytes: 3 });
    t.match(rs[3].body, /^hello x+ bye$/);
    t.match(JSON.parse(rs[4].body), { path: '/three', bodyBytes: 4 });
    t.equal(JSON.parse(rs[5].body).path, '/four');
  });

  await t.test('request smuggling attempts -> 400, never forwarded', async (t) => {
    const attempts = {
      'CL + TE': 'POST / HTTP/1.1\r\nHost: fp.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: fp.com\r\n\r\n',
      'duplicate CL': 'POST / HTTP/1.1\r\nHost: fp.com\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd',
      'bare LF': 'GET / HTTP/1.1\nHost: fp.com\n\n',
      'obs-fold': 'GET / HTTP/1.1\r\nHost: fp.com\r\nX-A: a\r\n b\r\n\r\n',
      'space before colon': 'GET / HTTP/1.1\r\nHost: fp.com\r\nContent-Length : 4\r\n\r\nabcd',
    };
    const before = upstreamRequests;
    for (const [name, bytes] of Object.entries(attempts)) {
      const { data, closed } = await raw(port, bytes);
      t.match(data.toString('latin1'), /^HTTP\/1\.1 400 /, name);
      t.equal(count(data, /HTTP\/1\.1 /g), 1, `${name}: one response`);
      t.ok(closed, `${name}: connection closed`);
    }
    t.equal(upstreamRequests, before, 'the upstream saw none of them');
    const big431 = await raw(port, `GET / HTTP/1.1\r\nHost: fp.com\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
    t.match(big431.data.toString('latin1'), /^HTTP\/1\.1 431 /, 'head larger than maxHeaderSize');
  });

  await t.test('client closes mid-response -> the upstream request is stopped', async (t) => {
    const before = aborted;
    await raw(port, 'GET /slow HTTP/1.1\r\nHost: fp.com\r\n\r\n', (b) => b.includes('part'));
    await waitFor('upstream response aborted', () => aborted > before);
    t.pass('upstream saw the close');
    const r = await request(port, { host: 'fp.com', path: '/still' });
    t.equal(r.json().path, '/still', 'proxy still serves');
  });

  await t.test('a connection that never sends a request is closed after headersTimeout', async (t) => {
    const strict = await startTestIngress(client, { headersTimeoutMs: 300, keepAliveTimeoutMs: 60_000 });
    t.teardown(() => strict.stop());
    const { data, closed } = await raw(strict.httpPort, '');
    t.ok(closed, 'closed by the proxy');
    t.equal(data.length, 0);
    const served = await raw(strict.httpPort, 'GET /kept HTTP/1.1\r\nHost: fp.com\r\n\r\n', (b) => b.includes('/kept'));
    t.match(served.data.toString(), /^HTTP\/1\.1 200 /, 'a request in time is served');
  });

  await t.test('upstream keep-alive connections are reused', async (t) => {
    let conns = 0;
    upstream.on('connection', () => conns++);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    for (let i = 0; i < 5; i++) await request(port, { host: 'fp.com', path: `/r${i}`, agent });
    t.ok(conns <= 1, `5 sequential requests over ${conns} new upstream connection(s)`);
  });
});
