import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { FakeRuntime } from '../runtime/fake.js';
import { startKubeletServer } from './server.js';

/** A throwaway CA with a server cert for 127.0.0.1 and a client cert (openssl CLI). */
async function certs(dir: string) {
  const sh = `set -e; cd ${dir}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=test-ca 2>/dev/null
for n in server client; do
  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
done
printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile san.ext 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1 2>/dev/null`;
  await execa('sh', ['-c', sh]);
  const r = (f: string) => readFile(join(dir, f), 'utf8');
  return { ca: await r('ca.crt'), cert: await r('server.crt'), key: await r('server.key'), clientCert: await r('client.crt'), clientKey: await r('client.key') };
}

function fetch(port: number, opts: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => resolve({ error: err.message }));
  });
}

t.test('kubelet HTTPS with a client CA only lets certified callers in', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = await certs(dir);
  const srv = await startKubeletServer({ runtime: new FakeRuntime(), port: 0, tls: { cert: c.cert, key: c.key, ca: c.ca }, log: pino({ level: 'silent' }), listPods: () => [] });
  t.teardown(() => srv.close());
  t.same(await fetch(srv.port, { ca: c.ca, cert: c.clientCert, key: c.clientKey }), { status: 200, body: 'ok' }, 'client cert accepted');
  const anon = await fetch(srv.port, { ca: c.ca });
  t.ok('error' in anon, 'no client cert: handshake refused');
});
