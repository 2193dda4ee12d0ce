// NetworkPolicy end to end: the real apiserver (in-process), a netns-runtime kubelet whose host is a
// throwaway node netns (pods are host processes in their own netns on the node's bridge; no Docker),
// netpol programming that node netns, and everything applied with real kubectl 1.33. Probes go from
// pod netns to pod IPs inside the node netns only (it has no default route).
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import { startNetpol } from '../../../src/netpol/index.js';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { isReady, startTestNode, waitFor } from '../../integration/kubelet/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KUBECTL = join(ROOT, '.bin/kubectl');

interface Kubectl {
  (args: string[], input?: string): Promise<{ code: number; out: string; err: string }>;
}

async function kubectlFor(t: Tap, url: string): Promise<Kubectl> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-np-kubectl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'kubeconfig');
  await writeFile(cfg, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${url}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: c\n`);
  const env = { PATH: process.env.PATH, HOME: dir, KUBECACHEDIR: join(dir, 'cache') };
  return (args, input) => new Promise((resolve) => {
    const p = execFile(KUBECTL, ['--kubeconfig', cfg, '--request-timeout=30s', ...args], { env, timeout: 60_000 }, (err, out, errOut) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }));
    p.stdin?.end(input ?? '');
  });
}

type Tap = { teardown(fn: () => unknown): void };

const podYaml = (ns: string, name: string, labels: Record<string, string>, nodeName: string, command: string[], probe = false) => `
apiVersion: v1
kind: Pod
metadata:
  name: "${name}"
  namespace: "${ns}"
  labels: ${JSON.stringify(labels)}
spec:
  nodeName: "${nodeName}"
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: host
    command: ${JSON.stringify(command)}${probe ? `
    ports: [{name: http, containerPort: 80}]
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 1}` : ''}
---`;

const policyYaml = (ns: string, name: string, spec: object) =>
  JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });

t.test('kubectl-applied NetworkPolicies isolate netns-runtime pods (probes before/after)', async (t) => {
  if (!existsSync(KUBECTL)) return t.fail(`kubectl 1.33 is required at ${KUBECTL}`);
  const api = await startTestApiserver();
  t.teardown(() => api.close());
  const kubectl = await kubectlFor(t, api.url);
  const ok = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    t.equal(r.code, 0, `kubectl ${args.join(' ')}${r.code ? `: ${r.err}` : ''}`);
    return r.out;
  };

  const node = await startTestNode(t, { client: api.client, runtime: 'netns' });
  // netpol before any pod network exists (the kubelet contract in src/netpol/README.md)
  const netpol = await startNetpol({ client: api.client, host: node.host, nodeName: node.nodeName, dropLog: false });
  t.teardown(() => netpol.stop());

  const web = await mkdtemp(join(tmpdir(), 'skiff-np-web-'));
  t.teardown(() => rm(web, { recursive: true, force: true }));
  await writeFile(join(web, 'index.html'), 'hello\n');
  const sleep = ['sleep', '600'];
  await ok(['apply', '-f', '-'], [
    // quoted: YAML 1.1 reads a bare y as a boolean
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: "x", labels: {team: "x"}}\n---',
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: "y", labels: {team: "y"}}\n---',
    podYaml('x', 'server', { app: 'server' }, node.nodeName, ['busybox', 'httpd', '-f', '-p', '80', '-h', web], true),
    podYaml('x', 'client', { role: 'client' }, node.nodeName, sleep),
    podYaml('y', 'other', { role: 'client' }, node.nodeName, sleep),
  ].join('\n'));

  const pods = await waitFor('pods running with IPs', async () => {
    const list = await Promise.all([['x', 'server'], ['x', 'client'], ['y', 'other']].map(([ns, n]) => api.client.get<Pod & KubeObject>(R.pods, n, ns)));
    return list.every((p) => p.status?.podIP && p.status.containerStatuses?.[0]?.state?.running) && isReady(list[0]) ? list : undefined;
  }, 60_000);
  const serverIP = pods[0].status!.podIP!;
  const netnsOf = async (uid: string): Promise<string> => {
    const dir = join(node.dataDir, 'netns-runtime', 'sandboxes');
    for (const f of await readdir(dir)) {
      const rec = JSON.parse(await readFile(join(dir, f), 'utf8')) as { podUid: string; netns: string };
      if (rec.podUid === uid) return rec.netns;
    }
    throw new Error(`no sandbox for pod ${uid}`);
  };
  const from = { client: await netnsOf(pods[1].metadata!.uid!), other: await netnsOf(pods[2].metadata!.uid!) };
  const probe = async (src: keyof typeof from): Promise<boolean> => {
    const r = await node.host.exec('ip', ['netns', 'exec', from[src], 'curl', '-s', '--max-time', '1', `http://${serverIP}/`], { allowFail: true });
    return r.exitCode === 0 && r.stdout.trim() === 'hello';
  };
  /** Polls until the probe gives `want`, then checks it holds on 3 more probes. */
  const expectReach = async (src: keyof typeof from, want: boolean, what: string) => {
    await waitFor(`${src} ${want ? 'reaches' : 'is denied'} (${what})`, async () => (await probe(src)) === want, 30_000, 100).catch((err: Error) => t.fail(err.message));
    let steady = 0;
    for (let i = 0; i < 3; i++) if ((await probe(src)) === want) steady++;
    t.equal(steady, 3, `${what}: ${src === 'client' ? 'x/client' : 'y/other'} -> x/server ${want ? 'allowed' : 'denied'}`);
  };

  // before: no policy, everything open (once netpol has programmed the new pods)
  await expectReach('client', true, 'no policy');
  await expectReach('other', true, 'no policy');

  // ingress to the server only from role=client pods of its own namespace, on the named port
  await ok(['apply', '-f', '-'], policyYaml('x', 'server-ingress', {
    podSelector: { matchLabels: { app: 'server' } },
    ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ port: 'http' }] }],
  }));
  t.match(await ok(['get', 'networkpolicy', '-n', 'x']), /server-ingress/, 'kubectl lists the policy');
  await expectReach('other', false, 'pod selector is namespace-local');
  await expectReach('client', true, 'same-namespace client allowed');

  // a second policy adds up: namespaces labelled trusted=yes may connect; label y with kubectl
  await ok(['apply', '-f', '-'], policyYaml('x', 'trusted-namespaces', {
    podSelector: { matchLabels: { app: 'server' } },
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { trusted: 'yes' } } }] }],
  }));
  await expectReach('other', false, 'namespace not labelled yet');
  await ok(['label', 'namespace', 'y', 'trusted=yes']);
  await expectReach('other', true, 'namespace label change admits y');
  await ok(['label', 'namespace', 'y', 'trusted-']);
  await expectReach('other', false, 'label removed again');

  // egress isolation of the client pod
  await ok(['apply', '-f', '-'], policyYaml('x', 'client-no-egress', { podSelector: { matchLabels: { role: 'client' } }, policyTypes: ['Egress'] }));
  await expectReach('client', false, 'egress default-deny on the client');

  // deleting every policy opens everything again
  await ok(['delete', 'networkpolicy', '--all', '-n', 'x']);
  await expectReach('client', true, 'policies deleted');
  await expectReach('other', true, 'policies deleted');
});
