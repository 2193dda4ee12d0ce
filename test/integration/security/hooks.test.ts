// securityHooks wired into a small HTTPS fastify app the way the apiserver uses them (auth hook →
// authorizer → handler), over a FakeApiClient. Real TLS, real client certs, real JWTs, loopback only.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { FakeApiClient } from '../../../src/client/fake.js';
import { R } from '../../../src/api/registry.js';
import { ensurePki, issueClientCert, tlsServerOptions } from '../../../src/util/pki.js';
import { securityHooks } from '../../../src/apiserver/auth/index.js';
import { requestAttributes } from '../../../src/apiserver/auth/requestinfo.js';
import { forbiddenMessage } from '../../../src/apiserver/auth/rbac.js';
import { TokenSigner, issueServiceAccountToken } from '../../../src/apiserver/auth/tokens.js';
import { StatusError } from '../../../src/apiserver/errors.js';
import type { UserInfo } from '../../../src/apiserver/hooks.js';

type Res = { status: number; body: string; headers: Record<string, unknown> };

async function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await ensurePki(dir);
  const fake = new FakeApiClient();
  fake.seed(R.namespaces, { metadata: { name: 'team' } });
  const sa = fake.seed(R.serviceaccounts, { metadata: { name: 'reader', namespace: 'team' } });
  const pod = fake.seed(R.pods, { metadata: { name: 'p1', namespace: 'team' }, spec: { nodeName: 'n1' } });
  fake.seed(R.rolebindings, {
    metadata: { name: 'reader-view', namespace: 'team' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'team' }],
  });
  const hooks = await securityHooks({ client: fake, dataDir: dir, pki, limits: { maxReadOnlyInFlight: 4, maxMutatingInFlight: 2, maxWatchesPerClient: 2 } });
  await hooks.start();
  t.teardown(() => hooks.stop());

  const reached: string[] = [];
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  const app = Fastify({ https: tlsServerOptions(pki), forceCloseConnections: true });
  for (const p of hooks.plugins ?? []) await app.register(p);
  // what the lead's apiserver does with the hooks
  app.addHook('onRequest', async (req, reply) => {
    let user: UserInfo | null;
    try {
      user = await hooks.authenticator.authenticate({ headers: req.headers, socket: req.raw.socket, url: req.url });
    } catch (err) {
      const e = err as StatusError;
      return reply.code(e.code).send(e.toStatus());
    }
    const path = req.url.split('?')[0];
    if (!user) {
      if (hooks.anonymousPaths?.includes(path)) return;
      return reply.code(401).send(new StatusError(401, 'Unauthorized', 'Unauthorized').toStatus());
    }
    const attrs = requestAttributes(req.method, req.url, user);
    const d = await hooks.authorizer.authorize(attrs);
    if (!d.allowed) return reply.code(403).send(new StatusError(403, 'Forbidden', forbiddenMessage(attrs, d.reason)).toStatus());
    (req as unknown as { user: UserInfo }).user = user;
  });
  app.get('/healthz', async () => 'ok');
  app.get('/api/v1/namespaces/:ns/pods', async (req) => {
    reached.push(req.url);
    return { kind: 'PodList', items: [] };
  });
  app.get('/api/v1/namespaces/:ns/configmaps', async () => {
    await gate;
    return { kind: 'ConfigMapList', items: [] };
  });
  app.post('/api/v1/namespaces/:ns/configmaps', async (req, reply) => reply.code(201).send(req.body));
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => {
    release();
    return app.close();
  });
  const port = (app.server.address() as AddressInfo).port;

  const call = (method: string, path: string, o: { cert?: string; key?: string; token?: string; body?: unknown; tls?: https.RequestOptions } = {}) =>
    new Promise<Res>((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      const data = o.body === undefined ? undefined : JSON.stringify(o.body);
      if (data) headers['content-type'] = 'application/json';
      const req = https.request({ host: '127.0.0.1', port, method, path, ca: pki.caCert, servername: 'kubernetes', cert: o.cert, key: o.key, headers, agent: false, ...o.tls }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
      });
      req.on('error', reject);
      req.end(data);
    });
  const admin = { cert: pki.adminCert, key: pki.adminKey };
  return { dir, pki, fake, hooks, call, admin, reached, sa, pod, releaseGate: () => release(), resetGate: () => (gate = new Promise<void>((r) => (release = r))) };
}

async function poll(fn: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

t.test('refused credentials never reach a handler', async (t) => {
  const s = await setup(t);
  const url = '/api/v1/namespaces/team/pods';
  t.equal((await s.call('GET', '/healthz')).status, 200, 'anonymous /healthz allowed');
  t.equal((await s.call('GET', url)).status, 401, 'no credentials');
  t.equal((await s.call('GET', url, { token: 'not-a-token' })).status, 401, 'garbage token');

  const otherDir = mkdtempSync(join(tmpdir(), 'skiff-sec-other-'));
  t.teardown(() => rmSync(otherDir, { recursive: true, force: true }));
  const other = await ensurePki(otherDir);
  t.equal((await s.call('GET', url, { cert: other.adminCert, key: other.adminKey })).status, 401, 'cert from another CA');
  const forged = issueServiceAccountToken(new TokenSigner(other), { namespace: 'team', serviceAccount: { name: 'reader', uid: s.sa.metadata!.uid! }, expirationSeconds: 3600 });
  t.equal((await s.call('GET', url, { token: forged.token })).status, 401, 'token signed by a foreign key');
  const expired = issueServiceAccountToken(s.hooks.signer, { namespace: 'team', serviceAccount: { name: 'reader', uid: s.sa.metadata!.uid! }, expirationSeconds: 600, now: Date.now() - 3600_000 });
  t.equal((await s.call('GET', url, { token: expired.token })).status, 401, 'expired token');
  const wrongUid = issueServiceAccountToken(s.hooks.signer, { namespace: 'team', serviceAccount: { name: 'reader', uid: 'stale-uid' }, expirationSeconds: 3600 });
  t.equal((await s.call('GET', url, { token: wrongUid.token })).status, 401, 'token of a deleted-and-recreated SA');
  await t.rejects(s.call('GET', url, { ...s.admin, tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } }), 'TLS 1.1 refused');
  t.same(s.reached, [], 'no refused request reached the handler');
  t.equal((await s.call('GET', url, s.admin)).status, 200, 'admin cert works');
  t.equal(s.reached.length, 1);
});

t.test('TokenRequest → bound SA token: RBAC view in one namespace, revoked when the pod is deleted', async (t) => {
  const s = await setup(t);
  const tr = await s.call('POST', '/api/v1/namespaces/team/serviceaccounts/reader/token', { ...s.admin, body: { spec: { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p1' }, expirationSeconds: 3600 } } });
  t.equal(tr.status, 201, tr.body);
  const token = JSON.parse(tr.body).status.token as string;
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', { token })).status, 200, 'reads where bound to view');
  const denied = await s.call('GET', '/api/v1/namespaces/default/pods', { token });
  t.equal(denied.status, 403);
  t.equal(JSON.parse(denied.body).message, 'pods is forbidden: User "system:serviceaccount:team:reader" cannot list resource "pods" in API group "" in the namespace "default"');
  t.equal((await s.call('POST', '/api/v1/namespaces/team/configmaps', { token, body: { metadata: { name: 'x' } } })).status, 403, 'view cannot write');

  const who = await s.call('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { token, body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
  t.equal(JSON.parse(who.body).status.userInfo.username, 'system:serviceaccount:team:reader');
  const ssar = async (verb: string, ns: string) =>
    JSON.parse((await s.call('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { token, body: { spec: { resourceAttributes: { verb, resource: 'pods', namespace: ns } } } })).body).status.allowed;
  t.equal(await ssar('list', 'team'), true);
  t.equal(await ssar('create', 'team'), false);
  t.equal(await ssar('list', 'default'), false);
  const rules = JSON.parse((await s.call('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews', { token, body: { spec: { namespace: 'team' } } })).body).status;
  t.ok(rules.resourceRules.some((r: { resources: string[]; verbs: string[] }) => r.resources.includes('pods') && r.verbs.includes('list')), 'rules review lists view rules');
  t.notOk(rules.resourceRules.some((r: { resources: string[] }) => r.resources.includes('secrets')));
  const review = JSON.parse((await s.call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { ...s.admin, body: { spec: { token } } })).body);
  t.match(review.status, { authenticated: true, user: { username: 'system:serviceaccount:team:reader', extra: { 'authentication.kubernetes.io/pod-name': ['p1'] } } });
  t.equal((await s.call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { token, body: { spec: { token } } })).status, 403, 'an SA with view may not review tokens');

  await s.fake.delete(R.pods, 'p1', 'team');
  t.ok(await poll(async () => (await s.call('GET', '/api/v1/namespaces/team/pods', { token })).status === 401), 'deleting the pod revokes the token');
  const after = JSON.parse((await s.call('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { ...s.admin, body: { spec: { token } } })).body);
  t.equal(after.status.authenticated, false);
  t.equal((await s.call('POST', '/api/v1/namespaces/team/serviceaccounts/nobody/token', { ...s.admin, body: { spec: {} } })).status, 404);
});

t.test('deleting the ServiceAccount revokes its tokens; kubelet client certs authenticate as the node', async (t) => {
  const s = await setup(t);
  const { token } = s.hooks.issueServiceAccountToken({ namespace: 'team', serviceAccount: { name: 'reader', uid: s.sa.metadata!.uid! }, expirationSeconds: 3600 });
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', { token })).status, 200);
  await s.fake.delete(R.serviceaccounts, 'reader', 'team');
  t.ok(await poll(async () => (await s.call('GET', '/api/v1/namespaces/team/pods', { token })).status === 401));
  const node = await issueClientCert({ cert: s.pki.caCert, key: s.pki.caKey }, 'system:node:n1', ['system:nodes']);
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', { cert: node.cert, key: node.key })).status, 200, 'system:node role reads pods');
  t.equal((await s.call('POST', '/api/v1/namespaces/team/configmaps', { cert: node.cert, key: node.key, body: {} })).status, 403, 'nodes cannot write configmaps');
});

t.test('flood: 429 with Retry-After beyond the in-flight cap, well-behaved clients still answered; audit lines', async (t) => {
  const s = await setup(t);
  const alice = await issueClientCert({ cert: s.pki.caCert, key: s.pki.caKey }, 'alice', ['team-devs']);
  await s.fake.create(R.rolebindings, { metadata: { name: 'alice-view', namespace: 'team' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'User', name: 'alice' }] }, 'team');
  await poll(async () => (await s.call('GET', '/api/v1/namespaces/team/pods', { cert: alice.cert, key: alice.key })).status === 200);
  const creds = { cert: alice.cert, key: alice.key };
  const settled: Res[] = [];
  const flood = Array.from({ length: 20 }, () => s.call('GET', '/api/v1/namespaces/team/configmaps', creds).then((r) => (settled.push(r), r)));
  t.ok(await poll(async () => settled.length >= 16, 10_000), '16 requests answered while 4 are held');
  t.equal(s.hooks.limitsStats().readonly, 4, 'four read-only requests in flight');
  t.equal(settled.length, 16, 'exactly the cap (4) is held');
  t.ok(settled.every((r) => r.status === 429), 'the overflow got 429');
  t.equal(settled[0].headers['retry-after'], '1');
  t.equal(JSON.parse(settled[0].body).reason, 'TooManyRequests');
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', s.admin)).status, 200, 'system:masters (loopback components) exempt while saturated');
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', creds)).status, 429, 'a read from a normal client waits its turn');
  s.releaseGate();
  const all = await Promise.all(flood);
  t.equal(all.filter((r) => r.status === 200).length, 4, 'held requests complete');
  t.equal((await s.call('GET', '/api/v1/namespaces/team/pods', creds)).status, 200, 'a well-behaved request is answered after the flood');

  // open watches per client: 2 allowed, the third refused, another client unaffected
  s.resetGate();
  const w = [s.call('GET', '/api/v1/namespaces/team/configmaps?watch=true', creds), s.call('GET', '/api/v1/namespaces/team/configmaps?watch=true', creds)];
  t.ok(await poll(async () => s.hooks.limitsStats().watches === 2), 'two watches open');
  const third = await s.call('GET', '/api/v1/namespaces/team/configmaps?watch=true', creds);
  t.equal(third.status, 429, 'third watch of one client refused');
  t.match(JSON.parse(third.body).message, /too many open watches/);
  const bobCert = await issueClientCert({ cert: s.pki.caCert, key: s.pki.caKey }, 'bob', ['system:masters']);
  const bobWatch = s.call('GET', '/api/v1/namespaces/team/configmaps?watch=true', { cert: bobCert.cert, key: bobCert.key });
  s.releaseGate();
  t.same((await Promise.all([...w, bobWatch])).map((r) => r.status), [200, 200, 200], 'watches within the cap served, other clients unaffected');

  t.equal((await s.call('POST', '/api/v1/namespaces/team/configmaps', { ...creds, body: { metadata: { name: 'audited' }, data: { k: 'v' } } })).status, 201);
  const big = 'x'.repeat(4 * 1024 * 1024);
  t.equal((await s.call('POST', '/api/v1/namespaces/team/configmaps', { ...creds, body: { data: { big } } })).status, 413, 'body cap');
  await s.hooks.stop();
  const lines = await (async () => {
    let out: Record<string, unknown>[] = [];
    await poll(async () => {
      out = readFileSync(join(s.dir, 'audit.log'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      return out.some((l) => (l.objectRef as { name?: string } | undefined)?.resource === 'configmaps' && (l.responseStatus as { code: number }).code === 201);
    });
    return out;
  })();
  const ev = lines.find((l) => (l.responseStatus as { code: number }).code === 201 && (l.objectRef as { resource?: string })?.resource === 'configmaps');
  t.match(ev, { apiVersion: 'audit.k8s.io/v1', verb: 'create', user: { username: 'alice' }, objectRef: { resource: 'configmaps', namespace: 'team' } });
  t.notOk(lines.some((l) => l.verb === 'list' || l.verb === 'get'), 'reads are not audited');
});
