import t from 'tap';
import type { KubeObject } from '../api/object.js';
import { findResource } from '../api/registry.js';
import { SqliteStore } from '../store/sqlite.js';
import { jsonOfWritten, ResourceStorage } from './storage.js';

const pods = findResource('', 'pods')!;

t.test('a create answers with JSON made from its stored pieces: byte for byte JSON.stringify of the result', async (t) => {
  const store = new SqliteStore(':memory:');
  t.teardown(() => store.close());
  const st = new ResourceStorage(pods, store);
  const cases: Record<string, KubeObject> = {
    'usual order': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'n', labels: { x: '"quoted" \u2028' } }, spec: { containers: [{ name: 'c' }] }, status: { phase: 'Pending' } },
    'metadata first, odd keys': { metadata: { name: 'b', namespace: 'n' }, 'we"ird': 1, spec: {}, apiVersion: 'v1', kind: 'Pod' } as KubeObject,
    'metadata last': { apiVersion: 'v1', kind: 'Pod', spec: { x: null }, metadata: { name: 'c', namespace: 'n' } },
    'undefined values': { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'd', namespace: 'n', uid: undefined }, spec: undefined, status: { a: undefined } } as unknown as KubeObject,
  };
  for (const [name, obj] of Object.entries(cases)) {
    const created = await st.create(obj);
    t.equal(jsonOfWritten(created), JSON.stringify(created), name);
    t.same(JSON.parse((await store.get(st.key(obj.metadata!.name!, 'n')))!.value.toString()), JSON.parse(JSON.stringify({ ...created, metadata: { ...created.metadata, resourceVersion: undefined } })), `${name}: stored without resourceVersion`);
  }
  const withRv = await st.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'e', namespace: 'n', resourceVersion: '7' } });
  t.equal(jsonOfWritten(withRv), undefined, 'a resourceVersion of its own: left to the serializer');
  t.equal(jsonOfWritten({ ...withRv }), undefined, 'only the very object returned');
});
