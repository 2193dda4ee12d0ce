import t from 'tap';
import { findResource } from '../api/registry.js';
import type { KubeObject } from '../api/object.js';
import { SqliteStore } from '../store/sqlite.js';
import { ApiCore } from './core.js';
import { StatusError } from './errors.js';

const pods = findResource('', 'pods')!;
const namespaces = findResource('', 'namespaces')!;
const pod = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'i' }] } });

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'created';
  } catch (err) {
    if (err instanceof StatusError) return `${err.code} ${err.reason}`;
    throw err;
  }
}

// A create in a namespace is guarded by the namespace's revision instead of a read of it: the
// outcome must be what reading it first gives, also when another apiserver changed the namespace.
t.test('creates in a namespace another apiserver changes: 403 while terminating, 404 once gone, fine again once recreated', async (t) => {
  const store = new SqliteStore(':memory:');
  t.teardown(() => store.close());
  const a = new ApiCore(store);
  const b = new ApiCore(store);
  await a.bootstrap();
  await b.bootstrap();
  t.equal(await outcome(a.create(pods, 'team', pod('p0'), {})), '404 NotFound', 'no namespace yet');
  await b.create(namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }, {});
  t.equal(await outcome(a.create(pods, 'team', pod('p1'), {})), 'created');
  t.equal(await outcome(a.create(pods, 'team', pod('p2'), {})), 'created', 'again, from what a knows of the namespace');
  await b.update(namespaces, undefined, 'team', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { x: 'y' } } }, {});
  t.equal(await outcome(a.create(pods, 'team', pod('p3'), {})), 'created', 'a namespace changed elsewhere is read again');
  await b.delete(namespaces, undefined, 'team', {});
  t.equal(await outcome(a.create(pods, 'team', pod('p4'), {})), '403 Forbidden', 'terminating');
  t.equal(await outcome(a.create(pods, 'team', pod('p5'), { dryRun: true })), '403 Forbidden', 'a dry run too');
  const ns = await b.storage(namespaces).get('team');
  await b.update(namespaces, undefined, 'team', { ...ns, spec: { finalizers: [] } }, { subresource: 'finalize' });
  t.notOk(await b.storage(namespaces).tryGet('team'), 'the namespace is gone');
  t.equal(await outcome(a.create(pods, 'team', pod('p6'), {})), '404 NotFound', 'gone');
  await b.create(namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }, {});
  t.equal(await outcome(a.create(pods, 'team', pod('p7'), {})), 'created', 'recreated');
  t.same((await a.storage(pods).list('team')).items.map((p) => p.metadata?.name), ['p1', 'p2', 'p3', 'p7']);
});
