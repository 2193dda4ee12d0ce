import t from 'tap';
import net from 'node:net';
import WebSocket from 'ws';
import { FakeApiClient, R, ingress, ingressClass, request, seedService, startBackend, startTestIngress, upsert, waitFor } from './helpers.js';

t.test('host and path routing, default backend, 404/503, headers, status, events, websocket, slowloris', async (t) => {
  const client = new FakeApiClient();
  const a = await startBackend('svc-a', '127.0.0.2');
  const b = await startBackend('svc-b', '127.0.0.3');
  const d = await startBackend('svc-default', '127.0.0.4');
  t.teardown(() => Promise.all([a.close(), b.close(), d.close()]));
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-a', [a]);
  await seedService(client, 'svc-b', [b]);
  await seedService(client, 'svc-default', [d]);
  await seedService(client, 'svc-empty', []);
  await client.create(R.ingresses, ingress('web', [
    { host: 'foo.bar.com', paths: [{ path: '/', service: 'svc-a', port: 'http' }, { path: '/b', service: 'svc-b' }, { path: '/exact', pathType: 'Exact', service: 'svc-b' }, { path: '/empty', service: 'svc-empty' }, { path: '/ghost', service: 'no-such-svc' }] },
    { host: '*.wild.com', paths: [{ path: '/', service: 'svc-b' }] },
  ], { annotations: { 'nginx.ingress.kubernetes.io/not-a-thing': 'x', 'nginx.ingress.kubernetes.io/proxy-read-timeout': 'soon' } }));
  await client.create(R.ingresses, ingress('fallback', [], { defaultBackend: 'svc-default' }));
  await client.create(R.ingresses, ingress('foreign', [{ host: 'ingress-class', paths: [{ path: '/', service: 'svc-a' }] }], { className: 'some-invalid-class-name' }));

  const ing = await startTestIngress(client, { headersTimeoutMs: 500, requestTimeoutMs: 2000 });
  t.teardown(() => ing.stop());
  const port = ing.httpPort;

  const served = async (host: string | undefined, path: string) => {
    const r = await request(port, { host, path });
    return r.status === 200 ? r.json().service : r.status;
  };
  t.equal(await served('foo.bar.com', '/'), 'svc-a', 'root by port name');
  t.equal(await served('foo.bar.com', '/b/c'), 'svc-b', 'prefix');
  t.equal(await served('foo.bar.com', '/bc'), 'svc-a', 'element-wise prefix');
  t.equal(await served('foo.bar.com', '/exact'), 'svc-b');
  t.equal(await served('x.wild.com', '/'), 'svc-b', 'wildcard');
  t.equal(await served('a.b.wild.com', '/'), 'svc-default', 'two labels: unknown host -> catch-all defaultBackend');
  t.equal(await served('some-host', '/sub-path'), 'svc-default', 'default backend');
  t.equal(await served(undefined, '/resource'), 'svc-default', 'no Host header');
  t.equal(await served('ingress-class', '/'), 'svc-default', 'Ingress of a foreign class is not routed');
  t.equal(await served('foo.bar.com', '/empty'), 503, 'no ready endpoints -> 503');
  t.equal(await served('foo.bar.com', '/ghost'), 503, 'missing service -> 503');

  const r = await request(port, { host: 'foo.bar.com', path: '/b/x?q=1', method: 'POST', body: 'hello', headers: { 'x-forwarded-for': '1.2.3.4' } });
  const echo = r.json();
  t.equal(echo.path, '/b/x?q=1', 'path and query forwarded unchanged');
  t.equal(echo.host, 'foo.bar.com', 'Host preserved');
  t.equal(echo.headers['x-forwarded-for'], '1.2.3.4, 127.0.0.1');
  t.equal(echo.headers['x-forwarded-proto'], 'http');
  t.equal(echo.headers['x-forwarded-host'], 'foo.bar.com');
  t.equal(echo.headers['x-real-ip'], '127.0.0.1');
  t.match(echo.headers['x-request-id'], /^[0-9a-f]{32}$/);
  t.equal(r.headers['x-request-id'], echo.headers['x-request-id'], 'request id echoed to the client');
  t.ok(r.headers.server && r.headers.date && r.headers['content-type'] && r.headers['content-length'], 'Server, Date, Content-Type, Content-Length present');
  t.equal(echo.bodyBytes, 5);

  // status and events
  const web = await waitFor('status on web', async () => {
    const o = await client.get(R.ingresses, 'web', 'default');
    return (o.status as { loadBalancer?: { ingress?: { ip: string }[] } })?.loadBalancer?.ingress?.length ? o : undefined;
  });
  t.same((web.status as { loadBalancer: unknown }).loadBalancer, { ingress: [{ ip: '127.0.0.1' }] });
  const foreign = await client.get(R.ingresses, 'foreign', 'default');
  t.notOk((foreign.status as { loadBalancer?: { ingress?: unknown[] } } | undefined)?.loadBalancer?.ingress?.length, 'unclaimed Ingress keeps an empty status');
  const events = await waitFor('events', async () => {
    const evs = (await client.list(R.events)).items.filter((e) => (e.involvedObject as { name: string }).name === 'web');
    return evs.length >= 2 ? evs : undefined;
  });
  t.same(events.map((e) => e.reason).sort(), ['InvalidAnnotation', 'UnknownAnnotation']);
  t.ok(events.every((e) => e.type === 'Warning'));

  // live update (X11) and deletion (X12)
  await upsert(client, R.ingresses, ingress('web2', [{ host: 'bar.baz.com', paths: [{ path: '/foo', service: 'svc-b' }] }]));
  await waitFor('new host routed', async () => (await served('bar.baz.com', '/foo')) === 'svc-b');
  t.equal(await served('foo.bar.com', '/'), 'svc-a', 'existing routes unchanged');
  await client.delete(R.ingresses, 'web2', 'default');
  await waitFor('deleted host gone', async () => (await served('bar.baz.com', '/foo')) === 'svc-default');

  // endpoints follow EndpointSlices; round-robin over all of them
  const a2 = await startBackend('svc-a', '127.0.0.5');
  t.teardown(() => a2.close());
  await seedService(client, 'svc-a', [a, { address: a2.address, port: a2.port }]);
  await waitFor('second endpoint used', async () => {
    await request(port, { host: 'foo.bar.com', path: '/' });
    return a2.seen.length > 0;
  });
  const before = [a.seen.length, a2.seen.length];
  for (let i = 0; i < 10; i++) await request(port, { host: 'foo.bar.com', path: '/' });
  t.equal(a.seen.length - before[0] + (a2.seen.length - before[1]), 10);
  t.ok(a.seen.length - before[0] >= 4 && a2.seen.length - before[1] >= 4, 'round-robin spreads requests');

  // graceful drain: a terminating (still serving) endpoint gets no new requests while another is ready,
  // and keeps serving when it is the last one
  await seedService(client, 'svc-a', [{ address: a.address, port: a.port, ready: false, terminating: true }, a2].map((e) => ({ ...e, serving: true })));
  await waitFor('terminating endpoint drained', async () => {
    const n = a.seen.length;
    for (let i = 0; i < 4; i++) await request(port, { host: 'foo.bar.com', path: '/drain' });
    return a.seen.length === n;
  });
  await seedService(client, 'svc-a', [{ address: a.address, port: a.port, ready: false, serving: true, terminating: true }]);
  await waitFor('last terminating endpoint still serves', async () => (await served('foo.bar.com', '/drain')) === 'svc-a' && a.seen.at(-1)?.url === '/drain');

  // WebSocket echo through the ingress
  const ws = new WebSocket(`ws://127.0.0.1:${port}/b/socket`, { headers: { host: 'foo.bar.com' } });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send('ping');
  const msg = await new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  t.equal(msg, 'svc-b:ping');
  ws.close();

  // slowloris: headers never finish -> the connection is closed after headersTimeout
  const sock = net.connect(port, '127.0.0.1');
  t.teardown(() => sock.destroy());
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.write('GET / HTTP/1.1\r\nHost: foo.bar.com\r\n');
  const drip = setInterval(() => sock.writable && sock.write('X-a: b\r\n'), 100);
  t.teardown(() => clearInterval(drip));
  const closedWith = await new Promise<string>((resolve) => {
    let data = '';
    const limit = setTimeout(() => resolve('still open after 3s'), 3000);
    sock.on('data', (c) => (data += c.toString()));
    sock.once('close', () => {
      clearTimeout(limit);
      resolve(`closed:${data}`);
    });
  });
  clearInterval(drip);
  t.match(closedWith, /^closed:(HTTP\/1\.1 408|$)/, 'closed (408 or reset) while the headers were still dripping');

  // header size limit
  const big = await request(port, { host: 'foo.bar.com', headers: { 'x-big': 'y'.repeat(20_000) } }).catch((e: Error) => ({ status: 431, body: e.message }));
  t.equal(big.status, 431, 'oversized headers rejected');
});
