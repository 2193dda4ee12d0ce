// Secrets at rest through the real apiserver across restarts: key rotation (old keys still
// decrypt), rewrite re-encrypts with the new key, pruning the old key after the rewrite is safe.
// And NodeRestriction through the real apiserver with a kubelet client certificate.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { R } from '../../../src/api/registry.js';
import { RestClient } from '../../../src/client/rest.js';
import { loadEncryption, pruneEncryptionKeys, rewriteEncrypted, rotateEncryptionKey } from '../../../src/store/encryption.js';
import { ensureNodeCert } from '../../../src/util/pki.js';
import { startSecuredApiserver } from './secured.js';

const PREFIX = '/registry/core/secrets/';
const secret = (name: string, value: string) => ({ metadata: { name }, data: { v: Buffer.from(value).toString('base64') } });
const valueOf = (o: { data?: unknown }) => Buffer.from(String((o.data as { v: string }).v), 'base64').toString();

t.test('key rotation across restarts of the real apiserver', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-rotation-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyPrefixes = async (s: Awaited<ReturnType<typeof startSecuredApiserver>>) =>
    (await s.store.list(PREFIX)).items.map((kv) => /^k8s:enc:aesgcm:v1:([^:]+):/.exec(kv.value.subarray(0, 64).toString('latin1'))?.[1] ?? 'plaintext');

  let s = await startSecuredApiserver({ dir });
  await s.admin.create(R.secrets, secret('one', 'first-secret-value'), 'default');
  const [firstKey] = await keyPrefixes(s);
  t.match(firstKey, /^key-/, 'stored under the first key');
  await s.close();

  rotateEncryptionKey(dir, 'key-2');
  s = await startSecuredApiserver({ dir });
  t.equal(valueOf(await s.admin.get(R.secrets, 'one', 'default')), 'first-secret-value', 'old key still decrypts after rotation');
  await s.admin.create(R.secrets, secret('two', 'second-secret-value'), 'default');
  t.same((await keyPrefixes(s)).sort(), ['key-2', firstKey].sort(), 'new writes use the new key, old values keep theirs');
  t.equal(await rewriteEncrypted(s.store, loadEncryption(dir), 'secrets', PREFIX), 1, 'rewrite re-encrypts the one old value');
  t.same(await keyPrefixes(s), ['key-2', 'key-2']);
  await s.store.compact(await s.store.currentRevision());
  await s.close();

  t.same(pruneEncryptionKeys(dir), [firstKey]);
  s = await startSecuredApiserver({ dir });
  t.teardown(() => s.close());
  t.equal(valueOf(await s.admin.get(R.secrets, 'one', 'default')), 'first-secret-value', 'readable with only the new key');
  t.equal(valueOf(await s.admin.get(R.secrets, 'two', 'default')), 'second-secret-value');
});

t.test('NodeRestriction through the apiserver: a kubelet cert writes only its own Node, Lease and pods', async (t) => {
  const s = await startSecuredApiserver();
  t.teardown(() => s.close());
  for (const n of ['n1', 'n2']) await s.admin.create(R.nodes, { metadata: { name: n } });
  await s.admin.create(R.namespaces, { metadata: { name: 'kube-node-lease' } }).catch(() => undefined);
  await s.admin.create(R.pods, { metadata: { name: 'on-n2' }, spec: { nodeName: 'n2', containers: [{ name: 'c', image: 'skiff/pause:3.9' }] } }, 'default');
  const cert = await ensureNodeCert(s.pki, 'n1');
  const kubelet = new RestClient({ server: s.url, ca: s.pki.caCert, cert: cert.cert, key: cert.key });
  t.teardown(() => kubelet.close());

  const n1 = await kubelet.get(R.nodes, 'n1');
  t.ok(await kubelet.update(R.nodes, { ...n1, status: { conditions: [{ type: 'Ready', status: 'True' }] } }, { subresource: 'status' }), 'own node status');
  const n2 = await kubelet.get(R.nodes, 'n2');
  await t.rejects(kubelet.update(R.nodes, { ...n2, status: { conditions: [{ type: 'Ready', status: 'False' }] } }, { subresource: 'status' }), { code: 403, message: /node "n1" is not allowed to modify node "n2"/ });
  await t.rejects(kubelet.delete(R.nodes, 'n2'), { code: 403 });
  t.ok(await kubelet.create(R.leases, { metadata: { name: 'n1' }, spec: { holderIdentity: 'n1' } }, 'kube-node-lease'), 'own lease');
  await t.rejects(kubelet.create(R.leases, { metadata: { name: 'n2' }, spec: { holderIdentity: 'n1' } }, 'kube-node-lease'), { code: 403 });
  await t.rejects(kubelet.delete(R.pods, 'on-n2', 'default'), { code: 403 }, 'pods of another node');
  await t.rejects(kubelet.create(R.configmaps, { metadata: { name: 'x' } }, 'default'), { code: 403 }, 'RBAC: nodes do not write configmaps');

  // Node authorizer: secrets only through pods bound to the node
  await s.admin.create(R.secrets, { metadata: { name: 'used' }, data: { k: 'dg==' } }, 'default');
  await s.admin.create(R.secrets, { metadata: { name: 'unused' }, data: { k: 'dg==' } }, 'default');
  await s.admin.create(R.serviceaccounts, { metadata: { name: 'app' } }, 'default');
  await s.admin.create(R.pods, { metadata: { name: 'on-n1' }, spec: { nodeName: 'n1', serviceAccountName: 'app', containers: [{ name: 'c', image: 'skiff/pause:3.9', envFrom: [{ secretRef: { name: 'used' } }] }] } }, 'default');
  t.equal((await kubelet.get(R.secrets, 'used', 'default')).metadata?.name, 'used', 'secret of a pod on the node');
  await t.rejects(kubelet.get(R.secrets, 'unused', 'default'), { code: 403, message: /no relationship/ });
  await t.rejects(kubelet.list(R.secrets, { namespace: 'default' }), { code: 403 }, 'nodes cannot list secrets');
  const tr = await kubelet.request('POST', '/api/v1/namespaces/default/serviceaccounts/app/token', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'on-n1' } } });
  t.equal(tr.status, 201, 'token for the SA of a pod on the node');
  const other = await kubelet.request('POST', '/api/v1/namespaces/default/serviceaccounts/default/token', { spec: {} }).catch((e: { code?: number }) => ({ status: e.code }));
  t.equal(other.status, 403, 'no token for an SA no pod on the node uses');
});
