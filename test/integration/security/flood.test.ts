// Abuse against the real apiserver (HTTPS, securityHooks): slow writers fill the mutating in-flight
// slots, a bounded burst of writes gets 429 + Retry-After, reads and the admin keep being answered,
// and everything recovers once the slow clients go away. Loopback only, bounded counts.
import t from 'tap';
import https from 'node:https';
import type { ClientRequest } from 'node:http';
import { issueClientCert } from '../../../src/util/pki.js';
import { R } from '../../../src/api/registry.js';
import { startSecuredApiserver } from './secured.js';

type Res = { status: number; body: string; headers: Record<string, unknown> };

t.test('flood: 429 beyond the in-flight caps, well-behaved clients still answered', async (t) => {
  const s = await startSecuredApiserver({ limits: { maxMutatingInFlight: 3, maxReadOnlyInFlight: 50, maxWatchesPerClient: 3 } });
  t.teardown(() => s.close());
  await s.admin.create(R.namespaces, { metadata: { name: 'team' } });
  await s.admin.create(R.rolebindings, {
    metadata: { name: 'alice-edit', namespace: 'team' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
    subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }],
  }, 'team');
  const alice = await issueClientCert({ cert: s.pki.caCert, key: s.pki.caKey }, 'alice');
  const open: ClientRequest[] = [];
  t.teardown(() => open.forEach((r) => r.destroy()));

  const start = (method: string, path: string, body?: string, opts: { partial?: boolean; cert?: string; key?: string } = {}) => {
    let req!: ClientRequest;
    const done = new Promise<Res>((resolve, reject) => {
      req = https.request(
        { host: '127.0.0.1', port: s.port, method, path, ca: s.pki.caCert, servername: 'kubernetes', cert: opts.cert ?? alice.cert, key: opts.key ?? alice.key, agent: false, headers: body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body) + (opts.partial ? 10 : 0)) } : {} },
        (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
        },
      );
      req.on('error', reject);
    });
    if (opts.partial) req.write(body ?? '');
    else req.end(body);
    open.push(req);
    return { req, done };
  };
  const cm = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });
  const deadline = async (fn: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!fn() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    return fn();
  };

  // three slow writers announce a body they never finish: they hold every mutating slot
  const slow = [0, 1, 2].map((i) => start('POST', '/api/v1/namespaces/team/configmaps', cm(`slow-${i}`), { partial: true }));
  t.ok(await deadline(() => s.hooks.limitsStats().mutating === 3), 'slow writers hold the 3 mutating slots');
  slow.forEach((x) => x.done.catch(() => undefined));

  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => start('POST', '/api/v1/namespaces/team/configmaps', cm(`burst-${i}`)).done));
  t.equal(burst.filter((r) => r.status === 429).length, 20, 'the bounded burst of writes is refused with 429');
  t.equal(burst[0].headers['retry-after'], '1');
  t.match(JSON.parse(burst[0].body), { kind: 'Status', reason: 'TooManyRequests', code: 429 });

  const reads = await Promise.all(Array.from({ length: 10 }, () => start('GET', '/api/v1/namespaces/team/configmaps').done));
  t.same(reads.map((r) => r.status), Array(10).fill(200), 'reads are answered while writes are saturated');
  const list = await s.admin.list(R.configmaps, { namespace: 'team' });
  t.equal(list.items.filter((o) => o.metadata?.name?.startsWith('burst-')).length, 0, 'no refused write was stored');
  await s.admin.create(R.configmaps, { metadata: { name: 'admin-write' } }, 'team');
  t.pass('system:masters writes are exempt (loopback components keep working)');

  // watches: 3 per client
  const watches = [0, 1, 2].map(() => start('GET', '/api/v1/namespaces/team/configmaps?watch=true'));
  watches.forEach((w) => w.done.catch(() => undefined));
  t.ok(await deadline(() => s.hooks.limitsStats().watches === 3), 'three watches open');
  const fourth = await start('GET', '/api/v1/namespaces/team/configmaps?watch=true').done;
  t.equal(fourth.status, 429, 'a fourth watch of the same client is refused');

  // the slow clients go away: their slots come back
  slow.forEach((x) => x.req.destroy());
  watches.forEach((x) => x.req.destroy());
  t.ok(await deadline(() => s.hooks.limitsStats().mutating === 0 && s.hooks.limitsStats().watches === 0), 'slots released when slow clients disconnect');
  const after = await start('POST', '/api/v1/namespaces/team/configmaps', cm('after')).done;
  t.equal(after.status, 201, 'writes are served again');
  t.equal((await s.admin.get(R.configmaps, 'after', 'team')).metadata?.name, 'after');
});
