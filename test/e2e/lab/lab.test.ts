import { poll as pollEvery } from '../../helpers/poll.js';
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { labDown, labUp, type LabState } from '../../../src/cli/lab.js';
import { KUBECTL, SKIFF } from '../../helpers/server-process.js';

// A 3-node lab (docker runtime): spread, cross-node pod and Service traffic, a killed agent's
// pods replaced on the other nodes while a client counts failed Service requests.

const run = promisify(execFile);
const GRACE = 10;
const EVICTION = 10;

function manifest(replicas: number, command: string[], probe: boolean): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: skiff/busybox:1.36
        command: ${JSON.stringify(command)}
${probe ? '        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}\n' : ''}---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`;
}

interface PodView { name: string; node: string; ip: string; ready: boolean; deleting: boolean }

const poll = <T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> => pollEvery(what, timeoutMs, fn, 500);

/** `lab down` left nothing: no lab or pod netns, no containers, no node processes, no state. */
async function assertDown(t: Test, lab: LabState, podNetns: string[] = []): Promise<void> {
  const gone = await labDown(lab.dataDir, undefined, { graceMs: 5_000 });
  t.ok(gone, 'lab down found the lab');
  const left = [lab.switchNetns, ...lab.nodes.map((n) => n.netns), ...podNetns].filter((ns) => existsSync(`/run/netns/${ns}`));
  t.same(left, [], 'no lab or pod network namespace left');
  const ctrs = await Promise.all(lab.nodes.map(async (n) => (await run('docker', ['ps', '-aq', '--filter', `label=io.skiff.node=${n.name}`]).catch(() => ({ stdout: '' }))).stdout.trim()));
  t.same(ctrs.filter(Boolean), [], 'no container of a lab node left');
  t.same(lab.nodes.filter((n) => n.pid && existsSync(`/proc/${n.pid}`)).map((n) => n.name), [], 'no node process left');
  t.notOk(existsSync(join(lab.dataDir, 'lab', 'state.json')), 'lab state removed');
}

const hasDocker = await run('docker', ['image', 'inspect', 'skiff/busybox:1.36']).then(() => true, () => false);

t.test('3-node lab: spread, cross-node traffic, node failure', { skip: process.getuid?.() !== 0 || !hasDocker ? 'needs root and docker with skiff/busybox:1.36' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-lab-e2e-'));
  const name = `e2e${randomBytes(3).toString('hex')}`;
  const bg: { kill(): void }[] = [];
  t.teardown(async () => {
    for (const p of bg) p.kill();
    await labDown(dir, undefined, { graceMs: 5_000 }).catch((err) => t.comment(`lab down: ${String(err)}`));
    rmSync(dir, { recursive: true, force: true });
  });

  const lab: LabState = await labUp({ nodes: 3, dataDir: dir, runtime: 'docker', name, bin: SKIFF, serverArgs: ['--node-monitor-grace-period', String(GRACE), '--pod-eviction-timeout', String(EVICTION)], startTimeoutMs: 90_000 });
  const [n1, n2, n3] = lab.nodes;
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const p = run('ip', ['netns', 'exec', n1.netns, KUBECTL, '--kubeconfig', lab.kubeconfig, ...args], { maxBuffer: 16 << 20 });
    if (input !== undefined) p.child.stdin!.end(input);
    return (await p).stdout;
  };
  const pods = async (): Promise<PodView[]> => {
    const list = JSON.parse(await kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as { items: { metadata: { name: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { podIP?: string; conditions?: { type: string; status: string }[] } }[] };
    return list.items.map((p) => ({ name: p.metadata.name, node: p.spec.nodeName ?? '', ip: p.status.podIP ?? '', deleting: !!p.metadata.deletionTimestamp, ready: !!p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') }));
  };
  const nodeReady = async (node: string): Promise<string> => (await kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).trim();
  const appContainer = async (pod: string): Promise<string> =>
    (await run('docker', ['ps', '-q', '--filter', 'label=io.skiff.role=app', '--filter', `label=io.skiff.pod-name=${pod}`])).stdout.trim().split('\n')[0];
  // busybox-static wget crashes with -T, so the time limit comes from timeout(1)
  const wgetFrom = async (container: string, url: string): Promise<string> => (await run('docker', ['exec', container, 'timeout', '5', 'wget', '-qO-', url])).stdout.trim();

  await poll('3 Ready nodes', 60_000, async () => ((await Promise.all(lab.nodes.map((n) => nodeReady(n.name)))).every((s) => s === 'True') ? true : undefined));
  const rootRoutes = (await run('ip', ['route'])).stdout;
  t.notMatch(rootRoutes, /10\.244\.|192\.168\.250\./, 'no lab route leaked into the root namespace');

  await kubectl(['apply', '-f', '-'], manifest(3, ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'], true));
  const running = await poll('3 ready web pods', 90_000, async () => {
    const ps = await pods();
    return ps.length === 3 && ps.every((p) => p.ready && p.ip) ? ps : undefined;
  });
  t.same(new Set(running.map((p) => p.node)), new Set([n1.name, n2.name, n3.name]), 'one replica per node');

  const onNode = (node: string) => running.find((p) => p.node === node)!;
  const client = await appContainer(onNode(n2.name).name);
  t.ok(client, 'client container on node 2');
  t.equal(await wgetFrom(client, `http://${onNode(n1.name).ip}:8080/`), onNode(n1.name).name, 'node 2 -> pod on node 1');
  t.equal(await wgetFrom(client, `http://${onNode(n3.name).ip}:8080/`), onNode(n3.name).name, 'node 2 -> pod on node 3');
  const clusterIP = (await kubectl(['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  // the pods being Ready says nothing yet about node 2's proxy having their endpoints: wait for one answer
  await poll(`ClusterIP ${clusterIP} answers from node 2`, 30_000, async () => (await wgetFrom(client, `http://${clusterIP}/`).catch(() => '')) || undefined);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(await wgetFrom(client, `http://${clusterIP}/`));
  t.ok([...seen].every((s) => running.some((p) => p.name === s)), `ClusterIP ${clusterIP} answered by web pods (${[...seen].join(', ')})`);

  // steady Service traffic from node 2 while node 3's agent dies
  const counts = { ok: 0, fail: 0 };
  const loop = spawn('docker', ['exec', client, 'sh', '-c', `while :; do if timeout 2 wget -qO- http://${clusterIP}/ >/dev/null 2>&1; then echo ok; else echo fail; fi; sleep 0.2; done`], { stdio: ['ignore', 'pipe', 'ignore'] });
  bg.push({ kill: () => loop.kill('SIGKILL') });
  loop.stdout.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line === 'ok') counts.ok++; else if (line === 'fail') counts.fail++;
  });

  const t0 = Date.now();
  process.kill(n3.pid!, 'SIGKILL');
  await poll(`${n3.name} NotReady`, (GRACE + 30) * 1000, async () => ((await nodeReady(n3.name)) !== 'True' ? true : undefined));
  const notReadyS = (Date.now() - t0) / 1000;
  // the lease is renewed every 10 s and the controllers resync: allow that much past grace + eviction
  const limitS = GRACE + EVICTION + 30;
  const replaced = await poll('replacement pods on the other nodes', limitS * 1000, async () => {
    const live = (await pods()).filter((p) => !p.deleting && p.node !== n3.name && p.ready);
    return live.length === 3 ? live : undefined;
  });
  const replacedS = (Date.now() - t0) / 1000;
  t.ok(replaced.every((p) => p.node === n1.name || p.node === n2.name), 'replacements run on nodes 1 and 2');
  t.ok(replacedS <= limitS, `replaced in ${replacedS.toFixed(1)} s (limit ${limitS} s)`);
  // a few more requests after the replacement, then stop counting
  const after = counts.ok + counts.fail;
  await poll('requests after replacement', 30_000, async () => (counts.ok + counts.fail >= after + 5 ? true : undefined));
  loop.kill('SIGKILL');
  t.comment(`node failure: NotReady after ${notReadyS.toFixed(1)} s, pods replaced after ${replacedS.toFixed(1)} s; Service requests meanwhile: ${counts.ok} ok, ${counts.fail} failed`);
  t.ok(counts.ok > 0, 'the Service answered during the failure');
  t.ok(await wgetFrom(client, `http://${clusterIP}/`), 'the Service answers after the failure');
  await assertDown(t, lab);
});

const hasPython = await run('sh', ['-c', 'command -v python3']).then(() => true, () => false);

t.test('2-node lab on the netns runtime: cross-node pod and Service traffic, clean down', { skip: process.getuid?.() !== 0 || !hasPython ? 'needs root and python3' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-lab-e2e-'));
  const www = mkdtempSync(join(tmpdir(), 'skiff-lab-www-'));
  writeFileSync(join(www, 'index.html'), 'lab-netns-ok\n');
  const name = `e2e${randomBytes(3).toString('hex')}`;
  t.teardown(async () => {
    await labDown(dir, undefined, { graceMs: 5_000 }).catch((err) => t.comment(`lab down: ${String(err)}`));
    rmSync(dir, { recursive: true, force: true });
    rmSync(www, { recursive: true, force: true });
  });
  const lab = await labUp({ nodes: 2, dataDir: dir, runtime: 'netns', name, bin: SKIFF, startTimeoutMs: 90_000 });
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const p = run('ip', ['netns', 'exec', lab.nodes[0].netns, KUBECTL, '--kubeconfig', lab.kubeconfig, ...args], { maxBuffer: 16 << 20 });
    if (input !== undefined) p.child.stdin!.end(input);
    return (await p).stdout;
  };
  await kubectl(['apply', '-f', '-'], manifest(2, ['python3', '-m', 'http.server', '8080', '--bind', '0.0.0.0', '--directory', www], false));
  const pods = await poll('2 running pods on 2 nodes', 90_000, async () => {
    const list = JSON.parse(await kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as { items: { metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string; podIP?: string } }[] };
    const ps = list.items.filter((p) => p.status.phase === 'Running' && p.status.podIP);
    return ps.length === 2 && new Set(ps.map((p) => p.spec.nodeName)).size === 2 ? ps : undefined;
  });
  // the pods' named netns, from each node's netns-runtime records
  const sandboxes = lab.nodes.flatMap((n) => {
    const d = join(n.dataDir, 'kubelet', 'netns-runtime', 'sandboxes');
    return existsSync(d) ? readdirSync(d).map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as { podName: string; netns: string }) : [];
  });
  const onNode2 = pods.find((p) => p.spec.nodeName === lab.nodes[1].name)!;
  const onNode1 = pods.find((p) => p.spec.nodeName === lab.nodes[0].name)!;
  const clientNs = sandboxes.find((s) => s.podName === onNode2.metadata.name)!.netns;
  const curl = async (url: string) => (await run('ip', ['netns', 'exec', clientNs, 'curl', '-sS', '-m', '5', url])).stdout.trim();
  // no readiness probe here: the server is up once it answers in its own netns
  const own = sandboxes.find((s) => s.podName === onNode1.metadata.name)!.netns;
  await poll('python server on node 1 listening', 30_000, async () => (await run('ip', ['netns', 'exec', own, 'curl', '-sS', '-m', '2', 'http://127.0.0.1:8080/'])).stdout || undefined);
  t.equal(await curl(`http://${onNode1.status.podIP}:8080/`), 'lab-netns-ok', 'pod on node 2 -> pod on node 1');
  const clusterIP = (await kubectl(['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  const answers = await poll('Service answers from node 2', 30_000, async () => {
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(await curl(`http://${clusterIP}/`));
    return out;
  });
  t.same(new Set(answers), new Set(['lab-netns-ok']), `ClusterIP ${clusterIP} answers from node 2`);
  await assertDown(t, lab, sandboxes.map((s) => s.netns));
  t.notMatch((await run('ps', ['-eo', 'args'])).stdout, www, 'no pod process left');
});
