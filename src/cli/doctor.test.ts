import t from 'tap';
import { createServer } from 'node:net';
import { formatChecks, runChecks } from './doctor.js';

t.test('doctor reports a port in use, with the fix', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '0.0.0.0', () => r()));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const checks = await runChecks([port]);
  const c = checks.find((x) => x.name === `port ${port}`)!;
  t.equal(c.ok, false, 'busy port is reported');
  t.match(formatChecks(checks), new RegExp(`✗ port ${port}: in use[\\s\\S]*fix: ss -ltnp`));
  t.ok(checks.find((x) => x.name === 'iptables'), 'iptables is checked');
});
