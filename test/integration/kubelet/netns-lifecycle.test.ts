// The netns runtime (no Docker, no images: host processes in the pod's own netns) through the same
// lifecycle as the docker tests: network + status, probes, crash loop backoff, preStop + grace, adoption.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../../src/api/registry.js';
import { cidrContains, parseCidr } from '../../../src/kubelet/network/cidr.js';
import { getPod, isReady, podSpec, startTestNode, waitFor } from './harness.js';

const NS = { runtime: 'netns' as const };
const podNetns = async (dataDir: string, uid: string): Promise<string> => {
  const { readdir } = await import('node:fs/promises');
  const dir = join(dataDir, 'netns-runtime', 'sandboxes');
  for (const f of await readdir(dir)) {
    const r = JSON.parse(await readFile(join(dir, f), 'utf8')) as { podUid: string; netns: string };
    if (r.podUid === uid) return r.netns;
  }
  throw new Error(`no sandbox for ${uid}`);
};
const WEB = (dir: string) => ['sh', '-c', `d=${dir}/$POD_NAME; mkdir -p $d; echo "hello from $POD_NAME" > $d/index.html; exec busybox httpd -f -p 80 -h $d`];
const nameEnv = [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }];

t.test('netns runtime: pods get addresses from the node range, answer and reach each other', async (t) => {
  const node = await startTestNode(t, NS);
  const dir = await mkdtemp(join(tmpdir(), 'skiff-nsweb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const names = ['w0', 'w1', 'w2'];
  for (const n of names) {
    await node.client.create(R.pods, podSpec(n, node.nodeName, { containers: [{ name: 'web', image: 'host', command: WEB(dir), env: nameEnv, readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 } }] }), 'default');
  }
  const pods = await waitFor('ready', async () => {
    const ps = await Promise.all(names.map((n) => getPod(node.client, n)));
    return ps.every(isReady) ? ps : undefined;
  }, 30_000);
  const range = parseCidr(node.podCidr);
  for (const p of pods) t.ok(cidrContains(range, p.status!.podIP!), `${p.metadata!.name} has ${p.status!.podIP}`);
  for (const [i, p] of pods.entries()) {
    const r = await node.host.exec('curl', ['-s', '--max-time', '3', `http://${p.status!.podIP}/`]);
    t.equal(r.stdout.trim(), `hello from ${names[i]}`, `node reaches ${names[i]}`);
  }
  const ns0 = await podNetns(node.dataDir, pods[0].metadata!.uid!);
  const r = await node.host.exec('ip', ['netns', 'exec', ns0, 'curl', '-s', '--max-time', '3', `http://${pods[1].status!.podIP}/`]);
  t.equal(r.stdout.trim(), 'hello from w1', 'pod reaches pod');
  t.equal(pods[0].status?.containerStatuses?.[0]?.containerID?.startsWith('netns://'), true);
});

t.test('netns runtime: liveness restarts, readiness gates Ready, crash loop backs off', async (t) => {
  const node = await startTestNode(t, NS);
  const flag = await mkdtemp(join(tmpdir(), 'skiff-nsflag-'));
  t.teardown(() => rm(flag, { recursive: true, force: true }));
  await node.client.create(R.pods, podSpec('live', node.nodeName, { containers: [{ name: 'c', image: 'host', command: ['sleep', '600'],
    livenessProbe: { exec: { command: ['test', '-f', `${flag}/alive`] }, periodSeconds: 1, failureThreshold: 2 },
    readinessProbe: { exec: { command: ['test', '-f', `${flag}/ready`] }, periodSeconds: 1, failureThreshold: 1 } }] }), 'default');
  await node.client.create(R.pods, podSpec('crash', node.nodeName, { containers: [{ name: 'c', image: 'host', command: ['sh', '-c', 'exit 4'] }] }), 'default');
  const { writeFile, unlink } = await import('node:fs/promises');
  await writeFile(join(flag, 'alive'), '');
  await waitFor('live running', async () => (await getPod(node.client, 'live')).status?.containerStatuses?.[0]?.state?.running);
  t.notOk(isReady(await getPod(node.client, 'live')), 'not ready yet');
  await writeFile(join(flag, 'ready'), '');
  await waitFor('Ready', async () => isReady(await getPod(node.client, 'live')));
  await unlink(join(flag, 'alive'));
  await waitFor('liveness restart', async () => ((await getPod(node.client, 'live')).status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 30_000);
  let p: Pod | undefined;
  await waitFor('CrashLoopBackOff', async () => {
    p = await getPod(node.client, 'crash');
    return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff' && (p.status.containerStatuses[0].restartCount ?? 0) >= 2;
  }, 30_000, 50);
  t.equal(p!.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 4);
});

t.test('netns runtime: preStop + grace on delete, adoption after a kubelet restart', async (t) => {
  const node = await startTestNode(t, NS);
  const out = await mkdtemp(join(tmpdir(), 'skiff-nsout-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await node.client.create(R.pods, podSpec('keep', node.nodeName, { containers: [{ name: 'c', image: 'host', command: ['sleep', '600'] }] }), 'default');
  await node.client.create(R.pods, podSpec('stop', node.nodeName, { terminationGracePeriodSeconds: 2, containers: [{ name: 'c', image: 'host',
    command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'], lifecycle: { preStop: { exec: { command: ['sh', '-c', `echo ran > ${out}/prestop`] } } } }] }), 'default');
  const keep = await waitFor('keep ready', async () => { const p = await getPod(node.client, 'keep'); return isReady(p) ? p : undefined; });
  await waitFor('stop running', async () => (await getPod(node.client, 'stop')).status?.containerStatuses?.[0]?.state?.running);
  await node.restart();
  await new Promise((r) => setTimeout(r, 2500));
  const again = await getPod(node.client, 'keep');
  t.equal(again.status?.containerStatuses?.[0]?.containerID, keep.status?.containerStatuses?.[0]?.containerID, 'same process adopted');
  t.equal(again.status?.podIP, keep.status?.podIP, 'same IP');
  t.equal(again.status?.containerStatuses?.[0]?.restartCount, 0);
  const uid = (await getPod(node.client, 'stop')).metadata!.uid!;
  const t0 = Date.now();
  await node.client.patch(R.pods, 'stop', { metadata: { finalizers: ['test/hold'], deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 2 } }, { namespace: 'default' });
  await waitFor('kubelet finished the deletion', async () => node.client.writes.some((w) => w.verb === 'delete' && w.key === 'default/stop'), 30_000, 100);
  t.ok(Date.now() - t0 >= 1500, 'the TERM-ignoring process got its grace period');
  t.equal((await readFile(join(out, 'prestop'), 'utf8')).trim(), 'ran', 'preStop ran');
  await t.rejects(podNetns(node.dataDir, uid), 'sandbox of the deleted pod is gone');
});
