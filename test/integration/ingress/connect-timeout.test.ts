import t from 'tap';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { FakeApiClient, R, ingress, ingressClass, request, seedService, startTestIngress } from './helpers.js';

/**
 * proxy-connect-timeout: the upstream is a loopback listener that never accepts and whose accept
 * queue is full, so the kernel drops further SYNs and connect() hangs.
 */
t.test('proxy-connect-timeout -> 504 after the timeout', async (t) => {
  const py = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.8", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(120)',
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { py.kill('SIGKILL'); });
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    py.once('exit', (c) => reject(new Error(`listener exited ${c}`)));
  });
  // fill the accept queue (backlog 0 holds one or two completed connections)
  const fillers: net.Socket[] = [];
  t.teardown(() => fillers.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const s = net.connect(port, '127.0.0.8');
    s.on('error', () => undefined);
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  const probe = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.8');
    const timer = setTimeout(() => { s.destroy(); resolve('hangs'); }, 500);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
    s.once('error', () => { clearTimeout(timer); resolve('error'); });
  });
  t.equal(probe, 'hangs', 'precondition: connects to the upstream hang');

  const client = new FakeApiClient();
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-stuck', [{ address: '127.0.0.8', port }]);
  await client.create(R.ingresses, ingress('stuck', [{ host: 'stuck.com', paths: [{ path: '/', service: 'svc-stuck' }] }], { annotations: { 'nginx.ingress.kubernetes.io/proxy-connect-timeout': '1' } }));
  const ing = await startTestIngress(client);
  t.teardown(() => ing.stop());
  const t0 = Date.now();
  const r = await request(ing.httpPort, { host: 'stuck.com' });
  const took = Date.now() - t0;
  t.equal(r.status, 504);
  t.ok(took >= 900 && took < 5000, `answered after the 1s connect timeout (${took}ms)`);
});
