import t from 'tap';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually, FakeClock } from '../../../test/integration/controllers-node/fakectx.js';
import type { PodObj } from '../../scheduler/cache.js';
import { FakeMetricsSource } from './metrics.js';
import { applyBehavior, recommend, type HpaHistory, type HpaObj } from './reconcile.js';
import { startHpaController } from './controller.js';

const pod = (name: string, ready = true, cpu = '100m') =>
  ({
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: { containers: [{ name: 'c', resources: { requests: { cpu } } }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  }) as PodObj;
const hpa = (extra: Record<string, unknown> = {}) =>
  ({
    metadata: { name: 'web', namespace: 'default', generation: 1 },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
      minReplicas: 1,
      maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      ...extra,
    },
  }) as HpaObj;

t.test('recommend: utilisation, tolerance, missing metrics and unready pods', async (t) => {
  const pods = [pod('a'), pod('b')];
  t.match(recommend(hpa(), 2, pods, new Map([['a', 100], ['b', 100]])), { replicas: 4, metrics: [{ resource: { current: { averageUtilization: 100 } } }] });
  t.equal(recommend(hpa(), 2, pods, new Map([['a', 52], ['b', 54]])).replicas, 2, 'within 10 % tolerance');
  t.equal(recommend(hpa(), 2, pods, new Map([['a', 10], ['b', 10]])).replicas, 1);
  // scale up: a pod without metrics counts as 0 %
  t.equal(recommend(hpa(), 3, [...pods, pod('c')], new Map([['a', 100], ['b', 100]])).replicas, 4);
  // scale down: a pod without metrics counts as 100 % of its request
  t.equal(recommend(hpa(), 3, [...pods, pod('c')], new Map([['a', 10], ['b', 10]])).replicas, 3, 'pessimistic figure cancels the scale-down');
  t.equal(recommend(hpa(), 2, [pod('a'), pod('b', false)], new Map([['a', 100], ['b', 100]])).replicas, 2, 'unready pod counts 0 % when scaling up: 200 % of one pod becomes 100 % of two, within tolerance');
  t.match(recommend(hpa(), 1, [pod('a', true, '0')], new Map([['a', 10]])), { error: /missing request for cpu/ });
  const avg = hpa({ metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'AverageValue', averageValue: '50m' } } }] });
  t.equal(recommend(avg, 2, pods, new Map([['a', 100], ['b', 100]])).replicas, 4);
});

t.test('behavior: rate limits, stabilisation, bounds', async (t) => {
  const h = (): HpaHistory => ({ recommendations: [], scaleEvents: [] });
  t.same(applyBehavior(hpa(), 2, 20, h(), 0), { replicas: 6, limited: 'ScaleUpLimit' }, 'max(2+4 pods, 2*200 %)');
  t.same(applyBehavior(hpa({ maxReplicas: 5 }), 2, 20, h(), 0), { replicas: 5, limited: 'TooManyReplicas' });
  const hist = h();
  t.same(applyBehavior(hpa(), 6, 6, hist, 0), { replicas: 6, limited: undefined });
  t.same(applyBehavior(hpa(), 6, 2, hist, 60_000), { replicas: 6, limited: undefined }, 'scale-down waits for the 300 s window');
  t.same(applyBehavior(hpa(), 6, 2, hist, 301_000), { replicas: 2, limited: undefined }, 'after the window the lower recommendation wins');
  const slow = hpa({ behavior: { scaleDown: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } } });
  const sh = h();
  t.same(applyBehavior(slow, 6, 2, sh, 0), { replicas: 5, limited: 'ScaleDownLimit' });
  sh.scaleEvents.push({ at: 0, delta: -1 });
  t.same(applyBehavior(slow, 5, 2, sh, 30_000), { replicas: 5, limited: 'ScaleDownLimit' }, 'one pod per 60 s already used');
  t.same(applyBehavior(hpa({ minReplicas: 3 }), 3, 1, h(), 0), { replicas: 3, limited: 'TooFewReplicas' });
});

t.test('controller scales a Deployment from synthetic CPU figures', async (t) => {
  const client = new FakeApiClient();
  const clock = new FakeClock();
  const metrics = new FakeMetricsSource();
  const { ctx, informers, recorder } = makeContext({ client, clock });
  const c = startHpaController(ctx, { metrics, syncPeriodMs: 20 });
  informers.start();
  await informers.waitForSync();
  t.teardown(() => {
    c.stop();
    informers.stop();
  });
  await client.create(R.deployments, { metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } } } });
  for (const n of ['a', 'b']) {
    await client.create(R.pods, pod(n));
    metrics.set('default', n, 200);
  }
  await client.create(R.horizontalpodautoscalers, hpa({ maxReplicas: 5 }));
  const replicas = async () => (await client.get<{ spec: { replicas: number } } & PodObj>(R.deployments, 'web', 'default')).spec.replicas;
  await eventually(async () => (await replicas()) === 5, 'scaled up to maxReplicas');
  const ev = await eventually(() => recorder.events.find((e) => e.reason === 'SuccessfulRescale'), 'rescale event');
  t.match(ev.message, /^New size: 5; reason: cpu resource utilization \(percentage of request\) above target$/);
  const st = await eventually(async () => {
    const h = await client.get<HpaObj>(R.horizontalpodautoscalers, 'web', 'default');
    return h.status?.desiredReplicas === 5 ? h.status : undefined;
  }, 'status');
  t.match(st.conditions?.find((x) => x.type === 'ScalingLimited'), { status: 'True', reason: 'TooManyReplicas' });
  // load drops: nothing happens until the 300 s stabilisation window passes
  metrics.set('default', 'a', 10);
  metrics.set('default', 'b', 10);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(await replicas(), 5, 'held by the stabilisation window');
  clock.advance(301_000);
  await eventually(async () => (await replicas()) === 1, 'scaled down after the window');
});
