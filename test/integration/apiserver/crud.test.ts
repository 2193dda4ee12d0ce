import t from 'tap';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { R } from '../../../src/api/registry.js';
import { SharedInformer } from '../../../src/client/informer.js';
import type { KubeObject } from '../../../src/api/object.js';

t.test('create, get, list, update, patch, delete and watch through the REST client', async (t) => {
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  const c = api.client;
  const cm = await c.create(R.configmaps, { metadata: { name: 'a', namespace: 'default', labels: { x: '1' } }, data: { k: 'v' } });
  t.ok(cm.metadata?.uid, 'uid set');
  t.ok(cm.metadata?.resourceVersion, 'resourceVersion set');
  await t.rejects(c.create(R.configmaps, { metadata: { name: 'a', namespace: 'default' } }), { code: 409, reason: 'AlreadyExists' });
  const got = await c.get<KubeObject>(R.configmaps, 'a', 'default');
  t.same(got.data, { k: 'v' });
  const list = await c.list(R.configmaps, { namespace: 'default', labelSelector: 'x=1' });
  t.equal(list.items.length, 1);
  t.equal((await c.list(R.configmaps, { namespace: 'default', labelSelector: 'x=2' })).items.length, 0);
  await t.rejects(c.update(R.configmaps, { ...got, metadata: { ...got.metadata, resourceVersion: '1' }, data: { k: 'w' } }), { code: 409, reason: 'Conflict' });
  const upd = await c.update<KubeObject>(R.configmaps, { ...got, data: { k: 'w' } });
  t.same(upd.data, { k: 'w' });
  const patched = await c.patch<KubeObject>(R.configmaps, 'a', { data: { j: 'z' } }, { namespace: 'default', type: 'merge' });
  t.same(patched.data, { k: 'w', j: 'z' });

  const inf = new SharedInformer(c, R.configmaps, { namespace: 'default' });
  const seen: string[] = [];
  inf.addHandlers({ add: (o) => seen.push(`add:${o.metadata?.name}`), update: (_o, n) => seen.push(`update:${n.metadata?.name}`), delete: (o) => seen.push(`delete:${o.metadata?.name}`) });
  inf.start();
  await inf.synced();
  await c.create(R.configmaps, { metadata: { name: 'b', namespace: 'default' } });
  await c.delete(R.configmaps, 'a', 'default');
  const deadline = Date.now() + 5000;
  while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  inf.stop();
  t.same(seen, ['add:a', 'add:b', 'delete:a']);
  await t.rejects(c.get(R.configmaps, 'a', 'default'), { code: 404 });
});

t.test('validation errors are 422 with causes naming the field', async (t) => {
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  await t.rejects(api.client.create(R.deployments, { metadata: { name: 'Bad_Name', namespace: 'default' }, spec: {} }), { code: 422, reason: 'Invalid' });
  try {
    await api.client.create(R.services, { metadata: { name: 'svc', namespace: 'default' }, spec: { ports: [{ port: 70000 }] } });
    t.fail('should have been refused');
  } catch (err) {
    const st = (err as { status: { details: { causes: { field: string }[] } } }).status;
    t.ok(st.details.causes.some((c) => c.field === 'spec.ports[0].port'), 'names spec.ports[0].port');
  }
});
