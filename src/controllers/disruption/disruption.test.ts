import t from 'tap';
import Fastify from 'fastify';
import { R } from '../../api/registry.js';
import { FakeApiClient } from '../../client/fake.js';
import { makeContext, eventually } from '../../../test/integration/controllers-node/fakectx.js';
import type { PodObj } from '../../scheduler/cache.js';
import { computePdbStatus, scaled, type PdbObj } from './reconcile.js';
import { checkEviction, evictionPlugin } from './eviction.js';
import { startDisruptionController } from './controller.js';

const pod = (name: string, ready = true, owner?: string) =>
  ({
    metadata: { name, namespace: 'default', labels: { app: 'web' }, ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: 'x', controller: true }] } : {}) },
    spec: { containers: [{ name: 'c' }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  }) as PodObj;
const pdb = (spec: Record<string, unknown>, status?: Record<string, unknown>) =>
  ({ metadata: { name: 'budget', namespace: 'default', generation: 1 }, spec: { selector: { matchLabels: { app: 'web' } }, ...spec }, ...(status ? { status } : {}) }) as PdbObj;

t.test('budget arithmetic', async (t) => {
  t.equal(scaled('50%', 3), 2, 'percent rounds up');
  t.equal(scaled(2, 10), 2);
  const pods = [pod('a'), pod('b'), pod('c', false)];
  t.match(computePdbStatus(pdb({ minAvailable: 1 }), pods, () => undefined, 0), { currentHealthy: 2, desiredHealthy: 1, expectedPods: 3, disruptionsAllowed: 1 });
  t.match(computePdbStatus(pdb({ minAvailable: 2 }), pods, () => undefined, 0), { disruptionsAllowed: 0, conditions: [{ status: 'False', reason: 'InsufficientPods' }] });
  const owned = [pod('a', true, 'rs'), pod('b', true, 'rs')];
  t.match(computePdbStatus(pdb({ maxUnavailable: 1 }), owned, (k, n) => (k === 'ReplicaSet' && n === 'rs' ? 4 : undefined), 0), { expectedPods: 4, desiredHealthy: 3, disruptionsAllowed: 0 }, 'expected count from the controller scale');
  t.match(computePdbStatus(pdb({ minAvailable: '50%' }), owned, () => 2, 0), { desiredHealthy: 1, disruptionsAllowed: 1 });
  const disrupted = pdb({ minAvailable: 1 }, { disruptedPods: { a: new Date(0).toISOString() } });
  t.match(computePdbStatus(disrupted, [pod('a'), pod('b')], () => undefined, 1000), { currentHealthy: 1, disruptionsAllowed: 0 }, 'a pod being evicted is not counted healthy');
});

t.test('checkEviction', async (t) => {
  const ok = pdb({ minAvailable: 1 }, { disruptionsAllowed: 1, currentHealthy: 2, desiredHealthy: 1, observedGeneration: 1 });
  const none = pdb({ minAvailable: 2 }, { disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2, observedGeneration: 1 });
  t.match(checkEviction(pod('a'), [ok]), { allowed: true, pdb: ok });
  t.match(checkEviction(pod('a'), [none]), { allowed: false, code: 429, causes: [{ message: 'The disruption budget budget needs 2 healthy pods and has 2 currently' }] });
  t.match(checkEviction(pod('a'), []), { allowed: true });
  t.match(checkEviction(pod('a'), [ok, none]), { allowed: false, code: 500 });
  t.match(checkEviction(pod('c', false), [none]), { allowed: true }, 'unhealthy pod may go while the budget is met');
  t.match(checkEviction({ ...pod('p'), status: { phase: 'Pending' } } as PodObj, [none]), { allowed: true });
  t.match(checkEviction(pod('a'), [{ ...ok, metadata: { ...ok.metadata, generation: 2 } } as PdbObj]), { allowed: false, code: 429 }, 'stale status refuses');
});

t.test('controller keeps status; eviction plugin refuses with 429 and allows within budget', async (t) => {
  const client = new FakeApiClient();
  const { ctx, informers } = makeContext({ client });
  const c = startDisruptionController(ctx);
  informers.start();
  await informers.waitForSync();
  const app = Fastify();
  await evictionPlugin({ client })(app);
  t.teardown(async () => {
    c.stop();
    informers.stop();
    await app.close();
  });
  for (const n of ['a', 'b', 'c']) await client.create(R.pods, pod(n));
  await client.create(R.poddisruptionbudgets, pdb({ minAvailable: 2 }));
  await eventually(async () => (await client.get<PdbObj>(R.poddisruptionbudgets, 'budget', 'default')).status?.disruptionsAllowed === 1, 'status: 1 disruption allowed');
  const evict = (name: string) => app.inject({ method: 'POST', url: `/api/v1/namespaces/default/pods/${name}/eviction`, payload: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' } } });
  const r1 = await evict('a');
  t.equal(r1.statusCode, 201);
  await t.rejects(client.get(R.pods, 'a', 'default'), undefined, 'evicted pod deleted');
  const r2 = await evict('b');
  t.equal(r2.statusCode, 429, 'second eviction would break the budget');
  t.match(r2.json(), { kind: 'Status', reason: 'TooManyRequests', code: 429 });
  t.ok(await client.get(R.pods, 'b', 'default'));
  t.equal((await evict('nope')).statusCode, 404);
  await eventually(async () => (await client.get<PdbObj>(R.poddisruptionbudgets, 'budget', 'default')).status?.currentHealthy === 2, 'status recomputed after the pod is gone');
});
