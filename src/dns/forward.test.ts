import t from 'tap';
import { startUpstream } from '../../test/integration/dns/upstream.js';
import { Forwarder } from './forward.js';
import { nameFromString, T } from './wire.js';

const question = (name: string) => ({ name: nameFromString(name), type: T.A, class: 1 });
const settle = () => new Promise((r) => setTimeout(r, 100));

t.test('a name asked often is refreshed before it expires; TTLs keep decreasing until then', async (t) => {
  const upstream = await startUpstream('127.0.0.7');
  const fwd = new Forwarder({ upstreams: [{ host: upstream.address, port: upstream.port }], timeoutMs: 1000 });
  const realNow = Date.now;
  t.teardown(async () => {
    Date.now = realNow;
    fwd.close();
    await upstream.close();
  });
  const asked = () => upstream.asked.filter((a) => a.startsWith('example.com|')).length;
  let now = realNow();
  Date.now = () => now;
  const first = await fwd.resolve(question('example.com'));
  t.equal(first.cached, false);
  t.equal(first.answer[0].ttl, 30, 'upstream TTL 60 capped at 30');
  t.equal(asked(), 1);

  now += 20_000;
  const mid = await fwd.resolve(question('example.com'));
  await settle();
  t.equal(mid.cached, true);
  t.equal(mid.answer[0].ttl, 10, 'TTL decreased by the time spent in the cache');
  t.equal(asked(), 1, 'not yet in the last tenth of its life: no upstream query');

  now += 7_500; // 2.5 s left of 30
  const late = await fwd.resolve(question('example.com'));
  t.equal(late.cached, true, 'served from the cache while the refresh runs');
  t.equal(late.answer[0].ttl, 3, 'the old entry, with its own TTL');
  await settle();
  t.equal(asked(), 2, 'refreshed upstream in the background');
  const refreshed = await fwd.resolve(question('example.com'));
  t.equal(refreshed.cached, true);
  t.equal(refreshed.answer[0].ttl, 30, 'the refreshed entry');
  await settle();
  t.equal(asked(), 2, 'one refresh only');

  now += 31_000;
  const expired = await fwd.resolve(question('example.com'));
  t.equal(expired.cached, false, 'an entry nobody asked for in its last tenth expires as before');
  t.equal(asked(), 3);
});

t.test('a failed refresh keeps the cached answer until it expires', async (t) => {
  const upstream = await startUpstream('127.0.0.8');
  const fwd = new Forwarder({ upstreams: [{ host: upstream.address, port: upstream.port }], timeoutMs: 200 });
  const realNow = Date.now;
  t.teardown(async () => {
    Date.now = realNow;
    fwd.close();
  });
  let now = realNow();
  Date.now = () => now;
  await fwd.resolve(question('api.example.com'));
  await upstream.close();
  now += 28_000;
  const late = await fwd.resolve(question('api.example.com'));
  t.equal(late.cached, true);
  t.equal(late.answer[0].ttl, 2);
  await new Promise((r) => setTimeout(r, 400)); // the refresh times out
  const still = await fwd.resolve(question('api.example.com'));
  t.equal(still.cached, true, 'still the cached answer');
  t.equal(still.rcode, 0);
  t.equal(still.answer[0].ttl, 2);
});
