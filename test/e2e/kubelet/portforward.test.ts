// kubectl v1.33 port-forward (SPDY/3.1 tunnelled in a WebSocket) through the in-process apiserver's
// pod streaming plugin to a docker kubelet whose host is a test netns: the pod's HTTP page, twice,
// and a server bound only to the pod's 127.0.0.1.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { podStreamingPlugin } from '../../../src/kubelet/streaming/apiserver-plugin.js';
import { R } from '../../../src/api/registry.js';
import type { ApiClient } from '../../../src/client/types.js';
import { dockerAvailable, getPod, isReady, podSpec, startTestNode, waitFor } from '../../integration/kubelet/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function httpGet(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = get({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', reject);
  });
}

t.test('kubectl port-forward reaches the pod\'s HTTP server, connection after connection', async (t) => {
  const kubectlPath = join(ROOT, '.bin/kubectl');
  if (!existsSync(kubectlPath)) return t.fail('.bin/kubectl is required');
  if (!(await dockerAvailable())) return t.fail('docker with the skiff images is required (scripts/images.sh)');
  const late: { client?: ApiClient } = {};
  const api = await startTestApiserver({ hooks: { plugins: [podStreamingPlugin({ get client() { return late.client!; }, kubeletScheme: 'http' })] } });
  late.client = api.client;
  const client = api.client;
  t.teardown(() => api.close());
  const dir = await mkdtemp(join(tmpdir(), 'skiff-pf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'kubeconfig');
  await writeFile(cfg, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${api.url}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: c\n`);
  const env = { PATH: process.env.PATH, HOME: dir, KUBECACHEDIR: join(dir, 'cache') };

  const node = await startTestNode(t, { client, nodeIP: '127.0.0.1' });
  await client.create(R.pods, podSpec('web', node.nodeName, {
    containers: [{ name: 'httpd', image: 'skiff/busybox:1.36', command: ['sh', '-c', 'mkdir -p /www /lo && echo hello-from-pod > /www/index.html && echo hello-from-localhost > /lo/index.html'
      + ' && httpd -p 127.0.0.1:8081 -h /lo && dd if=/dev/zero bs=1024 count=512 2>/dev/null | tr \\\\0 x > /www/big && exec httpd -f -p 80 -h /www'] }],
  }), 'default');
  await waitFor('web ready', async () => isReady(await getPod(client, 'web')), 60_000);

  const local = await freePort();
  const pf = spawn(kubectlPath, ['--kubeconfig', cfg, 'port-forward', 'pod/web', `${local}:80`, '--address', '127.0.0.1'], { env });
  t.teardown(() => { pf.kill('SIGKILL'); });
  let out = '';
  pf.stdout.on('data', (d) => (out += d));
  pf.stderr.on('data', (d) => (out += d));
  await waitFor('kubectl to listen', () => out.includes(`Forwarding from 127.0.0.1:${local}`), 30_000)
    .catch((err: Error) => { throw new Error(`${err.message}; kubectl said: ${out}`); });

  for (const i of [1, 2]) {
    const r = await httpGet(local).catch((err: Error) => { throw new Error(`connection ${i}: ${err.message}; kubectl said: ${out}`); });
    t.equal(r.status, 200, `connection ${i}: status`);
    t.equal(r.body, 'hello-from-pod\n', `connection ${i}: the pod's page`);
  }
  // more than SPDY's 64 KiB initial window: the client does no flow control, neither may we wait for it
  const big = await httpGet(local, '/big');
  t.equal(big.body.length, 512 * 1024, 'a 512 KiB page arrives whole');
  t.match(big.body, /^x+$/);
  t.notMatch(out, /error|lost connection/i, 'kubectl reported no error');
  t.equal(pf.exitCode, null, 'kubectl port-forward is still running');

  // a server bound to the pod's 127.0.0.1 only: unreachable at the pod IP, reached by port-forward
  // (as in Kubernetes, the kubelet connects from inside the pod's network namespace)
  const podIP = (await getPod(client, 'web')).status!.podIP!;
  const direct = await node.host.exec('curl', ['-s', '--max-time', '3', `http://${podIP}:8081/`], { allowFail: true });
  t.not(direct.exitCode, 0, 'the localhost-only server does not answer on the pod IP');
  const localPort = await freePort();
  const lo = spawn(kubectlPath, ['--kubeconfig', cfg, 'port-forward', 'pod/web', `${localPort}:8081`, '--address', '127.0.0.1'], { env });
  t.teardown(() => { lo.kill('SIGKILL'); });
  let loOut = '';
  lo.stdout.on('data', (d) => (loOut += d));
  lo.stderr.on('data', (d) => (loOut += d));
  await waitFor('kubectl to listen for the localhost port', () => loOut.includes(`Forwarding from 127.0.0.1:${localPort}`), 30_000);
  const fromLo = await httpGet(localPort).catch((err: Error) => { throw new Error(`localhost port: ${err.message}; kubectl said: ${loOut}`); });
  t.equal(fromLo.body, 'hello-from-localhost\n', 'port-forward reaches a server bound to the pod\'s 127.0.0.1');
  lo.kill('SIGKILL');

  // the legacy form: POST with Upgrade: SPDY/3.1 (kubectl without WebSocket tunnelling)
  const local3 = await freePort();
  const legacy = spawn(kubectlPath, ['--kubeconfig', cfg, '-v=6', 'port-forward', 'pod/web', `${local3}:80`, '--address', '127.0.0.1'], { env: { ...env, KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } });
  t.teardown(() => { legacy.kill('SIGKILL'); });
  let legacyOut = '';
  legacy.stdout.on('data', (d) => (legacyOut += d));
  legacy.stderr.on('data', (d) => (legacyOut += d));
  await waitFor('legacy kubectl to listen', () => legacyOut.includes(`Forwarding from 127.0.0.1:${local3}`), 30_000)
    .catch((err: Error) => { throw new Error(`${err.message}; kubectl said: ${legacyOut}`); });
  for (const i of [1, 2]) {
    const r = await httpGet(local3).catch((err: Error) => { throw new Error(`legacy connection ${i}: ${err.message}; kubectl said: ${legacyOut}`); });
    t.equal(r.body, 'hello-from-pod\n', `legacy SPDY upgrade, connection ${i}: the pod's page`);
  }
  legacy.kill('SIGKILL');
  t.match(legacyOut, /verb="POST" url="[^"]+\/portforward" status="101/, 'kubectl used the SPDY upgrade');
  t.notMatch(legacyOut, /verb="GET" url="[^"]+\/portforward"/, 'and no WebSocket');

  // nothing listens on 81 in the pod: the reason travels back on the error stream
  const local2 = await freePort();
  const bad = spawn(kubectlPath, ['--kubeconfig', cfg, 'port-forward', 'pod/web', `${local2}:81`, '--address', '127.0.0.1'], { env });
  t.teardown(() => { bad.kill('SIGKILL'); });
  let badOut = '';
  bad.stdout.on('data', (d) => (badOut += d));
  bad.stderr.on('data', (d) => (badOut += d));
  await waitFor('kubectl to listen on the second port', () => badOut.includes(`Forwarding from 127.0.0.1:${local2}`), 30_000);
  await t.rejects(httpGet(local2), 'the local connection is closed without an answer');
  await waitFor('kubectl to report the error', () => /error forwarding port 81 to pod [\d.]+: .*ECONNREFUSED/.test(badOut), 20_000)
    .catch((err: Error) => { throw new Error(`${err.message}; kubectl said: ${badOut}`); });
  t.pass('kubectl shows why the pod port could not be reached');
});
