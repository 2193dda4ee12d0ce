// Against the real apiserver over HTTPS: no credentials, forged/expired/revoked tokens, a cert from
// another CA and TLS 1.1 are refused before any handler runs (nothing is written), while
// /healthz /livez /readyz /version stay open to anonymous clients.
import t from 'tap';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { R } from '../../../src/api/registry.js';
import { ensurePki } from '../../../src/util/pki.js';
import { TokenSigner, issueServiceAccountToken } from '../../../src/apiserver/auth/tokens.js';
import { startSecuredApiserver } from './secured.js';

t.test('refused credentials never reach a handler', async (t) => {
  const s = await startSecuredApiserver();
  t.teardown(() => s.close());
  const sa = await s.admin.create(R.serviceaccounts, { metadata: { name: 'bot' } }, 'default');
  const otherDir = mkdtempSync(join(tmpdir(), 'skiff-other-ca-'));
  t.teardown(() => rmSync(otherDir, { recursive: true, force: true }));
  const other = await ensurePki(otherDir);

  const call = (method: string, path: string, o: { token?: string; cert?: string; key?: string; tls?: https.RequestOptions; body?: unknown } = {}) =>
    new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      const req = https.request({ host: '127.0.0.1', port: s.port, method, path, ca: s.pki.caCert, servername: 'kubernetes', cert: o.cert, key: o.key, headers, agent: false, ...o.tls }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(o.body === undefined ? undefined : JSON.stringify(o.body));
    });

  for (const p of ['/healthz', '/livez', '/readyz', '/version']) t.equal(await call('GET', p), 200, `anonymous ${p}`);
  const write = (o: Parameters<typeof call>[2] = {}) => call('POST', '/api/v1/namespaces/default/configmaps', { ...o, body: { metadata: { name: 'intruder' } } });
  const uid = sa.metadata!.uid!;
  const forged = issueServiceAccountToken(new TokenSigner(other), { namespace: 'default', serviceAccount: { name: 'bot', uid }, expirationSeconds: 3600 }).token;
  const expired = issueServiceAccountToken(s.hooks.signer, { namespace: 'default', serviceAccount: { name: 'bot', uid }, expirationSeconds: 600, now: Date.now() - 7200_000 }).token;
  const valid = issueServiceAccountToken(s.hooks.signer, { namespace: 'default', serviceAccount: { name: 'bot', uid }, expirationSeconds: 3600 }).token;
  const tampered = valid.replace(/\.([^.]+)\./, (_m, body: string) => `.${Buffer.from(Buffer.from(body, 'base64url').toString().replace('"bot"', '"admin"')).toString('base64url')}.`);

  t.equal(await call('GET', '/api/v1/namespaces/default/configmaps'), 401, 'no credentials');
  t.equal(await write(), 401, 'no credentials (write)');
  t.equal(await write({ token: 'garbage' }), 401, 'unknown token');
  t.equal(await write({ token: forged }), 401, 'forged token (foreign key)');
  t.equal(await write({ token: tampered }), 401, 'tampered token');
  t.equal(await write({ token: expired }), 401, 'expired token');
  t.equal(await write({ cert: other.adminCert, key: other.adminKey }), 401, 'system:masters cert from another CA');
  await t.rejects(call('GET', '/version', { tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } }), 'TLS 1.1 handshake refused');

  t.equal(await call('GET', '/api/v1/namespaces/default/serviceaccounts', { token: valid }), 403, 'a valid token without RBAC grants gets 403');
  await s.admin.delete(R.serviceaccounts, 'bot', 'default');
  const end = Date.now() + 5000;
  let code = 0;
  while (Date.now() < end && (code = await call('GET', '/api/v1/namespaces/default/serviceaccounts', { token: valid })) !== 401) await new Promise((r) => setTimeout(r, 50));
  t.equal(code, 401, 'revoked token (ServiceAccount deleted)');

  const list = await s.admin.list(R.configmaps, { namespace: 'default' });
  t.notOk(list.items.some((o) => o.metadata?.name === 'intruder'), 'no refused write was stored');
});
