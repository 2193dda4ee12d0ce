// helm 4 against a whole `skiff up` in its own netns: install the local chart in
// test/fixtures/charts/web (Deployment + Service + Ingress), upgrade it, roll it back and uninstall
// it, checking the objects and the served page through the ingress each time.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import { startNetnsCluster, type NetnsCluster } from '../../helpers/netns-cluster.js';
import { HELM, REPO } from '../../helpers/server-process.js';
import { curl, kubectl, kubectlJson, runIn, waitFor } from './lib.js';

const CHART = join(REPO, 'test/fixtures/charts/web');
const HOST = 'helm.example.test';

function helmFor(t: Test, c: NetnsCluster): (...args: string[]) => Promise<string> {
  const home = mkdtempSync(join(tmpdir(), 'skiff-e2e-helm-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  return async (...args: string[]) => {
    const r = await runIn(c, HELM, args, { env, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
}

const page = (c: NetnsCluster) => curl(c, ['-H', `Host: ${HOST}`, `http://${c.nodeIP}/`]);

async function expectPage(t: Test, c: NetnsCluster, text: string, msg: string): Promise<void> {
  const body = await waitFor(`ingress serves "${text}"`, async () => { const b = await page(c); return b?.includes(text) ? b : undefined; }, 60_000);
  t.match(body, text, msg);
}

async function deployment(c: NetnsCluster): Promise<Deployment> {
  return kubectlJson<Deployment>(c, ['get', 'deployment', 'r1-web']);
}

t.test('helm install, upgrade, rollback and uninstall of a local chart', async (t) => {
  if (!existsSync(HELM)) return t.fail(`helm 4 is required at ${HELM}`);
  const c = await startNetnsCluster();
  t.teardown(() => c.stop());
  const helm = helmFor(t, c);

  await helm('install', 'r1', CHART, '--wait', '--timeout', '120s');
  let d = await deployment(c);
  t.equal(d.spec!.replicas, 1, 'install: Deployment with 1 replica');
  t.equal(d.status?.readyReplicas, 1, 'install: --wait returned with the replica ready');
  t.match(await kubectl(c, ['get', 'svc,ingress', '-l', 'app.kubernetes.io/instance=r1', '-o', 'name']), /service\/r1-web[\s\S]*ingress\.networking\.k8s\.io\/r1-web/, 'install: Service and Ingress created');
  await expectPage(t, c, 'hello from helm', 'install: the ingress serves the release');

  await helm('upgrade', 'r1', CHART, '--set', 'replicaCount=2', '--set', 'message=hello v2', '--wait', '--timeout', '120s');
  d = await deployment(c);
  t.equal(d.spec!.replicas, 2, 'upgrade: 2 replicas');
  t.equal(d.status?.readyReplicas, 2, 'upgrade: both ready after --wait');
  await expectPage(t, c, 'hello v2', 'upgrade: the new template is served');

  await helm('rollback', 'r1', '1', '--wait', '--timeout', '120s');
  d = await deployment(c);
  t.equal(d.spec!.replicas, 1, 'rollback: back to 1 replica');
  t.match(d.spec!.template!.spec!.containers[0].command!.join(' '), /hello from helm/, 'rollback: the first template is back');
  await expectPage(t, c, 'hello from helm', 'rollback: the first page is served again');
  const history = JSON.parse(await helm('history', 'r1', '-o', 'json')) as { revision: number; status: string }[];
  t.same(history.map((h) => [h.revision, h.status]), [[1, 'superseded'], [2, 'superseded'], [3, 'deployed']], 'history: three revisions, the rollback deployed');

  await helm('uninstall', 'r1', '--wait', '--timeout', '120s');
  const left = await kubectl(c, ['get', 'deployment,svc,ingress', '-l', 'app.kubernetes.io/instance=r1', '-o', 'name']);
  t.equal(left.trim(), '', 'uninstall: no objects of the release left');
  await waitFor('release pods gone', async () => (await kubectl(c, ['get', 'pods', '-l', 'app.kubernetes.io/instance=r1', '-o', 'name'])).trim() === '', 60_000);
  t.equal((await kubectl(c, ['get', 'secrets', '-l', 'owner=helm', '-o', 'name'])).trim(), '', 'uninstall: helm release records removed');
  t.equal(await page(c), undefined, 'uninstall: the ingress no longer routes the host');
});
