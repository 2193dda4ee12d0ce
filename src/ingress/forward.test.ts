import t from 'tap';
import { clientHeaders, clientHeadersH2, newRequestId, upstreamHeaders } from './forward.js';

const pairs = (flat: string[]) => Array.from({ length: flat.length / 2 }, (_v, i) => [flat[2 * i], flat[2 * i + 1]]);
const fwd = { host: 'foo.com', fallbackHost: '10.0.0.1:8080', clientIp: '192.0.2.7', tls: false, port: '80', requestId: 'r1' };

t.test('upstream headers: hop-by-hop dropped, forwarding headers set, duplicates kept', async (t) => {
  const out = upstreamHeaders(
    {
      host: 'foo.com', connection: 'keep-alive, X-Secret', 'keep-alive': 'timeout=5', 'x-secret': 'hop', 'proxy-connection': 'x', te: 'trailers', upgrade: 'h2c',
      accept: '*/*', 'x-forwarded-for': '1.2.3.4', 'x-request-id': 'client-id', 'x-multi': ['a', 'b'], 'transfer-encoding': 'chunked',
    },
    fwd,
  );
  t.same(pairs(out), [
    ['host', 'foo.com'], ['accept', '*/*'], ['x-multi', 'a'], ['x-multi', 'b'], ['transfer-encoding', 'chunked'],
    ['x-forwarded-for', '1.2.3.4, 192.0.2.7'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'foo.com'],
    ['x-forwarded-port', '80'], ['x-real-ip', '192.0.2.7'], ['x-request-id', 'r1'],
  ]);
});

t.test('upstream headers: HTTP/2 pseudo-headers dropped; no Host -> the endpoint', async (t) => {
  const h2 = pairs(upstreamHeaders({ ':method': 'GET', ':path': '/x', ':authority': 'foo.com', accept: 'a' }, { ...fwd, tls: true }));
  t.same(h2.filter(([k]) => k.startsWith(':')), []);
  t.same(h2.find(([k]) => k === 'x-forwarded-proto'), ['x-forwarded-proto', 'https']);
  const noHost = pairs(upstreamHeaders({ accept: 'a' }, { ...fwd, host: '' }));
  t.same(noHost[0], ['host', '10.0.0.1:8080']);
  t.same(noHost.find(([k]) => k === 'x-forwarded-host'), ['x-forwarded-host', '']);
});

t.test('client headers (HTTP/1): case kept, hop-by-hop dropped, Server/X-Request-ID added when missing, extras', async (t) => {
  const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Access-Control-Allow-Origin', 'https://up'];
  t.same(pairs(clientHeaders(raw, { server: 'skiff', requestId: 'r1' })), [
    ['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], ['Access-Control-Allow-Origin', 'https://up'], ['server', 'skiff'], ['x-request-id', 'r1'],
  ]);
  const withExtra = pairs(clientHeaders([...raw, 'Server', 'up', 'X-Request-ID', 'up-id'], { server: 'skiff', requestId: 'r1', extra: { 'access-control-allow-origin': '*', 'set-cookie': 'route=abc' } }));
  t.same(withExtra, [
    ['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], ['Server', 'up'], ['X-Request-ID', 'up-id'], ['access-control-allow-origin', '*'], ['set-cookie', 'route=abc'],
  ], 'extras replace the upstream header of the same name, set-cookie is appended');
});

t.test('client headers (HTTP/2): connection-specific headers removed, set-cookie appended', async (t) => {
  const out = clientHeadersH2({ 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1'] }, { server: 'skiff', requestId: 'r1', extra: { 'set-cookie': 'route=abc', vary: 'Origin' } });
  t.same(out, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'route=abc'], server: 'skiff', 'x-request-id': 'r1', vary: 'Origin' });
});

t.test('request ids: 32 hex digits, distinct across pool refills', async (t) => {
  const ids = new Set(Array.from({ length: 1000 }, () => newRequestId()));
  t.equal(ids.size, 1000);
  for (const id of ids) if (!/^[0-9a-f]{32}$/.test(id)) t.fail(id);
});
