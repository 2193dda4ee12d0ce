import t from 'tap';
import http2 from 'node:http2';
import tls from 'node:tls';
import WebSocket from 'ws';
import { FakeApiClient, R, certFor, ingress, ingressClass, peerCert, request, seedService, startBackend, startTestIngress, tlsSecret, upsert, waitFor } from './helpers.js';
import { X509Certificate } from 'node:crypto';
import { DEFAULT_CERT_CN } from '../../../src/ingress/tls.js';

t.test('TLS: SNI certificates, default certificate, redirects, rotation, HTTP/2, wss', async (t) => {
  const client = new FakeApiClient();
  const a = await startBackend('svc-a', '127.0.0.2');
  t.teardown(() => a.close());
  await client.create(R.ingressclasses, ingressClass());
  await seedService(client, 'svc-a', [a]);
  const fooCert = await certFor('foo.bar.com');
  const wildCert = await certFor('*.wild.com');
  const rsaCert = await certFor('rsa.bar.com', 'RSA');
  await client.create(R.secrets, tlsSecret('rsa-tls', rsaCert), 'default');
  await client.create(R.secrets, tlsSecret('foo-tls', fooCert), 'default');
  await client.create(R.secrets, tlsSecret('wild-tls', wildCert), 'default');
  await client.create(R.secrets, { metadata: { name: 'broken', namespace: 'default' }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from('nope').toString('base64'), 'tls.key': '' } }, 'default');
  await client.create(R.ingresses, ingress('secure', [
    { host: 'foo.bar.com', paths: [{ path: '/', service: 'svc-a' }] },
    { host: 'x.wild.com', paths: [{ path: '/', service: 'svc-a' }] },
    { host: 'broken.com', paths: [{ path: '/', service: 'svc-a' }] },
    { host: 'rsa.bar.com', paths: [{ path: '/', service: 'svc-a' }] },
  ], { tls: [{ hosts: ['rsa.bar.com'], secretName: 'rsa-tls' }, { hosts: ['foo.bar.com'], secretName: 'foo-tls' }, { hosts: ['*.wild.com'], secretName: 'wild-tls' }, { hosts: ['broken.com'], secretName: 'broken' }] }));
  await client.create(R.ingresses, ingress('noredirect', [{ host: 'plain.com', paths: [{ path: '/', service: 'svc-a' }] }], { tls: [{ hosts: ['plain.com'] }], annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' } }));
  await client.create(R.ingresses, ingress('forced', [{ host: 'forcesslredirect.bar.com', paths: [{ path: '/', service: 'svc-a' }] }], { annotations: { 'nginx.ingress.kubernetes.io/force-ssl-redirect': 'true' } }));

  const ing = await startTestIngress(client, { redirectHttpsPort: 443 });
  t.teardown(() => ing.stop());

  const fooPeer = await peerCert(ing.httpsPort, 'foo.bar.com');
  t.equal(fooPeer.subject.CN, 'foo.bar.com', 'SNI foo.bar.com -> its Secret');
  t.equal(tls.checkServerIdentity('foo.bar.com', fooPeer), undefined, 'certificate verifies for the host');
  // an RSA Secret next to the ECDSA default certificate: TLS 1.3 and 1.2, HTTP/2 ALPN
  const rsaFingerprint = new X509Certificate(rsaCert.cert).fingerprint256;
  t.equal((await peerCert(ing.httpsPort, 'rsa.bar.com')).fingerprint256, rsaFingerprint, 'RSA Secret served over TLS 1.3');
  t.equal((await peerCert(ing.httpsPort, 'rsa.bar.com', { maxVersion: 'TLSv1.2' })).fingerprint256, rsaFingerprint, 'RSA Secret served over TLS 1.2');
  t.equal((await peerCert(ing.httpsPort, 'rsa.bar.com', { ALPNProtocols: ['h2'] })).fingerprint256, rsaFingerprint, 'RSA Secret served with h2 ALPN');
  // a client that prefers RSA signatures (as Go's does) still gets the ECDSA Secret of its host
  t.equal((await peerCert(ing.httpsPort, 'foo.bar.com', { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256:ecdsa_secp256r1_sha256' })).subject.CN, 'foo.bar.com', 'ECDSA Secret for an RSA-first client');
  t.equal((await peerCert(ing.httpsPort, 'x.wild.com')).subject.CN, '*.wild.com', 'wildcard TLS host');
  t.equal((await peerCert(ing.httpsPort, 'a.b.wild.com')).subject.CN, DEFAULT_CERT_CN, 'wildcard covers one label only');
  t.equal((await peerCert(ing.httpsPort, 'other.example')).subject.CN, DEFAULT_CERT_CN, 'unknown SNI -> default certificate');
  t.equal((await peerCert(ing.httpsPort, 'broken.com')).subject.CN, DEFAULT_CERT_CN, 'broken Secret -> default certificate');

  const viaTls = await request(ing.httpsPort, { https: true, host: 'foo.bar.com', path: '/x' });
  t.equal(viaTls.status, 200);
  t.equal(viaTls.json().headers['x-forwarded-proto'], 'https');
  const sniOther = await request(ing.httpsPort, { https: true, host: 'foo.bar.com', servername: 'other.example', path: '/' });
  t.equal(sniOther.json().service, 'svc-a', 'SNI terminates, Host routes');

  const redir = await request(ing.httpPort, { host: 'foo.bar.com', path: '/some/path/?q=1' });
  t.equal(redir.status, 308, 'HTTP -> HTTPS for TLS hosts');
  t.equal(redir.headers.location, 'https://foo.bar.com/some/path?q=1');
  t.equal((await request(ing.httpPort, { host: 'plain.com' })).status, 200, 'ssl-redirect: "false"');
  const forced = await request(ing.httpPort, { host: 'forcesslredirect.bar.com', path: '/' });
  t.equal(forced.status, 308, 'force-ssl-redirect without tls');
  t.equal(forced.headers.location, 'https://forcesslredirect.bar.com');

  // TLS 1.1 refused
  const old = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: ing.httpsPort, servername: 'foo.bar.com', rejectUnauthorized: false, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('connected'));
    s.on('error', (e) => resolve(`error:${e.message}`));
  });
  t.match(old, /^error/, 'TLS < 1.2 refused');

  // HTTP/2 via ALPN
  const session = http2.connect(`https://127.0.0.1:${ing.httpsPort}`, { servername: 'foo.bar.com', rejectUnauthorized: false });
  t.teardown(() => session.close());
  const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = session.request({ ':path': '/h2?x=1', ':authority': 'foo.bar.com' });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
  t.equal(h2.status, 200, 'HTTP/2 request');
  t.equal(JSON.parse(h2.body).path, '/h2?x=1');
  t.equal(JSON.parse(h2.body).host, 'foo.bar.com');
  t.equal(session.alpnProtocol, 'h2');

  // wss through the HTTPS listener
  const ws = new WebSocket(`wss://127.0.0.1:${ing.httpsPort}/ws`, { headers: { host: 'foo.bar.com' }, rejectUnauthorized: false });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send('hi');
  t.equal(await new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString()))), 'svc-a:hi', 'wss echo');
  ws.close();

  // Secret rotation without restart
  const rotated = await certFor('foo.bar.com');
  const serialBefore = fooPeer.serialNumber;
  await upsert(client, R.secrets, tlsSecret('foo-tls', rotated));
  const after = await waitFor('rotated certificate served', async () => {
    const c = await peerCert(ing.httpsPort, 'foo.bar.com');
    return c.serialNumber !== serialBefore ? c : undefined;
  });
  t.equal(after.fingerprint256, new X509Certificate(rotated.cert).fingerprint256, 'new certificate is the rotated one');
  const evs = (await client.list(R.events)).items.filter((e) => e.reason === 'TLSSecretInvalid');
  t.equal(evs.length, 1, 'broken Secret reported as an Event');
});
