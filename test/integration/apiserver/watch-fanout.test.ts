import t from 'tap';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import type { Watch } from '../../../src/client/types.js';
import { startTestApiserver } from '../../helpers/apiserver.js';

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Events are decoded and serialized once and shared by every watcher: watchers whose selectors
// see the same store event as different types (ADDED for one, MODIFIED or DELETED for another)
// must each still get their own type and an unaltered object.
t.test('many watchers with different selectors share events but each gets its own view', async (t) => {
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  const rv = (await api.client.list(R.configmaps, { namespace: 'default' })).metadata?.resourceVersion;
  const seen = { all: [] as string[], blue: [] as string[], red: [] as string[] };
  const watches: Watch[] = [];
  const watch = (into: string[], labelSelector?: string): void => {
    watches.push(
      api.client.watch<KubeObject>(R.configmaps, { namespace: 'default', resourceVersion: rv, labelSelector }, (ev) => {
        into.push(`${ev.type} ${ev.object.metadata?.name} ${ev.object.metadata?.labels?.color ?? '-'} ${(ev.object as { data?: { v?: string } }).data?.v ?? '-'}`);
      }),
    );
  };
  const extra: string[][] = Array.from({ length: 20 }, () => []);
  watch(seen.all);
  watch(seen.blue, 'color=blue');
  watch(seen.red, 'color=red');
  for (const e of extra) watch(e);
  t.teardown(() => watches.forEach((w) => w.stop()));

  await api.client.create(R.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default', labels: { color: 'blue' } }, data: { v: '1' } });
  await api.client.patch(R.configmaps, 'a', { metadata: { labels: { color: 'red' } }, data: { v: '2' } }, { namespace: 'default' });
  await api.client.delete(R.configmaps, 'a', 'default');
  await waitFor('all watchers see 3 or their filtered events', () => seen.all.length === 3 && seen.blue.length === 2 && seen.red.length === 2 && extra.every((e) => e.length === 3));

  t.same(seen.all, ['ADDED a blue 1', 'MODIFIED a red 2', 'DELETED a red 2']);
  t.same(seen.blue, ['ADDED a blue 1', 'DELETED a red 2'], 'leaving the selector is a DELETED for this watcher');
  t.same(seen.red, ['ADDED a red 2', 'DELETED a red 2'], 'entering the selector is an ADDED for this watcher');
  for (const e of extra) t.same(e, seen.all, 'every unfiltered watcher gets the same stream');
});
