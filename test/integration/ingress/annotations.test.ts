import t from 'tap';
import http from 'node:http';
import { renderMetrics } from '../../../src/util/metrics.js';
import { FakeApiClient, R, certFor, ingress, ingressClass, request, seedService, startBackend, startTestIngress } from './helpers.js';

const A = 'nginx.ingress.kubernetes.io/';

t.test('ingress-nginx annotations', async (t) => {
  const client = new FakeApiClient();
  const a = await startBackend('svc-a', '127.0.0.2');
  const a2 = await startBackend('svc-a', '127.0.0.3');
  const canary = await startBackend('svc-canary', '127.0.0.4');
  const secure = await startBackend('svc-tls', '127.0.0.5', { tls: await certFor('backend.local') });
  const slow = await startBackend('svc-slow', '127.0.0.6', { handler: () => undefined });
  const gone = await startBackend('svc-gone', '127.0.0.7');
  await gone.close();
  t.teardown(() => Promise.all([a.close(), a2.close(), canary.close(), secure.close(), slow.close()]));
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-a', [a, a2]);
  await seedService(client, 'svc-canary', [canary]);
  await seedService(client, 'svc-tls', [secure]);
  await seedService(client, 'svc-slow', [slow]);
  await seedService(client, 'svc-flaky', [{ address: gone.address, port: gone.port }, a]);
  const mk = (name: string, host: string, annotations: Record<string, string>, path = '/', service = 'svc-a', pathType = 'Prefix') =>
    client.create(R.ingresses, ingress(name, [{ host, paths: [{ path, pathType, service }] }], { annotations }));
  await mk('rewrite', 'rewrite.bar.com', { [`${A}rewrite-target`]: '/$2', [`${A}use-regex`]: 'true' }, '/something(/|$)(.*)', 'svc-a', 'ImplementationSpecific');
  await mk('rewrite-root', 'rewrite-root.com', { 'ingress.skiff.io/rewrite-target': '/' }, '/foo');
  await mk('https-backend', 'tls-backend.com', { [`${A}backend-protocol`]: 'HTTPS' }, '/', 'svc-tls');
  await mk('sticky', 'sticky.com', { [`${A}affinity`]: 'cookie', [`${A}session-cookie-name`]: 'SERVERID', [`${A}session-cookie-max-age`]: '259200' }, '/app');
  await mk('main', 'canary.com', {});
  await mk('canary-h', 'canary.com', { [`${A}canary`]: 'true', [`${A}canary-by-header`]: 'X-Canary', [`${A}canary-by-cookie`]: 'canary' }, '/', 'svc-canary');
  await mk('main-w', 'weight.com', {});
  await mk('canary-w', 'weight.com', { [`${A}canary`]: 'true', [`${A}canary-weight`]: '100' }, '/', 'svc-canary');
  await mk('allow', 'allow.com', { [`${A}whitelist-source-range`]: '10.0.0.0/8, 127.0.0.0/24' });
  await mk('deny', 'deny.com', { [`${A}whitelist-source-range`]: '10.0.0.0/8' });
  await mk('small', 'small.com', { [`${A}proxy-body-size`]: '1k' });
  await mk('slow', 'slow.com', { [`${A}proxy-read-timeout`]: '1' }, '/', 'svc-slow');
  await mk('cors', 'cors.com', { [`${A}enable-cors`]: 'true', [`${A}cors-allow-methods`]: 'POST, GET', [`${A}cors-max-age`]: '200' });
  await mk('cors-list', 'cors-list.com', { [`${A}enable-cors`]: 'true', [`${A}cors-allow-origin`]: 'https://*.foo.bar' });
  await mk('flaky', 'flaky.com', {}, '/', 'svc-flaky');

  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());
  const get = (host: string, path = '/', extra: Parameters<typeof request>[1] = {}) => request(ing.httpPort, { host, path, ...extra });

  t.test('rewrite-target with capture groups and use-regex', async (t) => {
    for (const [inPath, out] of [['/something', '/'], ['/something/', '/'], ['/something/new', '/new'], ['/SOMETHING/new?x=1', '/new?x=1']]) {
      t.equal((await get('rewrite.bar.com', inPath)).json().path, out, `${inPath} -> ${out}`);
    }
    t.equal((await get('rewrite-root.com', '/foo/bar?z=2')).json().path, '/?z=2', 'rewrite-target / (skiff prefix)');
  });

  t.test('backend-protocol HTTPS', async (t) => {
    const r = await get('tls-backend.com', '/x');
    t.equal(r.status, 200);
    t.equal(r.json().service, 'svc-tls');
  });

  t.test('affinity=cookie', async (t) => {
    const first = await get('sticky.com', '/app/1');
    const cookie = String(first.headers['set-cookie']);
    t.match(cookie, /^SERVERID=[0-9a-f]{16}; Path=\/app; Max-Age=259200; Expires=.*; HttpOnly$/);
    const target = first.json().headers['x-real-ip'] && (a.seen.at(-1)?.url === '/app/1' ? 'a' : 'a2');
    const value = cookie.split(';')[0];
    for (let i = 0; i < 6; i++) {
      const r = await get('sticky.com', `/app/${i}`, { headers: { cookie: value } });
      t.notOk(r.headers['set-cookie'], 'no new cookie while sticky');
      t.equal((target === 'a' ? a : a2).seen.at(-1)?.url, `/app/${i}`, 'same endpoint');
    }
  });

  t.test('canary by header and by weight', async (t) => {
    t.equal((await get('canary.com')).json().service, 'svc-a');
    t.equal((await get('canary.com', '/', { headers: { 'x-canary': 'always' } })).json().service, 'svc-canary');
    t.equal((await get('canary.com', '/', { headers: { 'x-canary': 'never' } })).json().service, 'svc-a');
    t.equal((await get('canary.com', '/', { headers: { cookie: 'a=1; canary=always' } })).json().service, 'svc-canary', 'by cookie');
    t.equal((await get('canary.com', '/', { headers: { cookie: 'canary=never', 'x-canary': 'always' } })).json().service, 'svc-canary', 'header beats cookie');
    for (let i = 0; i < 5; i++) t.equal((await get('weight.com')).json().service, 'svc-canary', 'weight 100 -> canary');
  });

  t.test('whitelist-source-range', async (t) => {
    t.equal((await get('allow.com')).status, 200);
    t.equal((await get('deny.com')).status, 403);
  });

  t.test('proxy-body-size', async (t) => {
    t.equal((await get('small.com', '/', { method: 'POST', body: 'x'.repeat(1000) })).status, 200);
    t.equal((await get('small.com', '/', { method: 'POST', body: 'x'.repeat(2000) })).status, 413, 'content-length over the limit');
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: ing.httpPort, method: 'POST', path: '/', agent: false, headers: { host: 'small.com', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 4; i++) req.write('y'.repeat(512));
      req.end();
    });
    t.equal(chunked, 413, 'chunked body over the limit');
  });

  t.test('proxy-read-timeout -> 504', async (t) => {
    const t0 = Date.now();
    t.equal((await get('slow.com')).status, 504);
    t.ok(Date.now() - t0 >= 900, 'waited for the read timeout');
  });

  t.test('enable-cors', async (t) => {
    const pre = await get('cors.com', '/', { method: 'OPTIONS', headers: { origin: 'https://x.example', 'access-control-request-method': 'POST' } });
    t.equal(pre.status, 204, 'preflight answered by the proxy');
    t.equal(pre.headers['access-control-allow-origin'], '*');
    t.equal(pre.headers['access-control-allow-methods'], 'POST, GET');
    t.equal(pre.headers['access-control-max-age'], '200');
    t.equal(pre.headers['content-length'], '0');
    t.equal(a.seen.filter((s) => s.headers.host === 'cors.com').length, 0, 'preflight not proxied');
    const r = await get('cors.com', '/', { headers: { origin: 'https://x.example' } });
    t.equal(r.headers['access-control-allow-credentials'], 'true');
    t.equal(r.json().service, 'svc-a');
    t.equal((await get('cors-list.com', '/', { headers: { origin: 'https://a.foo.bar' } })).headers['access-control-allow-origin'], 'https://a.foo.bar');
    t.notOk((await get('cors-list.com', '/', { headers: { origin: 'https://a.b.foo.bar' } })).headers['access-control-allow-origin'], 'origin not in the list');
  });

  t.test('retry on another endpoint when the connection is refused, then skip it', async (t) => {
    for (let i = 0; i < 6; i++) t.equal((await get('flaky.com', `/r${i}`)).status, 200, `request ${i} succeeded`);
    const { body } = await renderMetrics();
    const line = body.split('\n').find((l) => l.startsWith('skiff_ingress_upstream_errors_total') && l.includes('svc-flaky') && l.includes('ECONNREFUSED'));
    t.equal(line?.split(' ').at(-1), '1', 'the refused endpoint was tried once, then skipped (passive health)');
    t.equal(a.seen.filter((s) => /^\/r\d$/.test(s.url)).length, 6, 'all requests served by the live endpoint');
  });
});
