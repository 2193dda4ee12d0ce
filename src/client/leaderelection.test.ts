import t from 'tap';
import { FakeApiClient } from './fake.js';
import { runLeaderElection } from './leaderelection.js';
import { R } from '../api/registry.js';

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('only one candidate leads; the other takes over when it stops', async (t) => {
  const client = new FakeApiClient();
  const running: string[] = [];
  const mk = (id: string) =>
    runLeaderElection({
      client,
      name: 'lock',
      identity: id,
      retryPeriodMs: 20,
      leaseDurationSeconds: 1,
      onStartedLeading: async () => {
        running.push(id);
        return { stop: () => void running.splice(running.indexOf(id), 1) };
      },
    });
  const a = mk('a');
  await until(() => a.isLeader());
  const b = mk('b');
  await new Promise((r) => setTimeout(r, 200));
  t.same(running, ['a'], 'b waits while a renews');
  t.notOk(b.isLeader());
  await a.stop();
  await until(() => b.isLeader());
  t.same(running, ['b'], 'b leads after a released the lease');
  const lease = await client.get<{ spec: { holderIdentity: string; leaseTransitions: number } }>(R.leases, 'lock', 'kube-system');
  t.equal(lease.spec.holderIdentity, 'b');
  t.equal(lease.spec.leaseTransitions, 1);
  await b.stop();
});

t.test('an expired lease of a dead holder is taken over', async (t) => {
  const client = new FakeApiClient();
  await client.create(R.leases, { metadata: { name: 'lock', namespace: 'kube-system' }, spec: { holderIdentity: 'dead', leaseDurationSeconds: 1, renewTime: new Date(Date.now() - 5000).toISOString() } }, 'kube-system');
  const c = runLeaderElection({ client, name: 'lock', identity: 'c', retryPeriodMs: 20, onStartedLeading: async () => ({ stop: () => undefined }) });
  await until(() => c.isLeader());
  t.pass('took over');
  await c.stop();
});
