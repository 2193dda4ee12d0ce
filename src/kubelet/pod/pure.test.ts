import t from 'tap';
import type { Container, Pod, Service } from 'kubernetes-types/core/v1.js';
import { renderResolvConf, renderHosts } from './dns.js';
import { renderEnv, serviceEnv } from './env.js';
import { parseQuantity, milliCpu } from './quantity.js';
import { qosClass, podPhase, renderContainerStatus, renderPodStatus, type PodView, type ContainerView } from './status.js';
import { Backoff } from './backoff.js';
import { pullPolicy, shouldRestart } from './worker.js';
import { renderCreateArgs, mergeDockerConfigs } from '../runtime/docker-cli.js';
import { exitStatus } from '../streaming/channel.js';
import { podUpdateNeedsSync } from '../index.js';
import type { ContainerInfo } from '../runtime/types.js';

const pod = (spec: Partial<Pod['spec']> = {}, meta: Partial<Pod['metadata']> = {}): Pod => ({ metadata: { name: 'p', namespace: 'ns1', uid: 'u1', labels: { app: 'x' }, ...meta }, spec: { containers: [{ name: 'c', image: 'i' }], ...spec } as Pod['spec'] });
const dns = { clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local', hostResolvConf: 'nameserver 1.1.1.1\nsearch corp.example\noptions edns0\n' };

t.test('resolv.conf per dnsPolicy', async (t) => {
  t.equal(renderResolvConf(pod(), dns), 'search ns1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  t.equal(renderResolvConf(pod({ dnsPolicy: 'Default' }), dns), 'search corp.example\nnameserver 1.1.1.1\noptions edns0\n');
  t.equal(renderResolvConf(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'], searches: ['a.b'], options: [{ name: 'ndots', value: '2' }, { name: 'rotate' }] } }), dns),
    'search a.b\nnameserver 9.9.9.9\noptions ndots:2 rotate\n');
  t.match(renderResolvConf(pod({ dnsConfig: { options: [{ name: 'ndots', value: '1' }] } }), dns), /options ndots:1\n$/, 'dnsConfig overrides ndots');
});

t.test('hosts file with hostname and subdomain FQDN', async (t) => {
  t.match(renderHosts(pod(), '10.244.0.5', 'cluster.local'), /\n10\.244\.0\.5\tp\n$/);
  t.match(renderHosts(pod({ hostname: 'web-0', subdomain: 'web', hostAliases: [{ ip: '1.2.3.4', hostnames: ['foo', 'bar'] }] }), '10.244.0.5', 'cluster.local'),
    /10\.244\.0\.5\tweb-0\.web\.ns1\.svc\.cluster\.local\tweb-0\n1\.2\.3\.4\tfoo\tbar\n$/);
});

t.test('env: service links, envFrom, fieldRef, resourceFieldRef, expansion, missing refs', async (t) => {
  const svc: Service = { metadata: { name: 'my-db' }, spec: { clusterIP: '10.96.0.20', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] } };
  const c: Container = {
    name: 'c', image: 'i',
    envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'X_' }, { secretRef: { name: 's' } }],
    env: [
      { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.labels[\'app\']' } } },
      { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
      { name: 'E', value: '$(N)-$(UNKNOWN)-$$(N)' },
    ],
    resources: { requests: { cpu: '250m' } },
  };
  const env = new Map(renderEnv(pod(), c, { configMaps: new Map([['cm', { data: { a: '1' } }]]), secrets: new Map([['s', { data: { tok: Buffer.from('t0k').toString('base64') } }]]), services: [svc], podIP: '10.0.0.1', hostIP: '192.0.2.1' }));
  t.equal(env.get('MY_DB_SERVICE_HOST'), '10.96.0.20');
  t.equal(env.get('MY_DB_PORT_5432_TCP'), 'tcp://10.96.0.20:5432');
  t.equal(env.get('MY_DB_SERVICE_PORT_PG'), '5432');
  t.equal(env.get('X_a'), '1');
  t.equal(env.get('tok'), 't0k');
  t.equal(env.get('N'), 'x');
  t.equal(env.get('CPU'), '250');
  t.equal(env.get('E'), 'x-$(UNKNOWN)-$(N)');
  const noLinks = renderEnv(pod({ enableServiceLinks: false }), { name: 'c' }, { configMaps: new Map(), secrets: new Map(), services: [svc], podIP: '', hostIP: '' });
  t.same(noLinks, [], 'enableServiceLinks: false');
  t.throws(() => renderEnv(pod(), { name: 'c', env: [{ name: 'Q', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }] }, { configMaps: new Map(), secrets: new Map(), services: [], podIP: '', hostIP: '' }), { code: 'ERR_CREATE_CONFIG' });
  t.same(serviceEnv([{ metadata: { name: 'h' }, spec: { clusterIP: 'None', ports: [{ port: 1 }] } }]), [], 'headless services have no links');
});

t.test('quantities and QoS', async (t) => {
  t.equal(parseQuantity('128Mi'), 128 * 1024 * 1024);
  t.equal(parseQuantity('1G'), 1e9);
  t.equal(milliCpu('1.5'), 1500);
  t.equal(milliCpu('100m'), 100);
  t.equal(qosClass(pod()), 'BestEffort');
  t.equal(qosClass(pod({ containers: [{ name: 'c', resources: { limits: { cpu: '1', memory: '1Gi' } } }] })), 'Guaranteed');
  t.equal(qosClass(pod({ containers: [{ name: 'c', resources: { requests: { cpu: '1' } } }] })), 'Burstable');
  t.equal(qosClass(pod({ containers: [{ name: 'c', resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } } }] })), 'Burstable');
});

const info = (o: Partial<ContainerInfo>): ContainerInfo => ({ id: 'x', podUid: 'u1', name: 'c', role: 'app', attempt: 0, image: 'i', imageId: 'sha', state: 'running', exitCode: 0, oomKilled: false, createdAt: 1, startedAt: 1000, finishedAt: 0, ...o });
const view = (o: Partial<ContainerView>): ContainerView => ({ name: 'c', image: 'i', final: false, ready: false, started: false, ...o });
const pv = (app: ContainerView[], o: Partial<PodView> = {}): PodView => ({ init: [], app, podIP: '10.0.0.2', hostIP: '192.0.2.1', initDone: true, initFailed: false, runtime: 'docker', ...o });

t.test('container status and phase', async (t) => {
  const crash = renderContainerStatus(view({ latest: info({ state: 'exited', exitCode: 3, attempt: 2, finishedAt: 2000 }), waiting: { reason: 'CrashLoopBackOff', message: 'back-off' } }), 'docker');
  t.equal(crash.state?.waiting?.reason, 'CrashLoopBackOff');
  t.equal(crash.lastState?.terminated?.exitCode, 3);
  t.equal(crash.restartCount, 2);
  const oom = renderContainerStatus(view({ latest: info({ state: 'exited', exitCode: 137, oomKilled: true }), final: true }), 'docker');
  t.equal(oom.state?.terminated?.reason, 'OOMKilled');
  t.equal(renderContainerStatus(view({}), 'docker').state?.waiting?.reason, 'ContainerCreating');
  t.equal(podPhase(pod(), pv([view({})])), 'Pending');
  t.equal(podPhase(pod(), pv([view({ latest: info({}) })])), 'Running');
  t.equal(podPhase(pod({ restartPolicy: 'Never' }), pv([view({ latest: info({ state: 'exited', exitCode: 0 }), final: true })])), 'Succeeded');
  t.equal(podPhase(pod({ restartPolicy: 'Never' }), pv([view({ latest: info({ state: 'exited', exitCode: 1 }), final: true })])), 'Failed');
  t.equal(podPhase(pod(), pv([view({ latest: info({ state: 'exited', exitCode: 1 }) })])), 'Running', 'Always: restarting is Running');
  t.equal(podPhase(pod(), pv([view({})], { initDone: false })), 'Pending');
  t.equal(podPhase(pod({ restartPolicy: 'Never' }), pv([view({})], { initFailed: true })), 'Failed');
});

t.test('pod status conditions keep transition times', async (t) => {
  const p = pod();
  const s1 = renderPodStatus(p, pv([view({ latest: info({}), ready: true, started: true })]), new Date('2030-01-01T00:00:00Z'));
  const ready = s1.conditions!.find((c) => c.type === 'Ready')!;
  t.equal(ready.status, 'True');
  const s2 = renderPodStatus({ ...p, status: s1 }, pv([view({ latest: info({}), ready: true, started: true })]), new Date('2030-01-01T00:05:00Z'));
  t.equal(s2.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, ready.lastTransitionTime, 'unchanged condition keeps its time');
  const s3 = renderPodStatus({ ...p, status: s2 }, pv([view({ latest: info({}), ready: false })]), new Date('2030-01-01T00:06:00Z'));
  t.equal(s3.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, '2030-01-01T00:06:00Z');
  t.equal(s3.podIP, '10.0.0.2');
  t.equal(s3.qosClass, 'BestEffort');
});

t.test('backoff doubles to the cap and resets', async (t) => {
  let now = 0;
  const b = new Backoff(10_000, 40_000, () => now);
  t.same([b.next('k'), b.next('k'), b.next('k'), b.next('k')], [10_000, 20_000, 40_000, 40_000]);
  t.equal(b.remaining('k'), 40_000);
  now = 39_000;
  t.equal(b.remaining('k'), 1_000);
  b.reset('k');
  t.equal(b.remaining('k'), 0);
});

t.test('pull policy defaults and restart policy', async (t) => {
  t.equal(pullPolicy({ name: 'c', image: 'busybox' }), 'Always');
  t.equal(pullPolicy({ name: 'c', image: 'busybox:latest' }), 'Always');
  t.equal(pullPolicy({ name: 'c', image: '127.0.0.1:5000/x:1' }), 'IfNotPresent');
  t.equal(pullPolicy({ name: 'c', image: '127.0.0.1:5000/x' }), 'Always', 'a registry port is not a tag');
  t.equal(pullPolicy({ name: 'c', image: 'x:1', imagePullPolicy: 'Never' }), 'Never');
  t.ok(shouldRestart('Always', 0));
  t.ok(shouldRestart('OnFailure', 2));
  t.notOk(shouldRestart('OnFailure', 0));
  t.notOk(shouldRestart('Never', 1));
});

t.test('docker create args', async (t) => {
  const args = renderCreateArgs('node1', { id: 'SB', podUid: 'uid-123456789', podName: 'p', namespace: 'ns', running: true, createdAt: 0 }, {
    name: 'c', role: 'app', image: 'img:1', command: ['sh', '-c'], args: ['echo hi'], overrideEntrypoint: true, env: [['A', 'b c']],
    mounts: [{ hostPath: '/h', containerPath: '/c', readOnly: true }], tty: false, stdin: false, stdinOnce: false, attempt: 2,
    cpuLimitMilli: 500, cpuRequestMilli: 250, memoryLimitBytes: 1048576, workingDir: '/w',
  });
  t.same(args.slice(0, 3), ['create', '--name', 'skiff_c_p_ns_uid-1234_2']);
  t.ok(args.includes('io.skiff.managed=true') && args.includes('io.skiff.node=node1') && args.includes('io.skiff.pod-uid=uid-123456789'));
  const s = args.join(' ');
  t.match(s, /--network container:SB --ipc container:SB/);
  t.match(s, /-e A=b c -v \/h:\/c:ro -w \/w --memory 1048576 --memory-swap 1048576 --cpus 0\.500 --cpu-shares 256 --entrypoint sh img:1 -c echo hi$/);
  t.equal(mergeDockerConfigs([{ dockerConfigJson: '{"auths":{"a":{"auth":"x"}}}' }, { dockerConfigJson: 'garbage' }, { dockerConfigJson: '{"auths":{"b":{}}}' }]), '{"auths":{"a":{"auth":"x"},"b":{}}}');
});

t.test('exec exit status on the error channel', async (t) => {
  t.same(exitStatus(0), { metadata: {}, status: 'Success' });
  t.match(exitStatus(3), { status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
});

t.test('pod updates: a status-only change (the kubelet\'s own write) needs no sync, unless the phase moved', async (t) => {
  const a = pod({}, { resourceVersion: '1' });
  const withStatus = (p: Pod, status: Pod['status'], rv: string): Pod => ({ ...p, metadata: { ...p.metadata, resourceVersion: rv }, status });
  t.notOk(podUpdateNeedsSync(a, withStatus(a, { phase: undefined, podIP: '10.0.0.2' }, '2')), 'status only');
  t.ok(podUpdateNeedsSync(withStatus(a, { phase: 'Running' }, '2'), withStatus(a, { phase: 'Succeeded' }, '3')), 'phase change');
  t.ok(podUpdateNeedsSync(a, { ...a, metadata: { ...a.metadata, resourceVersion: '2', deletionTimestamp: '2026-01-01T00:00:00Z' } }), 'deletion');
  t.ok(podUpdateNeedsSync(a, { ...a, metadata: { ...a.metadata, resourceVersion: '2', labels: { app: 'y' } } }), 'labels (downward API)');
  t.ok(podUpdateNeedsSync(a, { ...a, spec: { ...a.spec!, activeDeadlineSeconds: 5 } }), 'spec');
});
