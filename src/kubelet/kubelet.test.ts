import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { FakeApiClient } from '../client/fake.js';
import { FakeHost } from '../host/host.js';
import { R } from '../api/registry.js';
import { startKubelet } from './index.js';
import { FakeRuntime } from './runtime/fake.js';
import { FakePodNetwork } from './network/fake.js';
import type { Kube } from './kube.js';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup(t: { teardown(fn: () => unknown): void }, seed?: (c: FakeApiClient, rt: FakeRuntime) => Promise<void>) {
  const client = new FakeApiClient();
  const runtime = new FakeRuntime();
  const network = new FakePodNetwork('10.244.5.0/24');
  const dataDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-unit-'));
  await client.create(R.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDR: '10.244.5.0/24' } });
  await seed?.(client, runtime);
  const k = await startKubelet({ client, host: new FakeHost(), nodeName: 'n1', nodeIP: '192.0.2.1', dataDir, serverPort: 0, runtimeImpl: runtime, networkImpl: network, resyncMs: 100, restartBackoffMs: { initial: 300, max: 1200 } });
  t.teardown(async () => { await k.stop(); await rm(dataDir, { recursive: true, force: true }); });
  const get = (name: string) => client.get<Kube<Pod>>(R.pods, name, 'default');
  const create = (name: string, spec: Partial<Pod['spec']> & object, meta: object = {}) =>
    client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', ...meta }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'skiff/busybox:1.36' }], ...spec } } as Kube<Pod>, 'default');
  return { client, runtime, network, get, create };
}

t.test('runs a pod: sandbox, address from the node range, Running + Ready status', async (t) => {
  const { runtime, network, get, create } = await setup(t);
  const pod = await create('a', {});
  const p = await waitFor('ready', async () => { const p = await get('a'); return p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? p : undefined; });
  t.equal(p.status?.phase, 'Running');
  t.equal(p.status?.podIP, '10.244.5.2');
  t.equal(network.attached.get(pod.metadata!.uid!)?.ip, '10.244.5.2');
  t.equal(runtime.sandboxes.size, 1);
  t.match(p.status?.containerStatuses?.[0], { name: 'c', ready: true, started: true, restartCount: 0, state: { running: {} }, containerID: /^fake:\/\// });
});

t.test('pods of other nodes are ignored', async (t) => {
  const { runtime, create } = await setup(t);
  await create('elsewhere', { nodeName: 'n2' });
  await create('here', {});
  await waitFor('here started', async () => runtime.containers.size === 1);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(runtime.sandboxes.size, 1, 'only the pod bound to this node');
});

t.test('crash -> restart with CrashLoopBackOff, OnFailure and Never', async (t) => {
  const { runtime, get, create } = await setup(t);
  const a = await create('always', {});
  const uid = a.metadata!.uid!;
  for (let i = 0; i < 3; i++) {
    const c = await waitFor(`running #${i}`, async () => runtime.running(uid, 'c'));
    runtime.exit(c.id, 2);
  }
  const p = await waitFor('CrashLoopBackOff', async () => { const p = await get('always'); return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff' ? p : undefined; });
  t.equal(p.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 2);
  t.ok((p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2);
  const n = await create('never', { restartPolicy: 'Never' });
  runtime.exit((await waitFor('never running', async () => runtime.running(n.metadata!.uid!, 'c'))).id, 0);
  await waitFor('Succeeded', async () => (await get('never')).status?.phase === 'Succeeded');
  t.equal([...runtime.containers.values()].filter((c) => c.podUid === n.metadata!.uid).length, 1, 'not restarted');
  t.equal([...runtime.sandboxes.values()].filter((s) => s.podUid === n.metadata!.uid).length, 0, 'sandbox released');
  const f = await create('onfail', { restartPolicy: 'OnFailure' });
  runtime.exit((await waitFor('onfail running', async () => runtime.running(f.metadata!.uid!, 'c'))).id, 0, false);
  await waitFor('Succeeded (exit 0 under OnFailure)', async () => (await get('onfail')).status?.phase === 'Succeeded');
  t.pass('OnFailure does not restart a clean exit');
});

t.test('image pulls: ErrImagePull/ImagePullBackOff, pull secrets', async (t) => {
  const { client, runtime, get, create } = await setup(t);
  runtime.pullable.set('reg.local:5000/app:1', 'reg.local:5000');
  await create('nosecret', { containers: [{ name: 'c', image: 'reg.local:5000/app:1' }] });
  const seen = new Set<string>();
  await waitFor('ImagePullBackOff', async () => {
    const r = (await get('nosecret')).status?.containerStatuses?.[0]?.state?.waiting;
    if (r?.reason) seen.add(r.reason);
    return r?.reason === 'ImagePullBackOff';
  });
  const reasons = client.writes.filter((w) => w.key === 'default/nosecret' && w.verb === 'update/status')
    .map((w) => (w.obj?.status as Pod['status'])?.containerStatuses?.[0]?.state?.waiting?.reason);
  t.ok(reasons.includes('ErrImagePull'), 'ErrImagePull was reported first');
  t.ok(seen.size > 0);
  t.match((await get('nosecret')).status?.containerStatuses?.[0]?.state?.waiting?.message, /no basic auth credentials/);
  const cfg = JSON.stringify({ auths: { 'reg.local:5000': { auth: Buffer.from('u:p').toString('base64') } } });
  await client.create(R.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'regcred', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(cfg).toString('base64') } }, 'default');
  await create('withsecret', { containers: [{ name: 'c', image: 'reg.local:5000/app:1' }], imagePullSecrets: [{ name: 'regcred' }] });
  await waitFor('pulled with the secret', async () => (await get('withsecret')).status?.containerStatuses?.[0]?.state?.running);
  t.pass('imagePullSecrets reach the runtime');
});

t.test('init containers run in order before app containers', async (t) => {
  const { runtime, get, create } = await setup(t);
  const p = await create('init', { initContainers: [{ name: 'i1', image: 'skiff/busybox:1.36' }, { name: 'i2', image: 'skiff/busybox:1.36' }] });
  const uid = p.metadata!.uid!;
  const i1 = await waitFor('i1', async () => runtime.running(uid, 'i1'));
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(runtime.running(uid, 'i2'), 'i2 waits for i1');
  t.equal((await get('init')).status?.containerStatuses?.[0]?.state?.waiting?.reason, 'PodInitializing');
  runtime.exit(i1.id, 0);
  const i2 = await waitFor('i2', async () => runtime.running(uid, 'i2'));
  t.notOk(runtime.running(uid, 'c'), 'app waits for init');
  runtime.exit(i2.id, 0);
  await waitFor('app', async () => runtime.running(uid, 'c'));
  await waitFor('Initialized', async () => (await get('init')).status?.conditions?.find((c) => c.type === 'Initialized')?.status === 'True');
  t.pass();
});

t.test('graceful deletion: preStop, grace period, final delete', async (t) => {
  const { client, runtime, get, create } = await setup(t);
  const execs: string[][] = [];
  runtime.execHandler = (_c, cmd) => { execs.push(cmd); return { exitCode: 0, stdout: '', stderr: '' }; };
  const p = await create('del', { terminationGracePeriodSeconds: 7, containers: [{ name: 'c', image: 'skiff/busybox:1.36', lifecycle: { preStop: { exec: { command: ['pre', 'stop'] } } } }] }, { finalizers: ['test/hold'] });
  const c = await waitFor('running', async () => runtime.running(p.metadata!.uid!, 'c'));
  await client.patch(R.pods, 'del', { metadata: { deletionTimestamp: new Date().toISOString(), deletionGracePeriodSeconds: 7 } }, { namespace: 'default' });
  await waitFor('deleted by the kubelet', async () => client.writes.some((w) => w.verb === 'delete' && w.key === 'default/del'));
  t.same(execs, [['pre', 'stop']], 'preStop ran');
  t.ok(runtime.stops.some((s) => s.id === c.id && s.grace >= 6 && s.grace <= 7), 'stopped with the grace period');
  t.equal(runtime.containers.size, 0, 'containers removed');
  t.equal(runtime.sandboxes.size, 0, 'sandbox removed');
  t.ok(await get('del'));
});

t.test('at start, containers of pods that no longer exist are removed', async (t) => {
  const { runtime } = await setup(t, async (_c, rt) => {
    const sb = await rt.runSandbox({ podUid: 'ghost', podName: 'g', namespace: 'default', hostname: 'g' });
    await rt.startContainer(await rt.createContainer(sb, { name: 'c', role: 'app', image: 'skiff/busybox:1.36', command: [], args: [], overrideEntrypoint: false, env: [], mounts: [], tty: false, stdin: false, stdinOnce: false, attempt: 0, cpuLimitMilli: 0, cpuRequestMilli: 0, memoryLimitBytes: 0 }));
  });
  t.equal(runtime.containers.size, 0);
  t.equal(runtime.sandboxes.size, 0);
});

t.test('readiness and liveness probes (exec)', async (t) => {
  const { runtime, get, create } = await setup(t);
  let ready = false;
  let alive = true;
  runtime.execHandler = (_c, cmd) => ({ exitCode: (cmd[0] === 'ready' ? ready : alive) ? 0 : 1, stdout: '', stderr: '' });
  const p = await create('probed', { containers: [{ name: 'c', image: 'skiff/busybox:1.36',
    readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1, failureThreshold: 1 },
    livenessProbe: { exec: { command: ['alive'] }, periodSeconds: 1, failureThreshold: 2 } }] });
  await waitFor('running', async () => runtime.running(p.metadata!.uid!, 'c'));
  t.equal((await get('probed')).status?.containerStatuses?.[0]?.ready, false, 'readiness starts false');
  ready = true;
  await waitFor('ready', async () => (await get('probed')).status?.containerStatuses?.[0]?.ready);
  alive = false;
  await waitFor('restarted by liveness', async () => ((await get('probed')).status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 15_000);
  t.pass();
});

t.test('service links come from the service cache: a Service added later reaches the next container started', async (t) => {
  const { client, runtime, create } = await setup(t);
  const svc = (name: string, ns: string, ip: string) => client.create(R.services, { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns },
    spec: { clusterIP: ip, ports: [{ port: 80, protocol: 'TCP' }] } }, ns);
  await svc('web', 'default', '10.96.0.20');
  await svc('other', 'elsewhere', '10.96.0.30');
  const envOf = (uid: string) => new Map([...runtime.containers.values()].find((c) => c.podUid === uid)?.config.env ?? []);
  const a = await create('a', {});
  await waitFor('a started', async () => runtime.running(a.metadata!.uid!, 'c'));
  t.equal(envOf(a.metadata!.uid!).get('WEB_SERVICE_HOST'), '10.96.0.20', 'a Service of the namespace');
  t.notOk(envOf(a.metadata!.uid!).has('OTHER_SERVICE_HOST'), 'not one of another namespace');
  await svc('late', 'default', '10.96.0.40');
  const b = await create('b', {});
  await waitFor('b started', async () => runtime.running(b.metadata!.uid!, 'c'));
  t.equal(envOf(b.metadata!.uid!).get('LATE_SERVICE_HOST'), '10.96.0.40', 'the cache follows new Services');
  const c = await create('c', { enableServiceLinks: false });
  await waitFor('c started', async () => runtime.running(c.metadata!.uid!, 'c'));
  t.notOk(envOf(c.metadata!.uid!).has('WEB_SERVICE_HOST'), 'enableServiceLinks: false');
});
