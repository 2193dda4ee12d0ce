import t from 'tap';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ensurePki, ensureNodeCert, issueClientCert, tlsServerOptions, writeKubeconfig, renderKubeconfig } from './pki.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-pki-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('ensurePki creates a CA, serving and admin certs with 0600 keys and keeps them on restart', async (t) => {
  const dir = tmp(t);
  const a = await ensurePki(dir, { nodeIPs: ['192.0.2.10'], hostnames: ['node-a'] });
  for (const f of ['ca.key', 'apiserver.key', 'admin.key', 'sa.key']) t.equal(statSync(join(dir, 'pki', f)).mode & 0o777, 0o600, `${f} is 0600`);
  const ca = new X509Certificate(a.caCert);
  t.ok(ca.ca, 'CA cert is a CA');
  const server = new X509Certificate(a.serverCert);
  t.ok(server.verify(ca.publicKey), 'serving cert signed by CA');
  for (const san of ['IP Address:127.0.0.1', 'IP Address:10.96.0.1', 'IP Address:192.0.2.10', 'DNS:kubernetes', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local', 'DNS:node-a']) {
    t.match(server.subjectAltName, san);
  }
  const admin = new X509Certificate(a.adminCert);
  t.match(admin.subject, /O=system:masters/);
  t.ok(admin.verify(ca.publicKey));

  const b = await ensurePki(dir, { nodeIPs: ['192.0.2.10'], hostnames: ['node-a'] });
  t.equal(b.caKey, a.caKey, 'CA not regenerated');
  t.equal(b.serverCert, a.serverCert, 'serving cert not regenerated');
  t.equal(b.adminKey, a.adminKey, 'admin not regenerated');
  t.equal(b.saKey, a.saKey, 'SA key not regenerated');

  const c = await ensurePki(dir, { nodeIPs: ['192.0.2.10', '192.0.2.11'], hostnames: ['node-a'] });
  t.equal(c.caCert, a.caCert, 'same CA after a new node IP');
  t.not(c.serverCert, a.serverCert, 'serving cert re-issued for the new SAN');
  t.match(new X509Certificate(c.serverCert).subjectAltName, 'IP Address:192.0.2.11');
});

t.test('node and client certs carry CN and O; a node cert is stable', async (t) => {
  const dir = tmp(t);
  const pki = await ensurePki(dir);
  const n1 = await ensureNodeCert(pki, 'node-1');
  const n2 = await ensureNodeCert(pki, 'node-1');
  t.equal(n1.cert, n2.cert);
  t.match(new X509Certificate(n1.cert).subject, /CN=system:node:node-1/);
  t.match(new X509Certificate(n1.cert).subject, /O=system:nodes/);
  await t.rejects(ensureNodeCert(pki, '../evil'), { code: 'ERR_PKI_NODE_NAME' });
  const c = await issueClientCert({ cert: pki.caCert, key: pki.caKey }, 'alice', ['dev', 'ops']);
  const subj = new X509Certificate(c.cert).subject;
  t.match(subj, /CN=alice/);
  t.match(subj, /O=dev/);
  t.match(subj, /O=ops/);
});

t.test('TLS: client cert from the CA is authorized, TLS 1.1 is refused', async (t) => {
  const dir = tmp(t);
  const pki = await ensurePki(dir);
  const server = https.createServer(tlsServerOptions(pki), (req, res) => {
    const s = req.socket as TLSSocket;
    res.end(JSON.stringify({ authorized: s.authorized, cn: s.getPeerCertificate()?.subject?.CN ?? null, proto: s.getProtocol() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const get = (o: https.RequestOptions) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/', ca: pki.caCert, servername: 'kubernetes', ...o }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
  const ok = JSON.parse(await get({ cert: pki.adminCert, key: pki.adminKey }));
  t.same(ok, { authorized: true, cn: 'kubernetes-admin', proto: 'TLSv1.3' });
  const anon = JSON.parse(await get({}));
  t.equal(anon.authorized, false);
  await t.rejects(get({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }), 'TLS 1.1 refused');
});

t.test('kubeconfig embeds CA and credentials and is 0600', async (t) => {
  const dir = tmp(t);
  const pki = await ensurePki(dir);
  const p = join(dir, 'kubeconfig');
  writeFileSync(p, 'old', { mode: 0o644 });
  writeKubeconfig(p, 'https://127.0.0.1:6443', { caCert: pki.caCert, clientCert: pki.adminCert, clientKey: pki.adminKey });
  t.equal(statSync(p).mode & 0o777, 0o600);
  const cfg = JSON.parse(readFileSync(p, 'utf8'));
  t.equal(cfg.clusters[0].cluster.server, 'https://127.0.0.1:6443');
  t.equal(Buffer.from(cfg.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), pki.caCert);
  t.equal(Buffer.from(cfg.users[0].user['client-key-data'], 'base64').toString(), pki.adminKey);
  const tok = JSON.parse(renderKubeconfig('https://x', { caCert: 'c', token: 'abc', user: 'sa', namespace: 'ns1' }));
  t.equal(tok.users[0].user.token, 'abc');
  t.equal(tok.contexts[0].context.namespace, 'ns1');
});
