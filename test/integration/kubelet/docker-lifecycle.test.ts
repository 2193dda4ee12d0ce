// Docker runtime lifecycle: probes, crash loop back-off, image pull back-off, OOM kill.
import t from 'tap';
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

t.test('a failing liveness probe restarts the container', async (t) => {
  const node = await startTestNode(t);
  await node.client.create(R.pods, podSpec('live', node.nodeName, {
    containers: [{ name: 'c', image: BB, command: ['sh', '-c', 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 600'],
      livenessProbe: { exec: { command: ['test', '-f', '/tmp/healthy'] }, periodSeconds: 1, failureThreshold: 1 } }],
  }), 'default');
  const p = await waitFor('restart after liveness failure', async () => {
    const p = await getPod(node.client, 'live');
    return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
  }, 40_000);
  t.ok(p.status!.containerStatuses![0].lastState?.terminated, 'lastState shows the killed instance');
});

t.test('readiness gates the Ready condition', async (t) => {
  const node = await startTestNode(t);
  await node.client.create(R.pods, podSpec('ready', node.nodeName, {
    containers: [{ name: 'c', image: BB, command: ['sleep', '600'], readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 1 } }],
  }), 'default');
  const running = await waitFor('running', async () => {
    const p = await getPod(node.client, 'ready');
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  });
  await new Promise((r) => setTimeout(r, 1500));
  t.notOk(isReady(await getPod(node.client, 'ready')), 'not Ready while the probe fails');
  await dexec(cid(running), 'touch', '/tmp/ready');
  await waitFor('Ready', async () => isReady(await getPod(node.client, 'ready')));
  t.equal((await getPod(node.client, 'ready')).status?.containerStatuses?.[0]?.ready, true);
  await dexec(cid(running), 'rm', '/tmp/ready');
  await waitFor('not Ready again', async () => !isReady(await getPod(node.client, 'ready')));
  t.pass('readiness toggles Ready both ways');
});

t.test('a crashing container goes to CrashLoopBackOff with growing delays', async (t) => {
  const node = await startTestNode(t, { restartBackoffMs: { initial: 1000, max: 8000 } });
  await node.client.create(R.pods, podSpec('crash', node.nodeName, { containers: [{ name: 'c', image: BB, command: ['sh', '-c', 'exit 3'] }] }), 'default');
  const delays = new Set<number>();
  let last: Pod | undefined;
  let fourthAt = 0;
  const t0 = Date.now();
  await waitFor('4 restarts and an 8 s back-off', async () => {
    last = await getPod(node.client, 'crash');
    const cs = last.status?.containerStatuses?.[0];
    const m = /^back-off (\d+)s restarting failed container=c pod=crash_default/.exec(cs?.state?.waiting?.message ?? '');
    if (cs?.state?.waiting?.reason === 'CrashLoopBackOff' && m) delays.add(Number(m[1]));
    if (!fourthAt && (cs?.restartCount ?? 0) >= 4) fourthAt = Date.now();
    return (cs?.restartCount ?? 0) >= 4 && delays.has(8);
  }, 90_000, 50);
  t.equal(last!.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 3, 'lastState carries exit code 3');
  t.equal(last!.status?.phase, 'Running', 'restartPolicy Always keeps the pod Running');
  // the back-off starts at 1 s; reaching 8 s takes three doublings, and the 4th restart cannot
  // come before 1 + 2 + 4 s of back-off (a lower bound: load only makes it later)
  t.ok(delays.has(8), `CrashLoopBackOff delay grew to the 8 s cap (seen: ${[...delays].sort((a, b) => a - b).join(', ')} s)`);
  t.ok(fourthAt - t0 >= 7000, `4th restart only after 1+2+4 s of back-off (${fourthAt - t0} ms)`);
});

t.test('a missing image shows ErrImagePull then ImagePullBackOff with the runtime message', async (t) => {
  const node = await startTestNode(t);
  await node.client.create(R.pods, podSpec('noimg', node.nodeName, { containers: [{ name: 'c', image: '127.0.0.1:5999/x:1' }] }), 'default');
  const reasons = new Set<string>();
  const p = await waitFor('ImagePullBackOff', async () => {
    const p = await getPod(node.client, 'noimg');
    const w = p.status?.containerStatuses?.[0]?.state?.waiting;
    if (w?.reason) reasons.add(w.reason);
    return w?.reason === 'ImagePullBackOff' && reasons.has('ErrImagePull') ? p : undefined;
  }, 30_000, 50);
  t.equal(p.status?.phase, 'Pending');
  t.match(p.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /127\.0\.0\.1:5999/, 'message names the image');
});

t.test('a memory hog is OOMKilled', async (t) => {
  const node = await startTestNode(t);
  await node.client.create(R.pods, podSpec('hog', node.nodeName, {
    restartPolicy: 'Never',
    containers: [{ name: 'c', image: BB, command: ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while :; do x="$x$x"; done'], resources: { limits: { memory: '16Mi', cpu: '500m' } } }],
  }), 'default');
  const p = await waitFor('terminated', async () => {
    const p = await getPod(node.client, 'hog');
    return p.status?.containerStatuses?.[0]?.state?.terminated ? p : undefined;
  }, 60_000);
  t.equal(p.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'OOMKilled');
  t.equal(p.status?.phase, 'Failed', 'restartPolicy Never: the pod fails');
  t.equal(p.status?.qosClass, 'Guaranteed', 'limits only: requests default to limits');
});

