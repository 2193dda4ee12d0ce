// A private registry on loopback (docker-registry + htpasswd basic auth): an image pushed there is
// pulled with an imagePullSecret (kubernetes.io/dockerconfigjson) and refused without one.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { R } from '../../../src/api/registry.js';
import { dockerAvailable, getPod, podSpec, startTestNode, waitFor } from './harness.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

t.test('imagePullSecrets against a loopback registry with basic auth', async (t) => {
  if (!(await dockerAvailable())) return t.fail('docker with the skiff images is required (scripts/images.sh)');
  const have = await execa('sh', ['-c', 'command -v docker-registry && command -v htpasswd'], { reject: false });
  if (have.exitCode !== 0) return t.fail('docker-registry and htpasswd are required (apt: docker-registry apache2-utils)');
  const dir = await mkdtemp(join(tmpdir(), 'skiff-registry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const userDockerConfig = await readFile(join(homedir(), '.docker', 'config.json'), 'utf8').catch(() => undefined);
  const port = await freePort();
  const reg = `127.0.0.1:${port}`;
  const htpasswd = await execa('htpasswd', ['-Bbn', 'skiff', 's3cret']);
  await writeFile(join(dir, 'htpasswd'), String(htpasswd.stdout));
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1', 'log: { level: error }', `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }`,
    `http: { addr: "${reg}" }`, `auth: { htpasswd: { realm: skiff, path: ${join(dir, 'htpasswd')} } }`, '',
  ].join('\n'));
  const registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  t.teardown(() => { registry.kill('SIGKILL'); });
  await waitFor('registry up', async () => (await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${reg}/v2/`], { reject: false })).stdout === '401');

  const image = `${reg}/skiff-test/bb:1`;
  const pushCfg = join(dir, 'push-config');
  t.teardown(async () => { await execa('docker', ['rmi', '-f', image], { reject: false }); });
  await execa('docker', ['tag', 'skiff/busybox:1.36', image]);
  await execa('docker', ['--config', pushCfg, 'login', reg, '-u', 'skiff', '--password-stdin'], { input: 's3cret' });
  await execa('docker', ['--config', pushCfg, 'push', image]);
  await execa('docker', ['rmi', image]); // the kubelet must really pull it

  const node = await startTestNode(t);
  const auth = Buffer.from('skiff:s3cret').toString('base64');
  await node.client.create(R.secrets, {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'regcred', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [reg]: { auth } } })).toString('base64') },
  }, 'default');
  await node.client.create(R.pods, podSpec('nosecret', node.nodeName, { containers: [{ name: 'c', image, command: ['sleep', '600'] }] }), 'default');
  const refused = await waitFor('ImagePullBackOff without the secret', async () => {
    const p = await getPod(node.client, 'nosecret');
    const w = p.status?.containerStatuses?.[0]?.state?.waiting;
    return w?.reason === 'ImagePullBackOff' || w?.reason === 'ErrImagePull' ? w : undefined;
  }, 60_000);
  t.match(refused.message, /no basic auth credentials|unauthorized|denied/i, `refused: ${refused.message}`);
  await node.client.create(R.pods, podSpec('withsecret', node.nodeName, { containers: [{ name: 'c', image, command: ['sleep', '600'] }], imagePullSecrets: [{ name: 'regcred' }] }), 'default');
  const ok = await waitFor('running with the secret', async () => {
    const p = await getPod(node.client, 'withsecret');
    return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, 60_000);
  t.equal(ok.status?.containerStatuses?.[0]?.image, image);
  t.equal(await readFile(join(homedir(), '.docker', 'config.json'), 'utf8').catch(() => undefined), userDockerConfig, "the user's docker config is untouched");
});
