import t from 'tap';
import http from 'node:http';
import WebSocket from 'ws';
import { renderMetrics } from '../../../src/util/metrics.js';
import { FakeApiClient, R, certFor, ingress, ingressClass, request, seedService, startBackend, startTestIngress, tlsSecret, upsert } from './helpers.js';

async function swapCount(): Promise<number> {
  const { body } = await renderMetrics();
  const line = body.split('\n').find((l) => l.startsWith('skiff_ingress_config_swaps_total '));
  return Number(line?.split(' ')[1] ?? 0);
}

t.test('100 route changes under a request stream and an open WebSocket: nothing fails', async (t) => {
  const client = new FakeApiClient();
  const a = await startBackend('svc-a', '127.0.0.2');
  const a2 = await startBackend('svc-a', '127.0.0.3');
  const b = await startBackend('svc-b', '127.0.0.4');
  t.teardown(() => Promise.all([a.close(), a2.close(), b.close()]));
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-a', [a]);
  await seedService(client, 'svc-b', [b]);
  await client.create(R.secrets, tlsSecret('t', await certFor('stream.com')), 'default');
  await client.create(R.ingresses, ingress('stream', [{ host: 'stream.com', paths: [{ path: '/', service: 'svc-a' }] }], { tls: [{ hosts: ['stream.com'], secretName: 't' }], annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' } }));
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());

  const ws = new WebSocket(`ws://127.0.0.1:${ing.httpPort}/ws`, { headers: { host: 'stream.com' } });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let wsClosed = false;
  ws.on('close', () => (wsClosed = true));
  let echoes = 0;
  ws.on('message', () => echoes++);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  let running = true;
  const results = { ok: 0, failed: [] as string[] };
  const loops = [0, 1, 2, 3].map(async (n) => {
    for (let i = 0; running; i++) {
      try {
        const r = await request(ing.httpPort, { host: 'stream.com', path: `/s/${n}/${i}`, agent });
        if (r.status === 200 && r.json().service === 'svc-a') results.ok++;
        else results.failed.push(`${r.status} ${r.body.slice(0, 80)}`);
      } catch (err) {
        results.failed.push(String(err));
      }
    }
  });
  const swapsBefore = await swapCount();

  for (let i = 0; i < 100; i++) {
    const synced = ing.nextSync();
    switch (i % 4) {
      case 0: // an unrelated Ingress changes
        await upsert(client, R.ingresses, ingress('churn', [{ host: `h${i}.com`, paths: [{ path: `/p${i}`, service: 'svc-b' }] }]));
        break;
      case 1: // the streamed Service gains or loses an endpoint
        await seedService(client, 'svc-a', i % 8 === 1 ? [a, a2] : [a]);
        break;
      case 2: // the Secret rotates
        await upsert(client, R.secrets, tlsSecret('t', await certFor('stream.com')));
        break;
      default: // the streamed Ingress itself gains a path
        await upsert(client, R.ingresses, ingress('stream', [{ host: 'stream.com', paths: [{ path: '/', service: 'svc-a' }, { path: `/extra${i}`, service: 'svc-b' }] }], { tls: [{ hosts: ['stream.com'], secretName: 't' }], annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' } }));
    }
    await synced;
    if (ws.readyState === WebSocket.OPEN) ws.send(`m${i}`);
  }
  running = false;
  await Promise.all(loops);
  await (async () => {
    const deadline = Date.now() + 3000;
    while (echoes < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  })();

  t.same(results.failed, [], 'zero failed requests');
  t.ok(results.ok > 100, `requests kept flowing (${results.ok})`);
  t.notOk(wsClosed, 'WebSocket stayed open');
  t.equal(ws.readyState, WebSocket.OPEN);
  t.equal(echoes, 100, 'every WebSocket message echoed');
  t.ok((await swapCount()) - swapsBefore >= 100, 'at least 100 route-table swaps happened');
  t.ok(a2.seen.length > 0, 'endpoint changes took effect during the stream');
});
