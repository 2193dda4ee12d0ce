import t from 'tap';
import Fastify from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApiClient } from '../../client/fake.js';
import { FakeHost } from '../../host/host.js';
import { R } from '../../api/registry.js';
import { startKubelet } from '../index.js';
import { FakeRuntime } from '../runtime/fake.js';
import { FakePodNetwork } from '../network/fake.js';
import { parseDockerStats } from '../runtime/docker-cli.js';
import { podStreamingPlugin } from './apiserver-plugin.js';

t.test('docker stats parsing', async (t) => {
  t.same(parseDockerStats('12.5%', '1.5MiB / 2GiB'), { cpuNanoCores: 125_000_000, memoryBytes: 1572864 });
  t.same(parseDockerStats('--', ''), { cpuNanoCores: 0, memoryBytes: 0 });
});

t.test('metrics.k8s.io from the kubelet summary, through the apiserver plugin', async (t) => {
  const client = new FakeApiClient();
  const runtime = new FakeRuntime();
  const dataDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-metrics-'));
  await client.create(R.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'm1' }, spec: { podCIDR: '10.244.9.0/24' } });
  const k = await startKubelet({ client, host: new FakeHost(), nodeName: 'm1', nodeIP: '127.0.0.1', dataDir, serverPort: 0, runtimeImpl: runtime, networkImpl: new FakePodNetwork('10.244.9.0/24'), resyncMs: 100 });
  t.teardown(async () => { await k.stop(); await rm(dataDir, { recursive: true, force: true }); });
  for (const [name, app] of [['a', 'web'], ['b', 'db']]) {
    await client.create(R.pods, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app } }, spec: { nodeName: 'm1', containers: [{ name: 'c', image: 'skiff/busybox:1.36' }] } }, 'default');
  }
  const deadline = Date.now() + 10_000;
  while (runtime.containers.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const app = Fastify();
  await podStreamingPlugin({ client, kubeletScheme: 'http' })(app);
  t.teardown(() => app.close());
  const disc = await app.inject({ method: 'GET', url: '/apis/metrics.k8s.io/v1beta1' });
  t.match(disc.json(), { groupVersion: 'metrics.k8s.io/v1beta1', resources: [{ name: 'nodes', kind: 'NodeMetrics' }, { name: 'pods', kind: 'PodMetrics' }] });
  const nodes = (await app.inject({ method: 'GET', url: '/apis/metrics.k8s.io/v1beta1/nodes' })).json() as { items: { metadata: { name: string }; usage: { cpu: string; memory: string } }[] };
  t.equal(nodes.items.length, 1);
  t.equal(nodes.items[0].metadata.name, 'm1');
  t.match(nodes.items[0].usage, { cpu: /^\d+n$/, memory: /^\d+Ki$/ });
  const pods = (await app.inject({ method: 'GET', url: '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb' })).json() as { kind: string; items: unknown[] };
  t.equal(pods.kind, 'PodMetricsList');
  t.same(pods.items.map((p) => (p as { metadata: { name: string } }).metadata.name), ['a'], 'labelSelector filters (HPA asks this way)');
  const one = (await app.inject({ method: 'GET', url: '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/b' })).json();
  t.match(one, { kind: 'PodMetrics', metadata: { name: 'b', namespace: 'default' }, containers: [{ name: 'c', usage: { cpu: '5000000n', memory: '1024Ki' } }] });
  t.equal((await app.inject({ method: 'GET', url: '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/zzz' })).statusCode, 404);
  const logsMissing = await app.inject({ method: 'GET', url: '/api/v1/namespaces/default/pods/nope/log' });
  t.equal(logsMissing.statusCode, 404);
  t.match(logsMissing.json(), { kind: 'Status', reason: 'NotFound' });
});
