import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AesGcmTransformer, loadEncryption, pruneEncryptionKeys, readEncryptionConfig, rewriteEncrypted, rotateEncryptionKey } from './encryption.js';
import { SqliteStore } from './sqlite.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'skiff-enc-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const SECRET = Buffer.from(JSON.stringify({ kind: 'Secret', data: { password: Buffer.from('hunter2-very-secret').toString('base64') }, stringData: 'plain-marker-xyz' }));

t.test('loadEncryption creates a 0600 key file once and round-trips secrets only', async (t) => {
  const dir = tmp(t);
  const tr = loadEncryption(dir);
  t.equal(statSync(join(dir, 'encryption.json')).mode & 0o777, 0o600);
  const again = loadEncryption(dir);
  const stored = tr.toStorage('secrets', SECRET);
  t.notOk(stored.includes('plain-marker-xyz'), 'no plaintext in stored value');
  t.notOk(stored.includes(Buffer.from('hunter2-very-secret').toString('base64')), 'no base64 plaintext either');
  t.match(stored.subarray(0, 18).toString(), 'k8s:enc:aesgcm:v1:');
  t.same(again.fromStorage('secrets', stored), SECRET, 'a reloaded transformer decrypts');
  t.same(tr.toStorage('configmaps', SECRET), SECRET, 'other resources pass through');
  t.not(tr.toStorage('secrets', SECRET).toString('hex'), stored.toString('hex'), 'fresh nonce per write');
});

t.test('tampering, wrong resource and unknown keys are refused', async (t) => {
  const dir = tmp(t);
  const tr = loadEncryption(dir);
  const stored = Buffer.from(tr.toStorage('secrets', SECRET));
  const flipped = Buffer.from(stored);
  flipped[flipped.length - 20] ^= 1;
  t.throws(() => tr.fromStorage('secrets', flipped), { code: 'ERR_ENCRYPTION_DECRYPT' });
  const other = new AesGcmTransformer({ resources: ['secrets'], keys: [{ name: 'other', secret: Buffer.alloc(32, 1).toString('base64') }] });
  t.throws(() => other.fromStorage('secrets', stored), { code: 'ERR_ENCRYPTION_UNKNOWN_KEY' });
  t.throws(() => new AesGcmTransformer({ resources: ['secrets'], keys: [{ name: 'short', secret: 'AAAA' }] }), { code: 'ERR_ENCRYPTION_KEY' });
  t.same(tr.fromStorage('secrets', SECRET), SECRET, 'legacy plaintext values still read');
});

t.test('rotation: old keys still decrypt, rewrite re-encrypts with the new key, prune drops the old one', async (t) => {
  const dir = tmp(t);
  const store = new SqliteStore(join(dir, 'state.db'));
  t.teardown(() => store.close());
  const v1 = loadEncryption(dir);
  const oldName = readEncryptionConfig(dir)!.keys[0].name;
  await store.create('/registry/secrets/default/a', v1.toStorage('secrets', SECRET));
  await store.create('/registry/secrets/default/b', v1.toStorage('secrets', SECRET));
  await store.create('/registry/secrets/default/legacy', SECRET); // written before encryption was on
  await store.create('/registry/configmaps/default/c', Buffer.from('cm'));

  const newName = rotateEncryptionKey(dir, 'key-new');
  const v2 = loadEncryption(dir);
  t.same(readEncryptionConfig(dir)!.keys.map((k) => k.name), [newName, oldName]);
  const a = (await store.get('/registry/secrets/default/a'))!;
  t.same(v2.fromStorage('secrets', a.value), SECRET, 'old key still decrypts after rotation');
  t.ok(v2.isStale('secrets', a.value));

  const n = await rewriteEncrypted(store, v2, 'secrets', '/registry/secrets/');
  t.equal(n, 3, 'two old-key values and one plaintext value rewritten');
  t.equal(await rewriteEncrypted(store, v2, 'secrets', '/registry/secrets/'), 0, 'rewrite is idempotent');
  for (const k of ['a', 'b', 'legacy']) {
    const kv = (await store.get(`/registry/secrets/default/${k}`))!;
    t.match(kv.value.subarray(0, 30).toString(), 'k8s:enc:aesgcm:v1:key-new:');
  }
  t.same((await store.get('/registry/configmaps/default/c'))!.value, Buffer.from('cm'));

  t.same(pruneEncryptionKeys(dir), [oldName]);
  const v3 = loadEncryption(dir);
  t.same(v3.fromStorage('secrets', (await store.get('/registry/secrets/default/legacy'))!.value), SECRET);
  t.throws(() => v3.fromStorage('secrets', a.value), { code: 'ERR_ENCRYPTION_UNKNOWN_KEY' }, 'pruned key no longer decrypts');

  const all = await store.list('/registry/secrets/');
  t.notOk(all.items.some((kv) => kv.value.includes('plain-marker-xyz')), 'no live value is plaintext after the rewrite');
});

t.test('with encryption on from the start the SQLite files never hold a secret in the clear', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'state.db');
  const store = new SqliteStore(file);
  t.teardown(() => store.close());
  const tr = loadEncryption(dir);
  await store.create('/registry/secrets/default/s', tr.toStorage('secrets', SECRET));
  await store.update('/registry/secrets/default/s', tr.toStorage('secrets', SECRET));
  await store.create('/registry/configmaps/default/c', Buffer.from('configmap-marker-abc'));
  const files = () => ['', '-wal'].map((suffix) => { try { return readFileSync(file + suffix); } catch { return Buffer.alloc(0); } });
  t.ok(files().some((b) => b.includes('configmap-marker-abc')), 'the grep itself finds unencrypted values (control)');
  t.notOk(files().some((b) => b.includes('plain-marker-xyz')), 'secret value not in db or WAL');
  await store.close();
  t.notOk(readFileSync(file).includes('plain-marker-xyz'), 'secret value not in the checkpointed db');
});
