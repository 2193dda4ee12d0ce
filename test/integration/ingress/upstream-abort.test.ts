import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { FakeApiClient, R, ingress, ingressClass, request, seedService, startTestIngress } from './helpers.js';

/** An upstream that dies in the middle of a response body: the client's response is cut, not left hanging. */
t.test('upstream closes mid-body -> the client response is aborted', async (t) => {
  const upstream = net.createServer((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nhello');
      setTimeout(() => s.destroy(), 50);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.9', r));
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
  const client = new FakeApiClient();
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-cut', [{ address: '127.0.0.9', port: (upstream.address() as AddressInfo).port }]);
  await client.create(R.ingresses, ingress('cut', [{ host: 'cut.com', paths: [{ path: '/', service: 'svc-cut' }] }]));
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());
  const outcome = await request(ing.httpPort, { host: 'cut.com' }).then((r) => `complete:${r.status}:${r.body}`, (e: Error) => `error:${e.message}`);
  t.match(outcome, /^error:/, 'the client sees the response cut short');
  t.notMatch(outcome, /client timeout/, 'not left waiting for the rest of the body');
});
