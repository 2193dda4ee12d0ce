import { poll } from '../../helpers/poll.js';
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../../src/store/etcd.js';
import { R } from '../../../src/api/registry.js';
import type { ApiClient } from '../../../src/client/types.js';
import type { KubeObject } from '../../../src/api/object.js';
import { freePort, startServerProcess, type ServerProcess } from '../../helpers/server-process.js';

// HA: three etcd members and two `skiff server`s sharing one PKI. Under a steady write load through
// both servers, the controller-manager leader's server and one etcd member are killed -9: every
// acknowledged write is still there, writers of the dead server fail over, the lease moves.

const which = (cmd: string) => new Promise<boolean>((res) => spawn('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).on('exit', (c) => res(c === 0)));

interface Member { name: string; client: number; peer: number; dir: string; proc?: ChildProcess }


function killWait(p: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(sig);
  return exited;
}

/**
 * A writer that creates ConfigMaps one after another through its preferred server and, when a
 * request fails without an answer from the API, retries the same object on the other server.
 * A name counts as acknowledged once a create returned 201 (or a retry found it: 409).
 */
class Writer {
  readonly acked: string[] = [];
  failovers = 0;
  errors = 0;
  private stopped = false;
  private done?: Promise<void>;
  constructor(private readonly tag: string, private readonly clients: ApiClient[]) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    let at = 0;
    for (let i = 0; !this.stopped; i++) {
      const name = `w-${this.tag}-${i}`;
      const end = Date.now() + 30_000;
      for (let attempt = 0; !this.stopped && Date.now() < end; attempt++) {
        try {
          await this.clients[at].create(R.configmaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { i: String(i) } } as KubeObject, 'default');
          this.acked.push(name);
          break;
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (code === 409 && attempt > 0) {
            this.acked.push(name);
            break;
          }
          this.errors++;
          if (typeof code !== 'number' || code >= 500) {
            at = (at + 1) % this.clients.length;
            this.failovers++;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The member that is the raft leader (asked of each member: its id and the leader it sees). */
async function etcdLeader(members: Member[]): Promise<Member | undefined> {
  for (const m of members) {
    const c = new Etcd3({ hosts: `http://127.0.0.1:${m.client}` });
    try {
      const st = await c.maintenance.status();
      if (st.leader !== '0' && st.leader === st.header.member_id) return m;
    } finally {
      c.close();
    }
  }
  return undefined;
}

const hasEtcd = await which('etcd');

t.test('two servers on a 3-member etcd: kill a server and a member under load', { skip: hasEtcd ? false : 'etcd is not installed (apt install etcd-server)' }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'skiff-ha-'));
  const members: Member[] = [];
  const servers: ServerProcess[] = [];
  const writers: Writer[] = [];
  t.teardown(async () => {
    for (const w of writers) await w.stop();
    for (const s of servers) {
      s.client.close();
      await killWait(s.proc, 'SIGKILL');
    }
    for (const m of members) await killWait(m.proc);
    rmSync(root, { recursive: true, force: true });
  });

  for (const name of ['e1', 'e2', 'e3']) members.push({ name, client: await freePort(), peer: await freePort(), dir: join(root, name) });
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const token = `skiff-ha-${randomBytes(4).toString('hex')}`;
  for (const m of members) {
    mkdirSync(m.dir, { mode: 0o700 });
    m.proc = spawn('etcd', [
      '--name', m.name, '--data-dir', m.dir,
      '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token, '--log-level', 'error',
    ], { stdio: 'ignore' });
  }
  const probe = new EtcdStore(members.map((m) => `http://127.0.0.1:${m.client}`));
  await poll('etcd cluster', 30_000, async () => (await probe.currentRevision()) >= 0 || undefined);
  await probe.close();

  const store = `etcd://${members.map((m) => `127.0.0.1:${m.client}`).join(',')}`;
  const [dirA, dirB] = [join(root, 'server-a'), join(root, 'server-b')];
  mkdirSync(dirA, { mode: 0o700 });
  servers.push(await startServerProcess(dirA, await freePort(), ['--store', store, '--node-name', 'ha-a']));
  // the second server shares the cluster's PKI and encryption keys
  mkdirSync(dirB, { mode: 0o700 });
  cpSync(join(dirA, 'pki'), join(dirB, 'pki'), { recursive: true });
  cpSync(join(dirA, 'encryption.json'), join(dirB, 'encryption.json'));
  servers.push(await startServerProcess(dirB, await freePort(), ['--store', store, '--node-name', 'ha-b']));
  const [a, b] = servers;

  const holder = async (c: ApiClient, lease = 'skiff-controller-manager'): Promise<string> => ((await c.get<KubeObject & { spec?: { holderIdentity?: string } }>(R.leases, lease, 'kube-system')).spec?.holderIdentity ?? '');
  const firstHolder = await poll('controller-manager lease', 30_000, async () => (await holder(a.client)) || undefined);
  const [dead, alive] = firstHolder.startsWith('ha-a-') ? [a, b] : [b, a];
  t.match(firstHolder, new RegExp(`^ha-[ab]-${dead.proc.pid}$`), `lease held by the server we kill (${firstHolder})`);

  writers.push(new Writer('dead', [dead.client, alive.client]), new Writer('alive', [alive.client, dead.client]));
  for (const w of writers) w.start();
  await poll('writes through both servers', 20_000, async () => (writers.every((w) => w.acked.length >= 20) ? true : undefined));

  const leader = await poll('etcd leader', 10_000, () => etcdLeader(members));
  t.comment(`killing server ${dead === a ? 'a' : 'b'} (controller-manager leader) and etcd member ${leader.name} (raft leader)`);
  await killWait(dead.proc, 'SIGKILL');
  await killWait(leader.proc, 'SIGKILL');
  const killedAt = writers.map((w) => w.acked.length);

  const newHolder = await poll('lease moves to the surviving server', 45_000, async () => {
    const h = await holder(alive.client);
    return h && h !== firstHolder ? h : undefined;
  });
  t.equal(newHolder, `${alive === a ? 'ha-a' : 'ha-b'}-${alive.proc.pid}`, `controller-manager lease moved to ${newHolder}`);
  const aliveId = `${alive === a ? 'ha-a' : 'ha-b'}-${alive.proc.pid}`;
  t.equal(await poll('scheduler lease on the surviving server', 45_000, async () => ((await holder(alive.client, 'skiff-scheduler')) === aliveId ? aliveId : undefined)), aliveId, 'scheduler lease held by the surviving server');
  await poll('writes continue after the kills', 30_000, async () => (writers.every((w, i) => w.acked.length >= killedAt[i] + 20) ? true : undefined));
  for (const w of writers) await w.stop();

  const listed = new Set((await alive.client.list(R.configmaps, { namespace: 'default' })).items.map((o) => o.metadata.name));
  for (const w of writers) {
    const lost = w.acked.filter((n) => !listed.has(n));
    t.same(lost, [], `writer ${w.tag}: all ${w.acked.length} acknowledged writes listed through the surviving server`);
  }
  t.ok(writers[0].failovers > 0, `the dead server's writer failed over (${writers[0].failovers} switches)`);
  t.comment(`writes: ${writers.map((w) => `${w.tag} ${w.acked.length} acked, ${w.errors} errors, ${w.failovers} failovers`).join('; ')}`);
});
