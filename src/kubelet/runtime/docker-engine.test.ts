// The docker runtime reads state from the Engine API socket (a fake engine on a unix socket here):
// one list per relist, an inspect only for new or changed containers, the CLI when the socket is gone.
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHost } from '../../host/host.js';
import { DockerCliRuntime } from './docker-cli.js';
import { containerListPath, engineSocketPath, type DockerInspect } from './docker-engine.js';

function inspect(id: string, role: string, status: string, extra: Partial<DockerInspect['State']> = {}): DockerInspect {
  return {
    Id: id, Created: '2026-01-01T00:00:00Z', Image: 'sha256:img',
    Config: { Image: 'skiff/busybox:1.36', Labels: { 'io.skiff.managed': 'true', 'io.skiff.node': 'n1', 'io.skiff.pod-uid': 'u1', 'io.skiff.role': role, 'io.skiff.container-name': role === 'sandbox' ? 'POD' : 'c', 'io.skiff.attempt': '0' } },
    State: { Status: status, Running: status === 'running', ExitCode: 0, OOMKilled: false, Pid: status === 'running' ? 4242 : 0, StartedAt: '2026-01-01T00:00:01Z', FinishedAt: '0001-01-01T00:00:00Z', ...extra },
  };
}

/** A fake engine: containers by id; counts the requests it serves per kind. */
async function fakeEngine(t: { teardown(fn: () => unknown): void }, containers: Map<string, DockerInspect>) {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-engine-'));
  const sock = join(dir, 'docker.sock');
  const seen = { list: 0, inspect: 0, image: 0, lastFilter: '' };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://docker');
    const m = /^\/containers\/([^/]+)\/json$/.exec(url.pathname);
    if (url.pathname === '/containers/json') {
      seen.list++;
      seen.lastFilter = url.searchParams.get('filters') ?? '';
      res.end(JSON.stringify([...containers.values()].map((c) => ({ Id: c.Id, State: c.State.Status }))));
    } else if (m) {
      seen.inspect++;
      const c = containers.get(m[1]);
      res.statusCode = c ? 200 : 404;
      res.end(c ? JSON.stringify(c) : '{"message":"No such container"}');
    } else if (url.pathname.startsWith('/images/')) {
      seen.image++;
      res.statusCode = url.pathname === '/images/skiff/busybox:1.36/json' ? 200 : 404;
      res.end('{}');
    } else {
      res.statusCode = 500;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => server.listen(sock, r));
  t.teardown(async () => { await new Promise((r) => server.close(r)); await rm(dir, { recursive: true, force: true }); });
  return { sock, seen };
}

t.test('engine socket path and list filter', async (t) => {
  t.equal(engineSocketPath(undefined), '/var/run/docker.sock');
  t.equal(engineSocketPath('unix:///run/user/1000/docker.sock'), '/run/user/1000/docker.sock');
  t.equal(engineSocketPath('tcp://127.0.0.1:2375'), undefined, 'not a socket: the CLI reads');
  const q = new URL(`http://d${containerListPath(['a=1', 'b=2'])}`).searchParams;
  t.equal(q.get('all'), '1');
  t.same(JSON.parse(q.get('filters')!), { label: ['a=1', 'b=2'] });
});

t.test('relists through the engine: inspects only new or changed containers, no docker process', async (t) => {
  const containers = new Map([['sb1', inspect('sb1', 'sandbox', 'running')], ['c1', inspect('c1', 'app', 'running')]]);
  const { sock, seen } = await fakeEngine(t, containers);
  const cli = new FakeHost();
  const rt = new DockerCliRuntime(cli, 'n1', 'docker', { engineSocket: sock });
  const first = await rt.list();
  t.same(first.sandboxes.map((s) => [s.id, s.running, s.netns]), [['sb1', true, { pid: 4242 }]]);
  t.match(first.containers, [{ id: 'c1', podUid: 'u1', name: 'c', role: 'app', state: 'running', startedAt: Date.parse('2026-01-01T00:00:01Z'), finishedAt: 0 }]);
  t.same(JSON.parse(seen.lastFilter), { label: ['io.skiff.managed=true', 'io.skiff.node=n1'] }, 'only this node\'s objects');
  t.same([seen.list, seen.inspect], [1, 2]);
  await rt.list();
  t.same([seen.list, seen.inspect], [2, 2], 'nothing changed: no inspect');
  containers.set('c1', inspect('c1', 'app', 'exited', { ExitCode: 3, OOMKilled: true, FinishedAt: '2026-01-01T00:00:09Z' }));
  containers.set('c2', inspect('c2', 'app', 'created'));
  const third = await rt.list();
  t.same([seen.list, seen.inspect], [3, 4], 'the changed and the new container are inspected');
  t.match(third.containers.find((c) => c.id === 'c1'), { state: 'exited', exitCode: 3, oomKilled: true });
  t.equal(third.containers.find((c) => c.id === 'c2')?.state, 'created');
  containers.delete('c2');
  t.same((await rt.listContainers()).map((c) => c.id), ['c1'], 'a removed container is gone');
  await rt.ensureImage('skiff/busybox:1.36', 'IfNotPresent');
  await t.rejects(rt.ensureImage('skiff/missing:1', 'Never'), { code: 'ERR_IMAGE_NEVER_PULL' });
  t.equal(seen.image, 2, 'image presence asked of the engine');
  t.same(cli.calls, [], 'no docker CLI call for reads');
});

t.test('without the socket the CLI reads (docker ps + inspect)', async (t) => {
  const cli = new FakeHost((_cmd, args) => {
    if (args[0] === 'ps') return { stdout: 'c9\n' };
    if (args[0] === 'inspect') return { stdout: JSON.stringify([inspect('c9', 'app', 'running')]) };
    return undefined;
  });
  const rt = new DockerCliRuntime(cli, 'n1', 'docker', { engineSocket: '/nonexistent/docker.sock' });
  t.same((await rt.listContainers()).map((c) => c.id), ['c9']);
  t.same(cli.calls.map((c) => c.args[0]), ['ps', 'inspect']);
});

t.test('docker run -d for a container: a start failure keeps the created container, a create failure throws', async (t) => {
  const containers = new Map<string, DockerInspect>();
  const { sock } = await fakeEngine(t, containers);
  const sb = { id: 'SB', podUid: 'u1', podName: 'p', namespace: 'ns', running: true, createdAt: 0 };
  const cfg = { name: 'c', role: 'app' as const, image: 'skiff/busybox:1.36', command: [], args: [], overrideEntrypoint: false, env: [] as [string, string][], mounts: [], tty: false, stdin: false, stdinOnce: false, attempt: 0, cpuLimitMilli: 0, cpuRequestMilli: 0, memoryLimitBytes: 0 };
  let answer: { exitCode: number; stdout?: string; stderr?: string } = { exitCode: 0, stdout: 'abc123\n' };
  const cli = new FakeHost((_cmd, args) => (args[0] === 'run' ? answer : undefined));
  const rt = new DockerCliRuntime(cli, 'n1', 'docker', { engineSocket: sock });
  t.same(await rt.runContainer(sb, cfg), { id: 'abc123' });
  t.same(cli.calls[0].args.slice(0, 4), ['run', '-d', '--name', 'skiff_c_p_ns_u1_0'], 'one docker run -d with the create flags');
  answer = { exitCode: 125, stderr: 'OCI runtime create failed: exec: "nope": not found' };
  containers.set('skiff_c_p_ns_u1_0', inspect('made1', 'app', 'created'));
  t.match(await rt.runContainer(sb, cfg), { id: 'made1', startError: /docker start: OCI runtime create failed/ });
  containers.clear();
  await t.rejects(rt.runContainer(sb, cfg), { code: 'ERR_CREATE_CONTAINER' });
});
