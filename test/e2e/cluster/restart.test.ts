// kill -9 of a whole `skiff up` (in its own netns, real dockerd pods) while clients loop requests at
// the NodePort, the ClusterIP and the ingress; `skiff up` again on the same data dir must adopt the
// running pods (same container IDs, none duplicated) and find every object. Failed requests per
// path during the restart are printed as a comment (they are figures to report, not asserts).
import t from 'tap';
import type { Service } from 'kubernetes-types/core/v1.js';
import { startNetnsCluster, type NetnsCluster } from '../../helpers/netns-cluster.js';
import { requestLoop, type RequestLoop } from '../../helpers/chaos.js';
import { WEB_YAML, kubectl, kubectlJson, nodeContainers, rolloutStatus, waitFor } from './lib.js';

/** A curl through CURLARGS, at most 2000 tries 0.1 s apart (the shared loop of the chaos tests). */
function curlLoop(c: NetnsCluster, curlArgs: string): RequestLoop {
  return requestLoop(c, `curl -s -o /dev/null --fail --max-time 1 ${curlArgs}`, { max: 2000 });
}

/** Every object the user made, by kind and name, with uids (a restart must keep them all). */
async function inventory(c: NetnsCluster): Promise<string[]> {
  const list = await kubectlJson<{ items: { kind: string; metadata: { name: string; uid: string } }[] }>(c,
    ['get', 'deployments,replicasets,pods,services,endpointslices,ingresses,networkpolicies,configmaps,serviceaccounts', '-n', 'default']);
  return list.items.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`).sort();
}

t.test('kill -9 skiff up under traffic, start again: pods adopted, objects kept', async (t) => {
  const c = await startNetnsCluster();
  t.teardown(() => c.stop());
  await kubectl(c, ['apply', '-f', '-'], WEB_YAML);
  await rolloutStatus(c, 'web');
  const svc = await kubectlJson<Service>(c, ['get', 'svc', 'web']);
  const loops = {
    nodePort: curlLoop(c, `http://${c.nodeIP}:${svc.spec!.ports![0].nodePort}/`),
    clusterIP: curlLoop(c, `http://${svc.spec!.clusterIP}/`),
    ingress: curlLoop(c, `-H 'Host: web.example.test' http://${c.nodeIP}/`),
  };
  t.teardown(() => Promise.all(Object.values(loops).map((l) => l.stop())));
  await waitFor('every loop answered 5 times', async () => Object.values(loops).every((l) => l.lines.filter((x) => x === 'ok').length >= 5), 30_000);
  const before = { containers: await nodeContainers(c), objects: await inventory(c) };
  t.ok(before.containers.length >= 4, `${before.containers.length} pod containers (2 pods: sandbox + web) before the kill`);
  const atKill = Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, l.lines.length]));

  await c.kill();
  t.same(await nodeContainers(c), before.containers, 'pods keep running while skiff is down');
  const t0 = Date.now();
  await c.restart();
  const upMs = Date.now() - t0;
  await rolloutStatus(c, 'web');
  await kubectl(c, ['wait', '--for=condition=Ready', `node/${c.nodeName}`, '--timeout=60s']);
  // every path answers again
  const mark = Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, l.lines.length]));
  await waitFor('every loop answers after the restart', async () =>
    Object.entries(loops).every(([k, l]) => l.lines.slice(mark[k]).filter((x) => x === 'ok').length >= 5), 60_000);

  t.same(await nodeContainers(c), before.containers, 'the restarted kubelet adopted the pods: same container IDs, no duplicates');
  t.same(await inventory(c), before.objects, 'every object is there with the same uid');
  // the cluster still acts: a scale-up after the restart gets a third ready pod
  await kubectl(c, ['scale', 'deployment/web', '--replicas=3']);
  await rolloutStatus(c, 'web');
  t.equal((await kubectl(c, ['get', 'pods', '-l', 'app=web', '--field-selector=status.phase=Running', '-o', 'name'])).trim().split('\n').length, 3, 'scaled to 3 running pods after the restart');

  const report: Record<string, { failedDuringRestart: number; triesDuringRestart: number }> = {};
  for (const [k, l] of Object.entries(loops)) {
    const window = l.lines.slice(atKill[k], mark[k]);
    report[k] = { failedDuringRestart: window.filter((x) => x === 'fail').length, triesDuringRestart: window.length };
  }
  t.comment(`restart took ${upMs} ms to "skiff is up"; requests (1 s timeout, 0.1 s apart) from kill to back up: ${JSON.stringify(report)}`);
});
