import t from 'tap';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { R, ingress, ingressClass, request, seedService, startBackend, startTestIngress, upsert, waitFor } from './helpers.js';

t.test('against the real apiserver: routing, live updates, status subresource, events', async (t) => {
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  const client = api.client;
  const a = await startBackend('svc-a', '127.0.0.2');
  const b = await startBackend('svc-b', '127.0.0.3');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await client.create(R.ingressclasses, ingressClass('skiff', true));
  await seedService(client, 'svc-a', [a]);
  await seedService(client, 'svc-b', [b]);
  await client.create(R.ingresses, ingress('real', [{ host: 'real.com', paths: [{ path: '/', service: 'svc-a' }] }], { annotations: { 'ingress.skiff.io/bogus': '1' } }), 'default');
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());

  t.equal((await request(ing.httpPort, { host: 'real.com', path: '/x' })).json().service, 'svc-a');
  await upsert(client, R.ingresses, ingress('real', [{ host: 'real.com', paths: [{ path: '/', service: 'svc-a' }, { path: '/b', service: 'svc-b' }] }]));
  await waitFor('watch-driven update', async () => (await request(ing.httpPort, { host: 'real.com', path: '/b/1' })).json().service === 'svc-b');

  const status = await waitFor('status written through the status subresource', async () => {
    const o = await client.get(R.ingresses, 'real', 'default');
    return (o.status as { loadBalancer?: { ingress?: { ip?: string }[] } } | undefined)?.loadBalancer?.ingress;
  });
  t.same(status, [{ ip: '127.0.0.1' }]);
  const ev = await waitFor('UnknownAnnotation event', async () => (await client.list(R.events, { namespace: 'default' })).items.find((e) => e.reason === 'UnknownAnnotation'));
  t.match(ev.message, /ingress\.skiff\.io\/bogus/);
  t.equal((ev.involvedObject as { kind: string }).kind, 'Ingress');

  // an Ingress without a class is claimed because ours is the default class
  await client.create(R.ingresses, ingress('classless', [{ host: 'classless.com', paths: [{ path: '/', service: 'svc-b' }] }], { className: null }), 'default');
  await waitFor('classless Ingress served', async () => (await request(ing.httpPort, { host: 'classless.com' })).status === 200);
});
