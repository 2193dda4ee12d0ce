import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess, freePort } from '../../helpers/server-process.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';

t.test('kill -9 in the middle of a burst of writes loses no acknowledged write; watches resume', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-crash-'));
  const port = await freePort();
  let srv = await startServerProcess(dir, port);
  t.teardown(async () => {
    await srv.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const acked = new Map<string, string>();
  let stop = false;
  let n = 0;
  const writer = async (id: number): Promise<void> => {
    while (!stop) {
      const name = `cm-${id}-${n++}`;
      try {
        const o = await srv.client.create<KubeObject>(R.configmaps, { metadata: { name, namespace: 'default' }, data: { v: name } });
        acked.set(name, String(o.metadata?.resourceVersion));
      } catch {
        return; // the server died under us: this write was never acknowledged
      }
    }
  };
  const writers = Array.from({ length: 8 }, (_, i) => writer(i));
  while (acked.size < 300) await new Promise((r) => setTimeout(r, 5));
  const watchFrom = Math.min(...[...acked.values()].map(Number));
  await srv.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  t.ok(acked.size >= 300, `${acked.size} writes acknowledged before kill -9`);

  srv = await startServerProcess(dir, port);
  const list = await srv.client.list<KubeObject>(R.configmaps, { namespace: 'default' });
  const have = new Set(list.items.map((o) => o.metadata?.name));
  const lost = [...acked.keys()].filter((k) => !have.has(k));
  t.same(lost, [], 'every acknowledged write survived');

  const seen = new Set<string>();
  const w = srv.client.watch(R.configmaps, { namespace: 'default', resourceVersion: String(watchFrom) }, (ev) => {
    if (ev.type === 'ADDED') seen.add(String(ev.object.metadata?.name));
  });
  const expect = [...acked.entries()].filter(([, rv]) => Number(rv) > watchFrom).map(([k]) => k);
  const end = Date.now() + 10_000;
  while (expect.some((k) => !seen.has(k)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  w.stop();
  t.same(expect.filter((k) => !seen.has(k)), [], `a watch from revision ${watchFrom} replays all ${expect.length} later creates after the restart`);
});
