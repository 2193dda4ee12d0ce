// Docker runtime: env + init containers + configMap/secret volumes, preStop and grace, adoption after restart.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../../src/api/registry.js';
import { dockerAvailable, getPod, isReady, podSpec, startTestNode, waitFor } from './harness.js';

const BB = 'skiff/busybox:1.36';
const cid = (p: Pod, i = 0): string => (p.status?.containerStatuses?.[i]?.containerID ?? '').replace('docker://', '');
const dexec = async (id: string, ...cmd: string[]) => String((await execa('docker', ['exec', id, ...cmd], { reject: false })).stdout).trim();

t.before(async () => {
  if (!(await dockerAvailable())) throw new Error('docker with skiff/busybox:1.36 and skiff/pause:3.9 is required (scripts/images.sh)');
});

t.test('env, init containers and configMap/secret volumes (updates reach the running pod)', async (t) => {
  const node = await startTestNode(t);
  const c = node.client;
  await c.create(R.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'default' }, data: { greeting: 'v1', MODE: 'fast' } }, 'default');
  await c.create(R.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sec', namespace: 'default' }, data: { password: Buffer.from('s3cret').toString('base64') } }, 'default');
  await c.create(R.pods, podSpec('cfg', node.nodeName, {
    initContainers: [{ name: 'init', image: BB, command: ['sh', '-c', 'echo from-init > /work/init.txt'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
    containers: [{
      name: 'c', image: BB, command: ['sleep', '600'],
      envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CM_' }],
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'PASS', valueFrom: { secretKeyRef: { name: 'sec', key: 'password' } } },
        { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        { name: 'COMBO', value: '$(POD_NAME)-x' },
      ],
      resources: { limits: { memory: '64Mi' } },
      volumeMounts: [{ name: 'cm', mountPath: '/cfg' }, { name: 'sec', mountPath: '/sec' }, { name: 'work', mountPath: '/work' }],
    }],
    volumes: [{ name: 'cm', configMap: { name: 'cfg' } }, { name: 'sec', secret: { secretName: 'sec' } }, { name: 'work', emptyDir: {} }],
  }), 'default');
  const p = await waitFor('running', async () => {
    const p = await getPod(c, 'cfg');
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, 40_000);
  t.equal(p.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0, 'init container completed');
  const id = cid(p);
  const env = await dexec(id, 'env');
  t.match(env, /CM_MODE=fast/);
  t.match(env, /POD_NAME=cfg/);
  t.match(env, new RegExp(`POD_IP=${p.status!.podIP!.replace(/\./g, '\\.')}`));
  t.match(env, /PASS=s3cret/);
  t.match(env, /MEM=64/);
  t.match(env, /COMBO=cfg-x/);
  t.equal(await dexec(id, 'cat', '/work/init.txt'), 'from-init', 'init container ran first, sharing the emptyDir');
  t.equal(await dexec(id, 'cat', '/cfg/greeting'), 'v1');
  t.equal(await dexec(id, 'cat', '/sec/password'), 's3cret');
  await c.patch(R.configmaps, 'cfg', { data: { greeting: 'v2', MODE: 'fast' } }, { namespace: 'default' });
  await c.patch(R.secrets, 'sec', { data: { password: Buffer.from('n3w').toString('base64') } }, { namespace: 'default' });
  await waitFor('configMap update visible', async () => (await dexec(id, 'cat', '/cfg/greeting')) === 'v2');
  await waitFor('secret update visible', async () => (await dexec(id, 'cat', '/sec/password')) === 'n3w');
  t.pass('volume updates reached the running container');
});

t.test('preStop runs and the grace period is honoured on delete', async (t) => {
  const node = await startTestNode(t);
  const dir = await mkdtemp(join(tmpdir(), 'skiff-prestop-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await node.client.create(R.pods, podSpec('stop', node.nodeName, {
    terminationGracePeriodSeconds: 3,
    containers: [{
      name: 'c', image: BB, command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
      lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo prestop-ran > /out/prestop'] } } },
      volumeMounts: [{ name: 'out', mountPath: '/out' }],
    }],
    volumes: [{ name: 'out', hostPath: { path: dir, type: 'Directory' } }],
  }), 'default');
  await waitFor('running', async () => (await getPod(node.client, 'stop')).status?.containerStatuses?.[0]?.state?.running);
  const t0 = Date.now();
  // graceful deletion as the apiserver does it: deletionTimestamp + grace, object kept (the finalizer
  // stands in for the API's grace window: FakeApiClient removes finalizer-less objects at once)
  const uid = (await getPod(node.client, 'stop')).metadata!.uid!;
  await node.client.patch(R.pods, 'stop', { metadata: { finalizers: ['test/hold'], deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 3 } }, { namespace: 'default' });
  await waitFor('containers gone', async () => String((await execa('docker', ['ps', '-aq', '--filter', `label=io.skiff.pod-uid=${uid}`])).stdout).trim() === '', 30_000, 100);
  const took = Date.now() - t0;
  await waitFor('kubelet finishes the deletion', () => node.client.writes.some((w) => w.verb === 'delete' && w.resource === 'pods' && w.key === 'default/stop'));
  t.equal((await readFile(join(dir, 'prestop'), 'utf8')).trim(), 'prestop-ran', 'preStop hook ran');
  t.ok(took >= 2500, `a TERM-ignoring container was given its grace period (${took} ms)`);
});

t.test('a restarted kubelet adopts its pods: same containers, same IPs, no duplicates', async (t) => {
  const node = await startTestNode(t);
  for (const name of ['a', 'b']) {
    await node.client.create(R.pods, podSpec(name, node.nodeName, { containers: [{ name: 'c', image: BB, command: ['sleep', '600'] }] }), 'default');
  }
  const before = await waitFor('both running', async () => {
    const ps = await Promise.all(['a', 'b'].map((n) => getPod(node.client, n)));
    return ps.every((p) => isReady(p)) ? ps : undefined;
  });
  await node.restart();
  await new Promise((r) => setTimeout(r, 3000)); // three resync periods of the new kubelet
  const after = await Promise.all(['a', 'b'].map((n) => getPod(node.client, n)));
  for (const [i, p] of after.entries()) {
    t.equal(cid(p), cid(before[i]), `${p.metadata?.name}: same container`);
    t.equal(p.status?.podIP, before[i].status?.podIP, `${p.metadata?.name}: same IP`);
    t.equal(p.status?.containerStatuses?.[0]?.restartCount, 0);
  }
  const ids = String((await execa('docker', ['ps', '-aq', '--filter', `label=io.skiff.node=${node.nodeName}`])).stdout).split('\n').filter(Boolean);
  t.equal(ids.length, 4, 'two sandboxes + two containers, no duplicates');
  await node.client.create(R.pods, podSpec('c', node.nodeName, { containers: [{ name: 'c', image: BB, command: ['sleep', '600'] }] }), 'default');
  const c = await waitFor('new pod', async () => { const p = await getPod(node.client, 'c'); return p.status?.podIP ? p : undefined; });
  t.notOk(after.some((p) => p.status?.podIP === c.status?.podIP), 'a new pod never gets a live address');
});
