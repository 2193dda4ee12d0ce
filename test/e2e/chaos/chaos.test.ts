// Chaos on one node (issue #10): `skiff up --split` in its own netns runs every component as its own
// process; kill -9 each in turn (apiserver, controller-manager, scheduler, kubelet, proxy, dns,
// ingress, netpol) while loops send requests through the Service (NodePort and ClusterIP), the
// ingress and cluster DNS. Each kill must be followed by the supervisor restarting the component,
// the component doing work that only it can do (convergence), and every object that existed before
// the kill still being there with the same uid. Failed requests per kill and path are figures to
// report (a JSON line in the output), not asserts: the ingress is the data path, so its kill fails
// some requests.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Service } from 'kubernetes-types/core/v1.js';
import { startNetnsCluster, type NetnsCluster } from '../../helpers/netns-cluster.js';
import { SKIFF } from '../../helpers/server-process.js';
import { killComponent, readComponents, requestLoop, waitRestarted, window, type RequestLoop } from '../../helpers/chaos.js';
import { WEB_YAML, curl, kubectl, kubectlJson, nodeContainers, rolloutStatus, runIn, waitFor } from '../cluster/lib.js';

const run = promisify(execFile);

/** Every object in the cluster, as kind/namespace/name/uid (a kill must keep them all). */
async function inventory(c: NetnsCluster): Promise<string[]> {
  const kinds = 'namespaces,nodes,deployments,replicasets,pods,services,endpointslices,ingresses,ingressclasses,networkpolicies,configmaps,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings';
  const list = await kubectlJson<{ items: { kind: string; metadata: { namespace?: string; name: string; uid: string } }[] }>(c, ['get', kinds, '-A']);
  return list.items.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}/${o.metadata.uid}`).sort();
}

/** No such process, or only its zombie (it exited; its new parent has not reaped it yet). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

const webPods = async (c: NetnsCluster) => (await kubectlJson<{ items: { spec: { nodeName?: string } }[] }>(c, ['get', 'pods', '-l', 'app=web'])).items;

async function scaleWeb(c: NetnsCluster, replicas: number): Promise<void> {
  await kubectl(c, ['scale', 'deployment/web', `--replicas=${replicas}`]);
}

/** A ClusterIP Service NAME in front of the web pods; resolves with its address. */
async function webService(c: NetnsCluster, name: string): Promise<string> {
  await kubectl(c, ['create', 'service', 'clusterip', name, '--tcp=80:8080']);
  await kubectl(c, ['set', 'selector', `service/${name}`, 'app=web']);
  return (await kubectlJson<Service>(c, ['get', 'svc', name])).spec!.clusterIP!;
}

const dig = (c: NetnsCluster, name: string) => runIn(c, 'dig', [`@${c.nodeIP}`, '+time=1', '+tries=1', '+short', name], { timeoutMs: 5000 });

/** What each component must do after its restart, proving it came back and converged. */
function convergeSteps(c: NetnsCluster, containersBefore: () => Promise<string[]>): { name: string; converge: () => Promise<string> }[] {
  return [
    {
      name: 'apiserver',
      // writes work, and the controller manager re-watched: a new Service gets its EndpointSlice
      converge: async () => {
        await webService(c, 'after-apiserver');
        await waitFor('an EndpointSlice with ready endpoints for after-apiserver', async () => {
          const s = await kubectlJson<{ items: { endpoints?: unknown[] }[] }>(c, ['get', 'endpointslices', '-l', 'kubernetes.io/service-name=after-apiserver']);
          return s.items.some((x) => (x.endpoints?.length ?? 0) > 0);
        });
        return 'new Service got its EndpointSlice';
      },
    },
    {
      name: 'controller-manager',
      converge: async () => {
        await scaleWeb(c, 3);
        await waitFor('3 web pods created by the ReplicaSet controller', async () => (await webPods(c)).length === 3);
        return 'scaled to 3: the ReplicaSet controller made the pod';
      },
    },
    {
      name: 'scheduler',
      converge: async () => {
        await scaleWeb(c, 4);
        await waitFor('4 web pods, all bound to the node', async () => {
          const pods = await webPods(c);
          return pods.length === 4 && pods.every((p) => p.spec.nodeName === c.nodeName);
        });
        return 'scaled to 4: every pod bound';
      },
    },
    {
      name: 'kubelet',
      converge: async () => {
        await scaleWeb(c, 5);
        await rolloutStatus(c, 'web');
        await kubectl(c, ['wait', '--for=condition=Ready', `node/${c.nodeName}`, '--timeout=30s']);
        const now = await nodeContainers(c);
        const gone = (await containersBefore()).filter((id) => !now.includes(id));
        if (gone.length) throw new Error(`containers from before the kubelet kill are gone: ${gone.join(' ')}`);
        return 'scaled to 5 ready, node Ready, old containers adopted';
      },
    },
    {
      name: 'proxy',
      converge: async () => {
        const ip = await webService(c, 'after-proxy');
        await waitFor('the new Service answers on its ClusterIP', () => curl(c, [`http://${ip}/`], 1), 30_000);
        return 'new Service answers on its ClusterIP';
      },
    },
    {
      name: 'dns',
      converge: async () => {
        const ip = await webService(c, 'after-dns');
        await waitFor('the new Service resolves', async () => (await dig(c, 'after-dns.default.svc.cluster.local')).stdout.trim() === ip, 30_000);
        return 'new Service resolves';
      },
    },
    {
      name: 'ingress',
      converge: async () => {
        await kubectl(c, ['create', 'ingress', 'after-ingress', '--class=skiff', '--rule=after.example.test/*=web:80']);
        await waitFor('the new Ingress routes', () => curl(c, ['-H', 'Host: after.example.test', `http://${c.nodeIP}/`], 1), 30_000);
        return 'new Ingress routes';
      },
    },
    {
      name: 'netpol',
      converge: async () => {
        await kubectl(c, ['apply', '-f', '-'], 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: after-netpol}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {chaos: "true"}}}]}]\n');
        await waitFor('rules for the new NetworkPolicy', async () => (await c.exec('iptables-save', [])).stdout.includes('default/after-netpol'), 30_000);
        return 'new NetworkPolicy programmed';
      },
    },
  ];
}

t.test('kill -9 each component of skiff up --split under traffic: it comes back, converges, no object is lost', async (t) => {
  const c = await startNetnsCluster({ extraArgs: ['--split'] });
  t.teardown(() => c.stop());
  const started = readComponents(c);
  t.comment(JSON.stringify({ startCpuMs: Object.fromEntries(Object.entries(started.components).map(([n, s]) => [n, s.readyCpuMs])) }));
  const pids = Object.values(started.components).map((s) => s.pid);
  t.equal(started.mode, 'split');
  t.same(Object.keys(started.components).sort(), ['apiserver', 'controller-manager', 'dns', 'ingress', 'kubelet', 'netpol', 'proxy', 'scheduler']);
  t.equal(new Set(pids).size, 8, 'eight components, eight processes');
  t.notOk(pids.includes(c.proc.pid!), 'none of them is the supervisor');
  const status = (await run(process.execPath, [SKIFF, 'status', '--data-dir', c.dataDir])).stdout;
  t.equal(status.split('\n').filter((l) => / running /.test(l)).length, 8, 'skiff status: eight running');

  await kubectl(c, ['apply', '-f', '-'], WEB_YAML);
  await rolloutStatus(c, 'web');
  const svc = await kubectlJson<Service>(c, ['get', 'svc', 'web']);
  const loops: Record<string, RequestLoop> = {
    nodePort: requestLoop(c, `curl -s -o /dev/null --fail --max-time 1 http://${c.nodeIP}:${svc.spec!.ports![0].nodePort}/`),
    clusterIP: requestLoop(c, `curl -s -o /dev/null --fail --max-time 1 http://${svc.spec!.clusterIP}/`),
    ingress: requestLoop(c, `curl -s -o /dev/null --fail --max-time 1 -H 'Host: web.example.test' http://${c.nodeIP}/`),
    dns: requestLoop(c, `dig @${c.nodeIP} +time=1 +tries=1 +short web.default.svc.cluster.local | grep -q .`),
  };
  t.teardown(() => Promise.all(Object.values(loops).map((l) => l.stop())));
  const oks = (from: Record<string, number>) => Object.entries(loops).map(([k, l]) => l.lines.slice(from[k]).filter((x) => x === 'ok').length);
  const marks = () => Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, l.lines.length]));
  const zero = Object.fromEntries(Object.keys(loops).map((k) => [k, 0]));
  await waitFor('every loop answered 5 times', async () => oks(zero).every((n) => n >= 5), 30_000);

  let containers: string[] = [];
  const report: Record<string, unknown>[] = [];
  for (const step of convergeSteps(c, async () => containers)) {
    const before = await inventory(c);
    containers = await nodeContainers(c);
    const atKill = marks();
    const t0 = Date.now();
    const old = killComponent(c, step.name);
    const pid = await waitRestarted(c, step.name, old);
    const upMs = Date.now() - t0;
    const restartCpuMs = readComponents(c).components[step.name].readyCpuMs;
    const what = await step.converge();
    const convergedMs = Date.now() - t0;
    // the data path answers again on every loop
    const atConverged = marks();
    await waitFor(`every loop answers after the ${step.name} kill`, async () => oks(atConverged).every((n) => n >= 3), 30_000, 200);
    const after = new Set(await inventory(c));
    t.same(before.filter((o) => !after.has(o)), [], `${step.name}: killed pid ${old}, back as pid ${pid} in ${upMs} ms; ${what} at ${convergedMs} ms; every object from before is there`);
    const failed = Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, window(l.lines, atKill[k]).failed]));
    const tries = Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, window(l.lines, atKill[k]).tries]));
    report.push({ component: step.name, upMs, restartCpuMs, convergedMs, failed, tries });
    t.comment(JSON.stringify({ chaosKill: report.at(-1) }));
  }
  const restarts = Object.entries(readComponents(c).components).map(([n, s]) => [n, s.restarts]);
  t.same(restarts, restarts.map(([n]) => [n, 1]), 'the supervisor restarted each component exactly once');
  t.comment(JSON.stringify({ chaos: report }));

  // and the supervisor itself: its children notice the closed IPC channel and exit, none is orphaned
  const children = Object.values(readComponents(c).components).map((s) => s.pid!);
  await c.kill();
  await waitFor('every component process gone after kill -9 of the supervisor', async () => children.every(gone), 30_000, 200);
  t.pass(`kill -9 of the supervisor took its ${children.length} component processes with it`);
});
