import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import { findMatchingVolume, planVolume, provisionedVolume, type PvObj, type PvcObj } from './reconcile.js';
import { HostPathProvisioner } from './provisioner.js';
import { startVolumeController } from './controller.js';

const pv = (name: string, size: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = {}) =>
  ({ metadata: { name, labels }, spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: '/x' }, ...extra }, status: { phase: 'Available' } }) as PvObj;
const pvc = (name: string, size: string, extra: Record<string, unknown> = {}) =>
  ({ metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, storageClassName: 'manual', ...extra } }) as PvcObj;

t.test('matching: class, modes, capacity (smallest wins), selector, pre-bound', async (t) => {
  const vols = [pv('big', '10Gi'), pv('small', '2Gi'), pv('tiny', '500Mi'), pv('rox', '5Gi', { accessModes: ['ReadOnlyMany'] }), pv('other', '2Gi', { storageClassName: 'fast' })];
  t.equal(findMatchingVolume(pvc('c', '1Gi'), vols)?.metadata?.name, 'small');
  t.equal(findMatchingVolume(pvc('c', '3Gi'), vols)?.metadata?.name, 'big');
  t.equal(findMatchingVolume(pvc('c', '1Gi', { accessModes: ['ReadOnlyMany'] }), vols)?.metadata?.name, 'rox');
  t.equal(findMatchingVolume(pvc('c', '1Gi', { storageClassName: 'fast' }), vols)?.metadata?.name, 'other');
  t.equal(findMatchingVolume(pvc('c', '20Gi'), vols), undefined);
  const labelled = [...vols, pv('ssd', '8Gi', {}, { disk: 'ssd' })];
  t.equal(findMatchingVolume(pvc('c', '1Gi', { selector: { matchLabels: { disk: 'ssd' } } }), labelled)?.metadata?.name, 'ssd');
  const taken = pv('small', '2Gi', { claimRef: { namespace: 'default', name: 'someone', uid: 'u' } });
  t.equal(findMatchingVolume(pvc('c', '1Gi'), [taken, pv('big', '10Gi')])?.metadata?.name, 'big');
  const prebound = pv('pre', '10Gi', { claimRef: { namespace: 'default', name: 'c' } });
  t.equal(findMatchingVolume(pvc('c', '1Gi'), [pv('small', '2Gi'), prebound])?.metadata?.name, 'pre');
});

t.test('planVolume: reclaim policies', async (t) => {
  const bound = pv('v', '1Gi', { claimRef: { namespace: 'default', name: 'c', uid: 'uid-c' } });
  t.same(planVolume(bound, pvc('c', '1Gi', { volumeName: 'v' })), { action: 'bound' });
  t.same(planVolume(bound, undefined), { action: 'release' });
  t.same(planVolume({ ...bound, spec: { ...bound.spec, persistentVolumeReclaimPolicy: 'Delete' } } as PvObj, undefined), { action: 'delete' });
  t.same(planVolume({ ...bound, spec: { ...bound.spec, claimRef: { namespace: 'default', name: 'c' } } } as PvObj, undefined), { action: 'none' }, 'user pre-bound PV waits for its claim');
});

t.test('provisioned PVs are pinned to the node holding the directory', async (t) => {
  const sc = { metadata: { name: 'standard' }, provisioner: 'skiff.io/hostpath' };
  const claim = pvc('c', '1Gi', { storageClassName: 'standard' });
  t.notOk(provisionedVolume(claim, sc, '/data/volumes').spec?.nodeAffinity, 'no node: no affinity');
  t.same(provisionedVolume(claim, sc, '/data/volumes', 'host1').spec?.nodeAffinity?.required?.nodeSelectorTerms, [
    { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['host1'] }] },
  ]);
  t.equal(provisionedVolume(claim, sc, '/data/volumes').spec?.hostPath?.path, '/data/volumes/pvc-uid-c');
});

t.test('provisioner refuses paths outside its root', async (t) => {
  const p = new HostPathProvisioner('/tmp/skiff-nonexistent-root');
  await t.rejects(p.delete(pv('x', '1Gi', { hostPath: { path: '/etc' } })), { code: 'ERR_PROVISION_PATH' });
  await t.rejects(p.delete(pv('x', '1Gi', { hostPath: { path: '/tmp/skiff-nonexistent-root/volumes/../../etc' } })), { code: 'ERR_PROVISION_PATH' });
});

t.test('controller: default class, provisioning, binding, Retain and Delete reclaim', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-vol-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const client = new FakeApiClient();
  const { ctx, informers, recorder } = makeContext({ client, options: { dataDir } });
  const c = startVolumeController(ctx);
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  const sc = await eventually(() => client.get(R.storageclasses, 'standard'), 'default StorageClass');
  t.equal(sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
  // a claim without class gets the default, then a provisioned hostPath PV
  await client.create(R.persistentvolumeclaims, { metadata: { name: 'data', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } });
  const bound = await eventually(async () => {
    const x = await client.get<PvcObj>(R.persistentvolumeclaims, 'data', 'default');
    return x.status?.phase === 'Bound' ? x : undefined;
  }, 'claim bound');
  t.equal(bound.spec?.storageClassName, 'standard');
  const vol = await client.get<PvObj>(R.persistentvolumes, bound.spec!.volumeName!);
  t.equal(vol.spec?.claimRef?.uid, bound.metadata?.uid);
  t.equal((await eventually(async () => ((await client.get<PvObj>(R.persistentvolumes, vol.metadata!.name!)).status?.phase === 'Bound' ? 'ok' : undefined), 'pv bound')), 'ok');
  t.ok(existsSync(vol.spec!.hostPath!.path), 'directory made under the data dir');
  t.ok(vol.spec!.hostPath!.path.startsWith(join(dataDir, 'volumes')));
  t.same(bound.status?.capacity, { storage: '1Gi' });
  t.ok(recorder.events.some((e) => e.reason === 'ProvisioningSucceeded'));
  // reclaim Delete: removing the claim removes PV and directory
  await client.delete(R.persistentvolumeclaims, 'data', 'default');
  await eventually(async () => client.get(R.persistentvolumes, vol.metadata!.name!).then(() => false, () => true), 'provisioned PV deleted');
  t.notOk(existsSync(vol.spec!.hostPath!.path), 'directory removed');
  // a static PV with Retain: binds, then is Released
  await client.create(R.persistentvolumes, pv('static', '5Gi'));
  await client.create(R.persistentvolumeclaims, pvc('claim', '1Gi'));
  await eventually(async () => (await client.get<PvcObj>(R.persistentvolumeclaims, 'claim', 'default')).spec?.volumeName === 'static', 'static PV chosen');
  await client.delete(R.persistentvolumeclaims, 'claim', 'default');
  await eventually(async () => (await client.get<PvObj>(R.persistentvolumes, 'static')).status?.phase === 'Released', 'retained PV released');
  // no class and no match: Pending with an event
  await client.create(R.persistentvolumeclaims, pvc('nomatch', '1Gi', { storageClassName: 'gold' }));
  await eventually(() => recorder.events.find((e) => e.key === 'default/nomatch' && /storageclass.storage.k8s.io "gold" not found/.test(e.message)), 'FailedBinding event');
  t.equal((await client.get<PvcObj>(R.persistentvolumeclaims, 'nomatch', 'default')).status?.phase, 'Pending');
});
