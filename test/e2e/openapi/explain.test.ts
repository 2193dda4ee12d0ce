import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestApiserver } from '../../helpers/apiserver.js';
import { KUBECTL } from '../../helpers/server-process.js';

const run = promisify(execFile);

const DEPLOYMENT = (extra: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: i${extra}}]
`;

t.test('real kubectl explain and field validation against the apiserver', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-openapi-'));
  const api = await startTestApiserver();
  t.teardown(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: api.url } }],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache') };
  const k = async (...args: string[]): Promise<{ stdout: string; stderr: string }> => run(KUBECTL, args, { env, maxBuffer: 16 << 20 });
  const kfail = async (...args: string[]): Promise<string> => {
    try {
      await run(KUBECTL, args, { env });
    } catch (err) {
      return String((err as { stderr?: string }).stderr);
    }
    throw new Error(`kubectl ${args.join(' ')} should have failed`);
  };

  const strategy = (await k('explain', 'deployment.spec.strategy')).stdout;
  t.match(strategy, /FIELD: strategy <DeploymentStrategy>/, 'explain names the field type');
  t.match(strategy, /The deployment strategy to use to replace existing pods with new ones/, 'field description');
  t.match(strategy, /rollingUpdate\s+<RollingUpdateDeployment>/, 'lists rollingUpdate');
  t.match(strategy, /type\s+<string>\s+Type of deployment/, 'lists type with its description');

  const ports = (await k('explain', 'pod.spec.containers.ports')).stdout;
  t.match(ports, /FIELD: ports <\[\]ContainerPort>/, 'a list of ContainerPort');
  t.match(ports, /containerPort\s+<integer> -required-\s+Number of port to expose/, 'required integer field');
  t.match(ports, /protocol\s+<string>/, 'protocol');

  t.match((await k('explain', 'deployment.spec.strategy.rollingUpdate.maxSurge')).stdout, /FIELD: maxSurge <IntOrString>/, 'int-or-string');
  t.match((await k('explain', 'pod.spec.containers.resources.limits')).stdout, /FIELD: limits <map\[string\]Quantity>/, 'map of Quantity');
  t.match((await k('explain', 'svc.spec')).stdout, /clusterIP\s+<string>/, 'short names resolve');
  t.match(await kfail('explain', 'deployment.spec.nosuchfield'), /field "nosuchfield" does not exist/, 'an unknown field is refused');

  const file = join(dir, 'd.yaml');
  writeFileSync(file, DEPLOYMENT(', bogus: 1'));
  t.match(await kfail('apply', '-f', file), /strict decoding error: unknown field "spec\.template\.spec\.containers\[0\]\.bogus"/, 'apply (validate=strict) refuses a nested unknown field');
  const warned = await k('apply', '--validate=warn', '-f', file);
  t.match(warned.stderr, /Warning: unknown field "spec\.template\.spec\.containers\[0\]\.bogus"/, 'validate=warn answers with a warning');
  t.match(warned.stdout, /deployment.apps\/web created/, 'and creates the object');
  writeFileSync(file, DEPLOYMENT(', ports: [{containerPort: eighty}]'));
  t.match(await kfail('apply', '--validate=false', '-f', file), /cannot unmarshal string into Go struct field ContainerPort\.spec\.template\.spec\.containers\.ports\.containerPort of type int32/, 'a type error is refused even without validation (patch path)');
  t.match(await kfail('patch', 'deploy', 'web', '--type=merge', '-p', '{"spec":{"replicas":"3"}}'), /cannot unmarshal string into Go struct field DeploymentSpec\.spec\.replicas of type int32/, 'merge patch type error');
  const warnPatch = await k('patch', 'deploy', 'web', '--type=merge', '-p', '{"spec":{"nope":1}}');
  t.match(warnPatch.stderr, /Warning: unknown field "spec\.nope"/, 'kubectl patch (Warn) brings a new unknown field: a warning');
  const strictPatch = async (body: unknown): Promise<{ status: number; message: string }> => {
    const res = await fetch(`${api.url}/apis/apps/v1/namespaces/default/deployments/web?fieldValidation=Strict`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(body) });
    return { status: res.status, message: String(((await res.json()) as { message?: string }).message) };
  };
  t.match(await strictPatch({ spec: { other: 1 } }), { status: 400, message: 'strict decoding error: unknown field "spec.other"' }, 'a strict patch bringing a new unknown field is refused');
  t.match(await strictPatch({ spec: { replicas: 3 } }), { status: 200 }, 'a strict patch of a known field passes though the object holds an earlier unknown field');
  t.equal((await k('get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas}')).stdout, '3', 'patched');
});
