import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecHelper, HelperHost } from './exec-helper.js';
import { createNetns, deleteNetns, uniqueName } from './netns.js';

t.test('the exec helper runs commands like LocalHost: output, input, exit codes, errors', async (t) => {
  const helper = new ExecHelper();
  t.teardown(() => helper.close());
  const host = new HelperHost(null, helper);
  t.same(await host.exec('sh', ['-c', 'echo out; echo err >&2']), { stdout: 'out\n', stderr: 'err\n', exitCode: 0 });
  t.equal((await host.exec('cat', [], { input: 'piped in' })).stdout, 'piped in');
  t.equal((await host.exec('sh', ['-c', 'exit 3'], { allowFail: true })).exitCode, 3);
  await t.rejects(host.exec('sh', ['-c', 'echo no >&2; exit 2']), { code: 'ERR_EXEC', message: /exited 2: no/ });
  const missing = await host.exec('/nonexistent/cmd', [], { allowFail: true });
  t.equal(missing.exitCode, -1, 'a missing command');
  t.match(missing.stderr, /ENOENT/);
  const slow = await host.exec('sleep', ['5'], { allowFail: true, timeoutMs: 100 });
  t.equal(slow.exitCode, -1, 'killed at its timeout');
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => host.exec('echo', [String(i)])));
  t.same(many.map((r) => r.stdout.trim()), Array.from({ length: 20 }, (_, i) => String(i)), 'concurrent calls get their own answers');
});

t.test('detached processes log to a file and outlive the call; a dead helper is replaced', async (t) => {
  const helper = new ExecHelper();
  t.teardown(() => helper.close());
  const dir = await mkdtemp(join(tmpdir(), 'skiff-helper-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'log');
  const pid = await helper.spawnDetached('sh', ['-c', 'echo "started $X"; exec sleep 30'], { log, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', X: 'ok' } });
  t.teardown(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  t.doesNotThrow(() => process.kill(pid, 0), 'running');
  for (let i = 0; i < 50 && !(await readFile(log, 'utf8').catch(() => '')).includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
  t.equal((await readFile(log, 'utf8')).trim(), 'started ok', 'env and output');
  helper.close();
  t.equal((await new HelperHost(null, helper).exec('echo', ['again'])).stdout, 'again\n', 'a new helper serves the next call');
  t.doesNotThrow(() => process.kill(pid, 0), 'the detached process survived its helper');
});

t.test('a HelperHost on a named netns runs its commands inside it (nsenter --net), with the same errors', async (t) => {
  const name = uniqueName('sk-eh');
  await createNetns(name);
  t.teardown(() => deleteNetns(name));
  const helper = new ExecHelper();
  t.teardown(() => helper.close());
  const host = new HelperHost(name, helper);
  await host.exec('ip', ['link', 'add', 'ehbr0', 'type', 'bridge']);
  t.match((await host.exec('ip', ['-o', 'link', 'show'])).stdout, /ehbr0/, 'the link was made in the netns');
  t.equal((await new HelperHost(null, helper).exec('ip', ['link', 'show', 'ehbr0'], { allowFail: true })).exitCode !== 0, true, 'and not in the root netns');
  const rootForward = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim();
  const flipped = rootForward === '1' ? '0' : '1';
  await host.exec('sysctl', ['-q', '-w', `net.ipv4.ip_forward=${flipped}`]);
  t.equal((await host.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), flipped, 'a sysctl written in the netns');
  t.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), rootForward, 'leaves the root netns alone');
  await t.rejects(new HelperHost(`${name}-gone`, helper).exec('true', []), { code: 'ERR_EXEC' }, 'a missing netns is an error');
});
