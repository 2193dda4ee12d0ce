import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterOptions } from './cluster.js';
import { Supervisor, componentArgs, componentPlan, readStatusFile, renderStatus, restartDelayMs, type StatusFile } from './supervisor.js';

const opts = (dataDir: string, over: Partial<ClusterOptions> = {}): ClusterOptions => ({
  dataDir,
  bindAddress: '0.0.0.0',
  port: 6443,
  nodeName: 'n1',
  nodeIP: '192.168.240.2',
  serviceCIDR: '10.96.0.0/12',
  podCIDR: '10.244.0.0/16',
  clusterDomain: 'cluster.local',
  runtime: 'docker',
  agent: true,
  dns: true,
  ingress: true,
  httpPort: 80,
  httpsPort: 443,
  dnsPort: 53,
  ...over,
});

t.test('componentPlan: apiserver first, kubelet last, disabled ones left out', async (t) => {
  t.same(componentPlan(opts('/d')), [['apiserver'], ['controller-manager', 'scheduler', 'dns', 'ingress', 'netpol', 'proxy'], ['kubelet']]);
  t.same(componentPlan(opts('/d', { agent: false, dns: false })), [['apiserver'], ['controller-manager', 'scheduler', 'ingress']]);
});

t.test('restartDelayMs: 100 ms doubling, capped at 10 s', async (t) => {
  t.same([0, 1, 2, 3, 6, 7, 50].map(restartDelayMs), [100, 200, 400, 800, 6400, 10_000, 10_000]);
});

t.test('componentArgs: every value explicit, optional ones only when set', async (t) => {
  const a = componentArgs(opts('/d', { store: 'etcd://a:2379', lbPool: ['10.0.0.0/30', '10.1.0.1-10.1.0.2'], netns: 'ns1' }), 'n1-42');
  const flag = (f: string) => a[a.indexOf(f) + 1];
  t.equal(flag('--node-ip'), '192.168.240.2');
  t.equal(flag('--lease-identity'), 'n1-42');
  t.equal(flag('--lb-pool'), '10.0.0.0/30,10.1.0.1-10.1.0.2');
  t.equal(flag('--netns'), 'ns1');
  t.equal(flag('--store'), 'etcd://a:2379');
  t.notOk(componentArgs(opts('/d'), 'x').includes('--netns'), 'no --netns when none is set');
});

t.test('renderStatus: a PID that is gone shows as dead', async (t) => {
  const s: StatusFile = {
    mode: 'split',
    supervisor: 10,
    components: {
      apiserver: { pid: 11, state: 'running', restarts: 0, startedAt: 'x', readyCpuMs: 300, lastExit: null },
      kubelet: { pid: 12, state: 'running', restarts: 2, startedAt: 'x', readyCpuMs: 300, lastExit: { code: null, signal: 'SIGKILL', at: 'T' } },
    },
  };
  t.equal(
    renderStatus(s, (pid) => pid !== 12),
    ['split, supervisor pid 10', 'COMPONENT  PID  STATE    RESTARTS  LAST EXIT', 'apiserver  11   running  0         -', 'kubelet    12   dead     2         SIGKILL at T', ''].join('\n'),
  );
});

// A stand-in for `skiff component NAME`: says ready over IPC (or fails if FAIL names it), exits
// when its supervisor goes away or on SIGTERM.
const FAKE = `
const name = process.argv[3];
if (process.env.SKIFF_FAKE_FAIL === name) { console.error('cannot start ' + name); process.exit(3); }
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
console.log(JSON.stringify({ msg: 'started', name }));
setTimeout(() => process.send({ type: 'ready' }), 20);
setInterval(() => {}, 1000);
`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('Supervisor: starts every component, restarts one killed with SIGKILL, stops them all', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fake.cjs'), FAKE);
  const phases: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const sup = new Supervisor({
    o: opts(dir, { agent: false }),
    command: [process.execPath, join(dir, 'fake.cjs')],
    onPhase: (n, done) => phases.push(`${done ? 'done' : 'start'} ${n.join(',')}`),
    out: { write: (s: string) => out.push(s) },
    err: { write: (s: string) => err.push(s) },
  });
  await sup.start();
  t.same(phases, ['start apiserver', 'done apiserver', 'start controller-manager,scheduler,dns,ingress', 'done controller-manager,scheduler,dns,ingress']);
  const first = readStatusFile(dir)!;
  t.equal(first.mode, 'split');
  t.equal(first.supervisor, process.pid);
  const pids = Object.values(first.components).map((c) => c.pid!);
  t.equal(new Set(pids).size, 5, 'one process per component');
  t.ok(pids.every(alive));
  t.ok(out.includes('scheduler          | {"msg":"started","name":"scheduler"}\n'), 'child log lines carry the component name');

  const old = first.components.scheduler!.pid!;
  process.kill(old, 'SIGKILL');
  const back = await until('scheduler restarted', () => {
    const s = readStatusFile(dir)!.components.scheduler!;
    return s.state === 'running' && s.pid !== old ? s : undefined;
  });
  t.equal(back.restarts, 1);
  t.equal(back.lastExit?.signal, 'SIGKILL');
  t.ok(alive(back.pid!));
  t.ok(back.readyCpuMs! > 0, `the start cost is recorded (${back.readyCpuMs} ms CPU)`);
  t.ok(err.some((l) => /^supervisor +\| scheduler exited \(SIGKILL\); restart 1 in 100 ms/.test(l)), 'the restart is logged');
  t.equal(readStatusFile(dir)!.components.apiserver!.restarts, 0, 'the others are untouched');

  await sup.stop();
  const end = readStatusFile(dir)!;
  t.ok(Object.values(end.components).every((c) => c.state === 'stopped' && c.pid === null), 'all stopped');
  t.notOk([...pids, back.pid!].some(alive), 'no child outlives stop()');
});

t.test('Supervisor: a component that fails its first start fails start() with its stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fake.cjs'), FAKE);
  process.env.SKIFF_FAKE_FAIL = 'dns';
  t.teardown(() => delete process.env.SKIFF_FAKE_FAIL);
  const sup = new Supervisor({ o: opts(dir, { agent: false }), command: [process.execPath, join(dir, 'fake.cjs')], out: { write: () => true }, err: { write: () => true } });
  await t.rejects(sup.start(), /dns exited \(code 3\) before it was ready:\s+cannot start dns/);
  await sup.stop();
  t.ok(Object.values(readStatusFile(dir)!.components).every((c) => c.pid === null), 'the started ones are stopped');
});
