// Real kubectl v1.33 and helm v4 against the real apiserver (in-process, plain HTTP on loopback, no
// auth): the typed commands and helm's release Secrets send protobuf bodies only.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { kubernetesTool } from '../../../src/apiserver/protobuf/capture.js';
import { R } from '../../../src/api/registry.js';
import type { KubeObject } from '../../../src/api/object.js';
import { registry } from '../../../src/util/metrics.js';

type Obj = KubeObject & { spec?: Record<string, unknown>; data?: Record<string, string>; type?: string };

const dir = mkdtempSync(join(tmpdir(), 'skiff-pb-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const api = await startTestApiserver();
t.teardown(() => api.close());

const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(
  kubeconfig,
  [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: skiff, cluster: {server: "${api.url}"}}]`,
    'users: [{name: anon, user: {}}]',
    'contexts: [{name: skiff, context: {cluster: skiff, user: anon, namespace: default}}]',
    'current-context: skiff',
    '',
  ].join('\n'),
);
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache'), HELM_CACHE_HOME: join(dir, 'helm-cache'), HELM_CONFIG_HOME: join(dir, 'helm-config'), HELM_DATA_HOME: join(dir, 'helm-data') };

async function run(bin: string, args: string[]): Promise<string> {
  const r = await execa(bin, args, { env, extendEnv: false, reject: false, timeout: 60_000, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const kubectl = await kubernetesTool('kubectl', dir);
const k = (...args: string[]) => run(kubectl, ['--request-timeout=20s', ...args]);
/** How many protobuf bodies of this kind the apiserver decoded (it runs in this process). */
async function decoded(kind: string): Promise<number> {
  const m = registry.getSingleMetric('skiff_apiserver_protobuf_decodes_total');
  const values = m ? (await m.get()).values : [];
  return values.filter((v) => v.labels.kind === kind && v.labels.result === 'ok').reduce((n, v) => n + v.value, 0);
}

const get = (ref: typeof R.pods, name: string, ns?: string) => api.client.get<Obj>(ref, name, ns);

t.test('kubectl create deployment (2 replicas)', async (t) => {
  t.match(await k('create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=2'), /deployment.apps\/web created/);
  const d = await get(R.deployments, 'web', 'default');
  t.equal(d.spec?.replicas, 2);
  t.strictSame(d.spec?.selector, { matchLabels: { app: 'web' } });
  t.match(d.spec?.template, { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27' }] } });
  t.equal(d.metadata?.labels?.app, 'web');
  t.ok((await decoded('Deployment')) >= 1, 'the body was protobuf');
});

t.test('kubectl create secret generic --from-literal', async (t) => {
  await k('create', 'secret', 'generic', 'creds', '--from-literal=user=admin', '--from-literal=password=s3cr3t!');
  const s = await get(R.secrets, 'creds', 'default');
  t.equal(s.type, 'Opaque');
  t.strictSame(s.data, { password: Buffer.from('s3cr3t!').toString('base64'), user: Buffer.from('admin').toString('base64') });
  t.equal(Buffer.from(await k('get', 'secret', 'creds', '-o', 'jsonpath={.data.user}'), 'base64').toString(), 'admin', 'kubectl reads it back');
});

t.test('kubectl create configmap', async (t) => {
  await k('create', 'configmap', 'settings', '--from-literal=mode=fast', '--from-literal=level=3');
  t.strictSame((await get(R.configmaps, 'settings', 'default')).data, { level: '3', mode: 'fast' });
});

t.test('kubectl create namespace', async (t) => {
  await k('create', 'namespace', 'team-a');
  t.equal((await get(R.namespaces, 'team-a')).metadata?.name, 'team-a');
  t.match(await k('get', 'namespace', 'team-a', '-o', 'name'), /namespace\/team-a/);
});

t.test('kubectl create job --image=x -- cmd', async (t) => {
  await k('create', 'job', 'once', '--image=x', '--', 'echo', 'hello', 'world');
  const j = await get(R.jobs, 'once', 'default');
  t.match(j.spec?.template, { spec: { restartPolicy: 'Never', containers: [{ name: 'once', image: 'x', command: ['echo', 'hello', 'world'] }] } });
});

t.test('helm install, list, uninstall (protobuf Secret POST/PUT/DELETE)', async (t) => {
  const helm = await kubernetesTool('helm', dir);
  const chart = join(dir, 'chart');
  mkdirSync(join(chart, 'templates'), { recursive: true });
  writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\n');
  writeFileSync(join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  greeting: hello\n');
  const [secretsBefore, deletesBefore] = [await decoded('Secret'), await decoded('DeleteOptions')];
  await run(helm, ['install', 'demo', chart, '--namespace=default', '--disable-openapi-validation']);
  t.equal((await get(R.configmaps, 'demo-cm', 'default')).data?.greeting, 'hello', 'chart object applied');
  const rel = await get(R.secrets, 'sh.helm.release.v1.demo.v1', 'default');
  t.equal(rel.type, 'helm.sh/release.v1');
  t.match(rel.metadata?.labels, { owner: 'helm', name: 'demo', status: 'deployed', version: '1' }, 'PUT after install marked it deployed');
  t.match(await run(helm, ['list', '--namespace=default']), /demo\s+default\s+1\s+.*deployed\s+tiny-0\.1\.0/);
  t.match(await run(helm, ['uninstall', 'demo', '--namespace=default']), /release "demo" uninstalled/);
  const left = await api.client.list<Obj>(R.secrets, { namespace: 'default', labelSelector: 'owner=helm' });
  t.equal(left.items.length, 0, 'release secrets deleted (protobuf DeleteOptions)');
  await t.rejects(get(R.configmaps, 'demo-cm', 'default'), 'chart object deleted');
  t.ok((await decoded('Secret')) - secretsBefore >= 3, 'release Secret POST, PUT deployed, PUT uninstalling came as protobuf');
  t.ok((await decoded('DeleteOptions')) - deletesBefore >= 1, 'helm DELETE carried protobuf DeleteOptions');
});
