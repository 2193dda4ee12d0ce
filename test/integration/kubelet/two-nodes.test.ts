// Two nodes (two host netns joined by a veth "wire"), each kubelet on the netns runtime with its own
// /24: host-gw routes to the other node's pod range let pods on different nodes talk directly.
import t from 'tap';
import { FakeApiClient } from '../../../src/client/fake.js';
import { R } from '../../../src/api/registry.js';
import { uniqueName } from '../../../src/host/netns.js';
import { getPod, isReady, podSpec, startTestNode, waitFor } from './harness.js';

t.test('pods on different nodes reach each other through host-gw routes', async (t) => {
  const client = new FakeApiClient();
  const a = await startTestNode(t, { client, runtime: 'netns', podCidr: '10.244.21.0/24', nodeIP: '192.0.2.21' });
  const b = await startTestNode(t, { client, runtime: 'netns', podCidr: '10.244.22.0/24', nodeIP: '192.0.2.22' });
  const [wa, wb] = [uniqueName('wa'), uniqueName('wb')];
  await a.host.exec('ip', ['link', 'add', wa, 'type', 'veth', 'peer', 'name', wb]);
  await a.host.exec('ip', ['link', 'set', wb, 'netns', b.host.netns!]);
  await a.host.exec('ip', ['addr', 'add', '192.0.2.21/24', 'dev', wa]);
  await b.host.exec('ip', ['addr', 'add', '192.0.2.22/24', 'dev', wb]);
  await a.host.exec('ip', ['link', 'set', wa, 'up']);
  await b.host.exec('ip', ['link', 'set', wb, 'up']);
  // (the veth goes away with the netns in the harness teardown)

  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const www = await mkdtemp(`${tmpdir()}/skiff-2n-`);
  t.teardown(() => rm(www, { recursive: true, force: true }));
  const web = ['sh', '-c', `mkdir -p ${www}/$POD_NAME; echo "hi from $POD_NAME" > ${www}/$POD_NAME/index.html; exec busybox httpd -f -p 8080 -h ${www}/$POD_NAME`];
  const env = [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }];
  await client.create(R.pods, podSpec('pa', a.nodeName, { containers: [{ name: 'c', image: 'host', command: web, env }] }), 'default');
  await client.create(R.pods, podSpec('pb', b.nodeName, { containers: [{ name: 'c', image: 'host', command: web, env }] }), 'default');
  const [pa, pb] = await waitFor('both ready', async () => {
    const ps = await Promise.all(['pa', 'pb'].map((n) => getPod(client, n)));
    if (ps.every(isReady)) return ps;
    throw new Error(JSON.stringify(ps.map((p) => p.status?.containerStatuses?.[0]?.state)));
  });
  t.match(pa.status?.podIP, /^10\.244\.21\./);
  t.match(pb.status?.podIP, /^10\.244\.22\./);
  const route = await waitFor('route to the other node', async () => {
    const r = await a.host.exec('ip', ['route', 'show', '10.244.22.0/24']);
    return r.stdout.includes('via 192.0.2.22') ? r.stdout : undefined;
  });
  t.match(route, /proto 83/, 'our route, tagged with our protocol number');
  const { readdir, readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const sbDir = join(a.dataDir, 'netns-runtime', 'sandboxes');
  const nsA = (JSON.parse(await readFile(join(sbDir, (await readdir(sbDir))[0]), 'utf8')) as { netns: string }).netns;
    const got = await waitFor('pod a -> pod b', async () => {
    const r = await a.host.exec('ip', ['netns', 'exec', nsA, 'curl', '-s', '--max-time', '3', `http://${pb.status!.podIP}:8080/`], { allowFail: true, timeoutMs: 5000 });
    return r.stdout.includes('hi from pb') ? r.stdout : undefined;
  }, 20_000);
  t.match(got, /hi from pb/, 'cross-node pod to pod through the routes');
});
