import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { FakeApiClient } from '../../../src/client/fake.js';
import type { ApiClient } from '../../../src/client/types.js';
import { R } from '../../../src/api/registry.js';
import { createNetns, deleteNetns, uniqueName } from '../../../src/host/netns.js';
import type { LocalHost } from '../../../src/host/host.js';
import { startKubelet, type KubeletOptions } from '../../../src/kubelet/index.js';
import type { Kube } from '../../../src/kubelet/kube.js';

export interface Tap {
  teardown(fn: () => unknown): void;
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with the last value). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function dockerAvailable(): Promise<boolean> {
  const r = await execa('docker', ['image', 'inspect', 'skiff/busybox:1.36', 'skiff/pause:3.9'], { reject: false });
  return r.exitCode === 0;
}

/** Removes every docker object of a test node (label io.skiff.node=NODE). */
export async function removeNodeContainers(node: string): Promise<void> {
  const r = await execa('docker', ['ps', '-aq', '--filter', `label=io.skiff.node=${node}`], { reject: false });
  const ids = String(r.stdout).split('\n').filter(Boolean);
  if (ids.length) await execa('docker', ['rm', '-f', '-v', ...ids], { reject: false });
}

/** Kills the processes and deletes the pod netns a netns-runtime kubelet left in `dir`. */
export async function removeNetnsRuntimeState(dir: string): Promise<void> {
  for (const id of await readdir(join(dir, 'containers')).catch(() => [] as string[])) {
    const rec = JSON.parse(await readFile(join(dir, 'containers', id, 'record.json'), 'utf8').catch(() => '{}')) as { sup?: number };
    for (const f of ['child.pid', 'supervisor.pid']) {
      const pid = Number((await readFile(join(dir, 'containers', id, f), 'utf8').catch(() => '')).trim());
      if (pid > 1) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (rec.sup && rec.sup > 1) try { process.kill(rec.sup, 'SIGKILL'); } catch { /* gone */ }
  }
  for (const f of await readdir(join(dir, 'sandboxes')).catch(() => [] as string[])) {
    const rec = JSON.parse(await readFile(join(dir, 'sandboxes', f), 'utf8')) as { netns: string };
    if (rec.netns.startsWith('skp-')) await deleteNetns(rec.netns);
  }
}

export interface TestNode {
  client: FakeApiClient;
  host: LocalHost;
  nodeName: string;
  podCidr: string;
  dataDir: string;
  /** the kubelet's streaming port (logs, exec, port-forward), plain HTTP */
  port(): number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * A node for kubelet tests: a fresh netns as its host (no default route, nothing leaves it), a
 * FakeApiClient, the kubelet with podCIDR set on its Node. Teardown removes containers, netns, dirs.
 */
export async function startTestNode(t: Tap, opts: Partial<KubeletOptions> & { client?: ApiClient; podCidr?: string } = {}): Promise<TestNode> {
  const nodeName = uniqueName('kl');
  const nsName = uniqueName('sk-kl');
  const host = await createNetns(nsName);
  const dataDir = await mkdtemp(join(tmpdir(), 'skiff-kubelet-'));
  const client = (opts.client as FakeApiClient | undefined) ?? new FakeApiClient();
  const podCidr = opts.podCidr ?? '10.244.7.0/24';
  await client.create(R.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }).catch(() => undefined);
  await client.create(R.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName }, spec: { podCIDR: podCidr } });
  let kubelet: { stop(): Promise<void>; port: number } | undefined;
  const start = async () => {
    kubelet = await startKubelet({ client, host, nodeName, nodeIP: '192.0.2.10', dataDir, serverPort: 0, restartBackoffMs: { initial: 1000, max: 4000 }, resyncMs: 1000, ...opts });
  };
  t.teardown(async () => {
    await kubelet?.stop();
    await removeNodeContainers(nodeName);
    await removeNetnsRuntimeState(join(dataDir, 'netns-runtime'));
    await deleteNetns(nsName);
    await rm(dataDir, { recursive: true, force: true });
  });
  await start();
  return {
    client, host, nodeName, podCidr, dataDir,
    port: () => kubelet?.port ?? 0,
    stop: async () => { await kubelet?.stop(); kubelet = undefined; },
    restart: async () => { await kubelet?.stop(); await start(); },
  };
}

export function podSpec(name: string, nodeName: string, spec: Partial<Pod['spec']> & object, labels: Record<string, string> = {}): Kube<Pod> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels }, spec: { nodeName, terminationGracePeriodSeconds: 2, ...spec } as Pod['spec'] } as Kube<Pod>;
}

export async function getPod(client: ApiClient, name: string): Promise<Kube<Pod>> {
  return client.get<Kube<Pod>>(R.pods, name, 'default');
}

export function isReady(p: Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
