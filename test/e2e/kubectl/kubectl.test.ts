import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServerProcess, freePort, KUBECTL, REPO } from '../../helpers/server-process.js';

const run = promisify(execFile);

t.test('real kubectl 1.33 against skiff server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-kubectl-'));
  const srv = await startServerProcess(dir, await freePort());
  t.teardown(async () => {
    await srv.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { ...process.env, KUBECONFIG: srv.kubeconfig, KUBECACHEDIR: join(dir, 'cache') };
  const k = async (...args: string[]): Promise<string> => (await run(KUBECTL, args, { env, maxBuffer: 16 << 20 })).stdout;
  const kfail = async (...args: string[]): Promise<string> => {
    try {
      await run(KUBECTL, args, { env });
    } catch (err) {
      return String((err as { stderr?: string }).stderr);
    }
    throw new Error(`kubectl ${args.join(' ')} should have failed`);
  };

  const resources = await k('api-resources');
  for (const r of ['deployments', 'endpointslices', 'networkpolicies', 'horizontalpodautoscalers', 'poddisruptionbudgets', 'leases', 'clusterrolebindings']) t.match(resources, r, `api-resources lists ${r}`);

  const applied = await k('apply', '-f', resolve(REPO, 'test/fixtures/every-kind.yaml'));
  t.equal(applied.trim().split('\n').length, 29, 'apply -f created every document');
  t.match(await k('apply', '-f', resolve(REPO, 'test/fixtures/every-kind.yaml')), /configmap\/cfg unchanged/, 're-apply is unchanged');

  t.match(await k('get', 'deploy', '-n', 'e2e-all'), /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s*\nweb\s+/, 'table columns');
  t.match(await k('get', 'svc', 'web', '-n', 'e2e-all', '-o', 'wide'), /SELECTOR[\s\S]*app=web/, '-o wide shows priority-1 columns');
  t.match(await k('get', 'cm', 'cfg', '-n', 'e2e-all', '-o', 'yaml'), /a: "1"/, '-o yaml');
  t.equal(JSON.parse(await k('get', 'secret', 'sec', '-n', 'e2e-all', '-o', 'json')).data.password, Buffer.from('hunter2').toString('base64'), 'stringData stored as base64 data');
  t.equal(await k('get', 'svc', 'web', '-n', 'e2e-all', '-o', 'jsonpath={.spec.ports[0].targetPort}'), '8080', 'jsonpath');
  t.match(await k('describe', 'deploy', 'web', '-n', 'e2e-all'), /Replicas:\s+2 desired/, 'describe');
  t.match(await k('get', 'all', '-n', 'e2e-all'), /deployment\.apps\/web/, 'get all');

  await k('patch', 'deploy', 'web', '-n', 'e2e-all', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"skiff/busybox:1.37"}]}}}}');
  t.equal(await k('get', 'deploy', 'web', '-n', 'e2e-all', '-o', 'jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].command[0]}'), 'skiff/busybox:1.37 httpd', 'strategic merge patch merges containers by name');
  await k('patch', 'cm', 'cfg', '-n', 'e2e-all', '--type=merge', '-p', '{"data":{"b":"2"}}');
  await k('patch', 'cm', 'cfg', '-n', 'e2e-all', '--type=json', '-p', '[{"op":"remove","path":"/data/a"}]');
  t.same(JSON.parse(await k('get', 'cm', 'cfg', '-n', 'e2e-all', '-o', 'jsonpath={.data}')), { b: '2' }, 'merge and json patches');

  const ssa = join(dir, 'ssa.yaml');
  writeFileSync(ssa, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa, namespace: e2e-all}\ndata: {k: one}\n');
  t.match(await k('apply', '--server-side', '-f', ssa), /serverside-applied/);
  t.match(await k('apply', '--server-side', '-f', ssa), /serverside-applied/, 'twice');
  await k('patch', 'cm', 'ssa', '-n', 'e2e-all', '--type=merge', '-p', '{"data":{"k":"two"}}');
  t.match(await kfail('apply', '--server-side', '-f', ssa), /conflict with "kubectl-patch"/, 'field conflict is a 409');
  await k('apply', '--server-side', '--force-conflicts', '-f', ssa);
  t.equal(await k('get', 'cm', 'ssa', '-n', 'e2e-all', '-o', 'jsonpath={.data.k}'), 'one', '--force-conflicts takes the field');

  t.match(await k('scale', 'deploy', 'web', '-n', 'e2e-all', '--replicas=3'), /scaled/);
  t.equal(await k('get', 'deploy', 'web', '-n', 'e2e-all', '-o', 'jsonpath={.spec.replicas}'), '3');
  await k('label', 'cm', 'cfg', '-n', 'e2e-all', 'tier=web');
  await k('annotate', 'cm', 'cfg', '-n', 'e2e-all', 'note=hi');
  t.equal(await k('get', 'cm', '-n', 'e2e-all', '-l', 'tier=web', '-o', 'jsonpath={.items[0].metadata.annotations.note}'), 'hi', 'label + annotate + label selector');

  // get -w sees ADDED, MODIFIED and DELETED
  const watcher = spawn(KUBECTL, ['get', 'cm', '-n', 'e2e-all', '-w', '--output-watch-events', '-o', 'json'], { env });
  let out = '';
  watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  t.teardown(() => watcher.kill());
  await new Promise((r) => setTimeout(r, 1500));
  writeFileSync(join(dir, 'w.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched, namespace: e2e-all}\ndata: {k: v}\n');
  await k('apply', '-f', join(dir, 'w.yaml'));
  await k('label', 'cm', 'watched', '-n', 'e2e-all', 'x=y');
  await k('delete', 'cm', 'watched', '-n', 'e2e-all');
  const events = (): string =>
    out
      .split(/^\{/m)
      .filter(Boolean)
      .map((doc) => {
        const type = doc.match(/"type":\s*"(ADDED|MODIFIED|DELETED)"/)?.[1];
        const name = doc.match(/"name":\s*"([^"]+)"/)?.[1];
        return `${type} ${name}`;
      })
      .join('\n');
  const end = Date.now() + 10_000;
  while (!/DELETED watched/.test(events()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.match(events(), /ADDED watched[\s\S]*MODIFIED watched[\s\S]*DELETED watched/, 'get -w saw ADDED, MODIFIED, DELETED');

  // deletion with the three cascade modes, checked on the objects themselves
  const end1 = Date.now() + 20_000;
  while (!(await k('get', 'pods', '-n', 'e2e-all', '-l', 'app=web', '-o', 'name')).trim() && Date.now() < end1) await new Promise((r) => setTimeout(r, 200));
  await k('delete', 'deploy', 'web', '-n', 'e2e-all', '--cascade=orphan');
  const rs = JSON.parse(await k('get', 'rs', '-n', 'e2e-all', '-l', 'app=web', '-o', 'json')) as { items: { metadata: { ownerReferences?: unknown[] } }[] };
  t.ok(rs.items.length >= 1 && rs.items.every((r) => !r.metadata.ownerReferences?.length), 'orphan: ReplicaSets remain without owner');
  await k('delete', 'rs', '-n', 'e2e-all', '-l', 'app=web', '--cascade=foreground');
  t.equal((await k('get', 'rs,pods', '-n', 'e2e-all', '-l', 'app=web', '-o', 'name')).trim(), '', 'foreground: ReplicaSet gone only after its pods');
  await k('delete', 'sts', 'db', '-n', 'e2e-all', '--cascade=background');
  const end2 = Date.now() + 20_000;
  let left = 'x';
  while (left && Date.now() < end2) {
    left = (await k('get', 'pods', '-n', 'e2e-all', '-l', 'app=db', '-o', 'name')).trim();
    if (left) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(left, '', 'background: the garbage collector removed the StatefulSet pods');
});
