// `skiff backup` of a running `skiff up` (SQLite online backup) while kubectl writers keep creating
// objects, `skiff restore --from` into a fresh data dir, and `skiff up` on it (fresh netns, same node
// name): every object acknowledged before the backup began is there, Secrets still decrypt, and the
// example app runs again.
import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startNetnsCluster, type NetnsCluster } from '../../helpers/netns-cluster.js';
import { KUBECTL, SKIFF } from '../../helpers/server-process.js';
import { WEB_YAML, kubectl, kubectlJson, rolloutStatus, waitFor } from './lib.js';

const run = promisify(execFile);

interface Writer {
  acked: string[];
  stop(): Promise<void>;
}

/** A bounded kubectl loop in the netns (at most 400 creates): prints each name once the apiserver acknowledged it. */
function startWriter(c: NetnsCluster, prefix: string): Writer {
  const script = `i=0; while [ $i -lt 400 ]; do i=$((i+1)); ` +
    `if ${KUBECTL} create configmap ${prefix}-$i --from-literal=i=$i >/dev/null 2>&1; then echo ${prefix}-$i; fi; done`;
  const proc: ChildProcess = spawn('ip', ['netns', 'exec', c.netns, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'], detached: true, env: { ...process.env, KUBECONFIG: c.kubeconfig } });
  const acked: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    acked.push(...parts.filter(Boolean));
  });
  return {
    acked,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(-proc.pid!, 'SIGKILL');
      await exited;
    },
  };
}

async function uids(c: NetnsCluster, kinds: string): Promise<string[]> {
  const list = await kubectlJson<{ items: { kind: string; metadata: { name: string; uid: string } }[] }>(c, ['get', kinds]);
  return list.items.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`).sort();
}

t.test('backup while writes flow, restore into a new data dir, start from it', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'skiff-e2e-backup-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const c1 = await startNetnsCluster();
  let c1Stopped = false;
  t.teardown(() => (c1Stopped ? undefined : c1.stop()));
  await kubectl(c1, ['apply', '-f', '-'], WEB_YAML);
  await kubectl(c1, ['create', 'secret', 'generic', 'db', '--from-literal=password=s3cret']);
  await rolloutStatus(c1, 'web');
  const appObjects = await uids(c1, 'deployments,services,ingresses,networkpolicies,secrets');

  const writers = [startWriter(c1, 'wa'), startWriter(c1, 'wb')];
  t.teardown(() => Promise.all(writers.map((w) => w.stop())));
  await waitFor('writers acknowledged 10 objects', async () => writers.every((w) => w.acked.length >= 5), 60_000);
  const ackedBefore = writers.flatMap((w) => [...w.acked]);
  const file = join(work, 'backup.db');
  const backup = await run(process.execPath, [SKIFF, 'backup', file, '--data-dir', c1.dataDir]);
  t.match(backup.stderr, /backup written/, 'skiff backup reports the file');
  // the writes kept flowing during the backup
  const atBackupEnd = writers.reduce((n, w) => n + w.acked.length, 0);
  await waitFor('writes after the backup', async () => writers.reduce((n, w) => n + w.acked.length, 0) > atBackupEnd, 30_000);
  await Promise.all(writers.map((w) => w.stop()));

  const restored = join(work, 'restored');
  const r = await run(process.execPath, [SKIFF, 'restore', file, '--data-dir', restored, '--from', c1.dataDir]);
  t.match(r.stderr, /restored .* with pki\/ and encryption\.json/, 'skiff restore --from copies the certificates and encryption keys');
  const nodeName = c1.nodeName;
  await c1.stop();
  c1Stopped = true;

  const c2 = await startNetnsCluster({ dataDir: restored, nodeName });
  t.teardown(() => c2.stop());
  const names = new Set((await kubectl(c2, ['get', 'configmaps', '-o', 'jsonpath={.items[*].metadata.name}'])).split(/\s+/));
  const missing = ackedBefore.filter((n) => !names.has(n));
  t.same(missing, [], `all ${ackedBefore.length} configmaps acknowledged before the backup began are restored`);
  t.same(await uids(c2, 'deployments,services,ingresses,networkpolicies,secrets'), appObjects, 'the app objects and Secrets are back with the same uids');
  const pw = await kubectl(c2, ['get', 'secret', 'db', '-o', 'jsonpath={.data.password}']);
  t.equal(Buffer.from(pw, 'base64').toString(), 's3cret', 'a Secret encrypted at rest still decrypts');
  await rolloutStatus(c2, 'web');
  t.pass('the restored cluster runs the web Deployment again');
});
