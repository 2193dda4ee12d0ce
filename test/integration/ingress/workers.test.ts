import t from 'tap';
import { renderMetrics } from '../../../src/util/metrics.js';
import { FakeApiClient, R, ingress, ingressClass, request, seedService, startBackend, startTestIngress, upsert, waitFor } from './helpers.js';

t.test('two proxy processes share the listeners and both follow route changes', async (t) => {
  const client = new FakeApiClient();
  const a = await startBackend('svc-a', '127.0.0.2');
  const b = await startBackend('svc-b', '127.0.0.3');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-a', [a]);
  await seedService(client, 'svc-b', [b]);
  await client.create(R.ingresses, ingress('w', [{ host: 'w.com', paths: [{ path: '/', service: 'svc-a' }] }]));
  const ing = await startTestIngress(client, { workers: 2 });
  t.teardown(() => ing.stop());

  // many fresh connections: the kernel spreads them over both processes
  let sent = 0;
  const served = async (n: number) => {
    const out: string[] = [];
    sent += n;
    for (let i = 0; i < n; i++) {
      const r = await request(ing.httpPort, { host: 'w.com', path: `/x${i}` });
      out.push(r.status === 200 ? r.json().service : String(r.status));
    }
    return out;
  };
  t.same(new Set(await served(20)), new Set(['svc-a']));
  await upsert(client, R.ingresses, ingress('w', [{ host: 'w.com', paths: [{ path: '/', service: 'svc-b' }] }]));
  await waitFor('every process routes to svc-b', async () => (await served(20)).every((s) => s === 'svc-b'));
  t.same(new Set(await served(40)), new Set(['svc-b']), 'no process kept the old table');

  // the worker's requests show up in the controller process's metrics
  const total = async () => {
    const { body } = await renderMetrics();
    return body.split('\n').filter((l) => l.startsWith('skiff_ingress_requests_total{') && l.includes('ingress="default/w"')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  };
  const counted = await waitFor('worker metrics aggregated', async () => ((await total()) === sent ? sent : undefined), 8000).catch(() => undefined);
  t.equal(counted, sent, `all ${sent} requests of both processes counted in the controller's metrics`);
});
