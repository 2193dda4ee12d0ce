import t from 'tap';
import type { KubeObject } from '../api/object.js';
import type { ApiClient } from './types.js';
import { ApiEventRecorder } from './events.js';

/** An API whose event writes complete only when the test releases them. */
function gatedApi() {
  const calls: { verb: string; body: Record<string, unknown>; release: () => void }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const call = (verb: string, body: unknown) =>
    new Promise<KubeObject>((resolve) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push({ verb, body: body as Record<string, unknown>, release: () => (inFlight--, resolve(body as KubeObject)) });
    });
  const client = { create: (_r: unknown, obj: unknown) => call('create', obj), patch: (_r: unknown, _n: string, p: unknown) => call('patch', p) } as unknown as ApiClient;
  return { client, calls, maxInFlight: () => maxInFlight };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('events are written a few at a time, in order; a repeat bumps the count', async (t) => {
  const api = gatedApi();
  const rec = new ApiEventRecorder(api.client, 'test');
  const pod = (i: number): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'default', uid: `u${i}` } });
  for (let i = 0; i < 10; i++) rec.event(pod(i), 'Normal', 'Scheduled', `assigned p${i}`);
  rec.event(pod(0), 'Normal', 'Scheduled', 'assigned p0');
  await tick();
  t.equal(api.calls.length, 4, 'four writes in flight, the rest wait');
  while (api.calls.some((c) => c.release)) {
    const next = api.calls.find((c) => c.release);
    const release = next!.release;
    (next as { release?: () => void }).release = undefined;
    release();
    await tick();
  }
  t.equal(api.calls.length, 11);
  t.equal(api.maxInFlight(), 4);
  t.same(
    api.calls.slice(0, 10).map((c) => (c.body.involvedObject as { name: string }).name),
    Array.from({ length: 10 }, (_, i) => `p${i}`),
    'in the order they were recorded',
  );
  t.match(api.calls[10], { verb: 'patch', body: { count: 2 } }, 'the repeat patches the first event');
});
