import t from 'tap';
import { ChunkedScanner, clientHead, parseRequestHead, parseResponseHead, upstreamHead } from './h1.js';

const head = (...lines: string[]) => lines.join('\r\n');

t.test('request head: parsed for the fast path', async (t) => {
  const r = parseRequestHead(head('GET /a?b=1 HTTP/1.1', 'Host: foo.com', 'X-Forwarded-For: 1.2.3.4', 'x-forwarded-for: 5.6.7.8', 'Connection: keep-alive, X-Secret', 'X-Request-ID: abc-1', 'Content-Length: 0'));
  if (!('ok' in r)) throw new Error(`not parsed: ${JSON.stringify(r)}`);
  t.equal(r.ok.method, 'GET');
  t.equal(r.ok.target, '/a?b=1');
  t.equal(r.ok.host, 'foo.com');
  t.equal(r.ok.xff, '1.2.3.4, 5.6.7.8');
  t.same(r.ok.connectionTokens, ['x-secret']);
  t.equal(r.ok.requestId, 'abc-1');
  t.equal(r.ok.contentLength, 0);
  t.equal(r.ok.close, false);
  const c = parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Connection: close', 'X-Request-ID: bad id'));
  t.ok('ok' in c && c.ok.close && c.ok.requestId === undefined, 'Connection: close; a malformed request id is not reused');
});

t.test('request head: smuggling vectors and malformed heads are 400', async (t) => {
  const cases: Record<string, string> = {
    'bare LF': 'GET / HTTP/1.1\nHost: a',
    'bare CR': 'GET / HTTP/1.1\r\nHost: a\rX: y',
    'obs-fold': head('GET / HTTP/1.1', 'Host: a', 'X-A: b', ' folded'),
    'space before colon': head('GET / HTTP/1.1', 'Host : a'),
    'duplicate Content-Length': head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Content-Length: 5'),
    'non-numeric Content-Length': head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 5, 5'),
    'signed Content-Length': head('POST / HTTP/1.1', 'Host: a', 'Content-Length: +5'),
    'Content-Length with Transfer-Encoding': head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Content-Length: 5'),
    'two Host headers': head('GET / HTTP/1.1', 'Host: a', 'Host: b'),
    'no Host': head('GET / HTTP/1.1', 'Accept: */*'),
    'control character in a value': head('GET / HTTP/1.1', 'Host: a', 'X: a\x00b'),
    'garbage request line': 'GET  / HTTP/1.1\r\nHost: a',
    'empty header name': head('GET / HTTP/1.1', 'Host: a', ': x'),
  };
  for (const [name, h] of Object.entries(cases)) t.same(parseRequestHead(h), { status: 400 }, name);
});

t.test('request head: what node:http keeps', async (t) => {
  const slow = (h: string) => 'slow' in parseRequestHead(h);
  t.ok(slow(head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked')), 'chunked request body');
  t.ok(slow(head('GET / HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket')), 'upgrade');
  t.ok(slow(head('POST / HTTP/1.1', 'Host: a', 'Expect: 100-continue', 'Content-Length: 3')), 'expect');
  t.ok(slow(head('GET / HTTP/1.0', 'Host: a')), 'HTTP/1.0');
  t.ok(slow(head('GET http://a/ HTTP/1.1', 'Host: a')), 'absolute-form');
  t.ok(slow(head('OPTIONS * HTTP/1.1', 'Host: a')), 'asterisk-form');
  t.ok(slow(head('CONNECT a:443 HTTP/1.1', 'Host: a:443')), 'CONNECT');
  t.ok(slow(head('PRI * HTTP/2.0', '', 'SM')), 'h2 prior knowledge');
});

t.test('upstream head: hop-by-hop dropped, forwarding headers appended, name case kept', async (t) => {
  const r = parseRequestHead(head('GET /x HTTP/1.1', 'Host: foo.com', 'Connection: keep-alive, X-Secret', 'X-Secret: s', 'Keep-Alive: 5', 'TE: trailers', 'Accept: */*', 'X-Forwarded-For: 1.2.3.4', 'X-Real-IP: 6.6.6.6'));
  if (!('ok' in r)) throw new Error('not parsed');
  const out = upstreamHead(r.ok, { path: '/y', fallbackHost: '10.0.0.1:80', clientIp: '192.0.2.7', tls: true, port: '443', requestId: 'rid' });
  t.equal(out, head(
    'GET /y HTTP/1.1', 'host: foo.com', 'Accept: */*', 'x-forwarded-for: 1.2.3.4, 192.0.2.7', 'x-forwarded-proto: https',
    'x-forwarded-host: foo.com', 'x-forwarded-port: 443', 'x-real-ip: 192.0.2.7', 'x-request-id: rid', '', '',
  ));
  const empty = parseRequestHead(head('GET / HTTP/1.1', 'Host:'));
  if (!('ok' in empty)) throw new Error('not parsed');
  t.match(upstreamHead(empty.ok, { path: '/', fallbackHost: '10.0.0.1:80', clientIp: 'c', tls: false, port: '80', requestId: 'r' }), /^GET \/ HTTP\/1\.1\r\nhost: 10\.0\.0\.1:80\r\n/, 'empty Host -> the endpoint');
});

t.test('response head: framing', async (t) => {
  const p = (text: string, isHead = false) => parseResponseHead(text, isHead);
  t.match(p(head('HTTP/1.1 200 OK', 'Content-Length: 5')), { framing: 'length', length: 5, keepAlive: true });
  t.match(p(head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked')), { framing: 'chunked', keepAlive: true });
  t.match(p(head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked', 'Content-Length: 9')), { framing: 'chunked', length: -1, lines: [] }, 'TE wins, CL not relayed');
  t.match(p(head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip')), { framing: 'close', keepAlive: false });
  t.match(p('HTTP/1.1 200 OK'), { framing: 'close', keepAlive: false }, 'no length: until close');
  t.match(p(head('HTTP/1.1 200 OK', 'Content-Length: 5'), true), { framing: 'none', keepAlive: true }, 'HEAD');
  t.match(p(head('HTTP/1.1 204 No Content')), { framing: 'none', keepAlive: true });
  t.match(p(head('HTTP/1.1 304 Not Modified', 'Content-Length: 12')), { framing: 'none', keepAlive: true });
  t.match(p(head('HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close')), { keepAlive: false });
  t.match(p(head('HTTP/1.0 200 OK', 'Content-Length: 1')), { keepAlive: false });
  t.match(p(head('HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive')), { keepAlive: true });
  t.match(p(head('HTTP/1.1 200 OK', 'Content-Length: 3', 'Content-Length: 3')), { framing: 'length', length: 3, lines: ['Content-Length: 3'] }, 'identical repeat');
  t.equal(p(head('HTTP/1.1 200 OK', 'Content-Length: 3', 'Content-Length: 4')), undefined, 'conflicting lengths');
  t.equal(p('HTTP/1.1 200 OK\nContent-Length: 3'), undefined, 'bare LF');
  t.equal(p('HTTP/1.1 2000 OK'), undefined);
});

t.test('client head: hop-by-hop dropped, Server/X-Request-ID added when missing, chunked when re-framed', async (t) => {
  const r = parseResponseHead(head('HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'Transfer-Encoding: chunked', 'Server: up'), false)!;
  t.equal(clientHead(r, { server: 'skiff', requestId: 'rid', close: false }), head('HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Server: up', 'x-request-id: rid', 'transfer-encoding: chunked', '', ''));
  const c = parseResponseHead(head('HTTP/1.1 404 Not Found', 'Content-Length: 0', 'X-Request-ID: up'), false)!;
  t.equal(clientHead(c, { server: 'skiff', requestId: 'rid', close: true }), head('HTTP/1.1 404 Not Found', 'Content-Length: 0', 'X-Request-ID: up', 'server: skiff', 'connection: close', '', ''));
});

t.test('chunked scanner: finds the end across any split, rejects bad framing', async (t) => {
  const body = Buffer.from('5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n');
  for (let cut = 0; cut <= body.length; cut++) {
    const s = new ChunkedScanner();
    const a = s.scan(body.subarray(0, cut));
    const b = cut === body.length ? -1 : s.scan(body.subarray(cut));
    t.ok(a === cut || (a === -1 && b === body.length - cut), `split at ${cut}`);
  }
  const extra = Buffer.concat([Buffer.from('0\r\n\r\n'), Buffer.from('HTTP/1.1')]);
  t.equal(new ChunkedScanner().scan(extra), 5, 'stops at the end of the body');
  for (const bad of ['x\r\n', '5\r\nhelloXX', '5\nhello\r\n', '\r\n', '0\r\nT: x\n\r\n', '10000000000000\r\n']) t.equal(new ChunkedScanner().scan(Buffer.from(bad)), -2, JSON.stringify(bad));
});
