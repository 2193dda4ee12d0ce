// Small helpers shared by the single-node cluster e2e tests (test/e2e/cluster/*.test.ts).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetnsCluster } from '../../helpers/netns-cluster.js';
import { KUBECTL, REPO } from '../../helpers/server-process.js';

export const EXAMPLES = join(REPO, 'examples');
export const WEB_YAML = readFileSync(join(EXAMPLES, 'web.yaml'), 'utf8');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs CMD inside the cluster's netns with KUBECONFIG set, optional stdin, never throws. */
export function runIn(c: NetnsCluster, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', c.netns, cmd, ...args], {
      env: { ...process.env, KUBECONFIG: c.kubeconfig, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** kubectl inside the netns; throws with stderr on a non-zero exit. */
export async function kubectl(c: NetnsCluster, args: string[], input?: string): Promise<string> {
  const r = await runIn(c, KUBECTL, ['--request-timeout=30s', ...args], { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export async function kubectlJson<T>(c: NetnsCluster, args: string[]): Promise<T> {
  return JSON.parse(await kubectl(c, [...args, '-o', 'json'])) as T;
}

/** Polls FN until it returns a value other than undefined/false, or throws after the deadline with the last error. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** curl inside the netns: body on success, undefined on any failure. */
export async function curl(c: NetnsCluster, args: string[], timeoutSec = 3): Promise<string | undefined> {
  const r = await runIn(c, 'curl', ['-sS', '--fail', '--max-time', String(timeoutSec), ...args], { timeoutMs: (timeoutSec + 5) * 1000 });
  return r.code === 0 ? r.stdout : undefined;
}

/** Waits until `kubectl rollout status` reports the deployment complete. */
export async function rolloutStatus(c: NetnsCluster, name: string, timeoutSec = 120): Promise<void> {
  const r = await runIn(c, KUBECTL, ['rollout', 'status', `deployment/${name}`, `--timeout=${timeoutSec}s`], { timeoutMs: (timeoutSec + 10) * 1000 });
  if (r.code !== 0) throw new Error(`rollout status ${name}: ${r.stdout}${r.stderr}`);
}

/** IDs of the running docker containers of this cluster's node. */
export async function nodeContainers(c: NetnsCluster): Promise<string[]> {
  const p = spawn('docker', ['ps', '-q', '--no-trunc', '--filter', 'label=io.skiff.managed=true', '--filter', `label=io.skiff.node=${c.nodeName}`]);
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => p.on('close', r));
  return out.split('\n').filter(Boolean).sort();
}

function docker(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** The newest docker container of POD's container CTR on this cluster's node. */
export async function podContainer(c: NetnsCluster, pod: string, ctr = 'c'): Promise<string> {
  const r = await docker(['ps', '-aq', '--latest', '--filter', `label=io.skiff.node=${c.nodeName}`, '--filter', `label=io.skiff.pod-name=${pod}`, '--filter', `label=io.skiff.container-name=${ctr}`]);
  const id = r.stdout.trim();
  if (!id) throw new Error(`no container ${ctr} of pod ${pod} on ${c.nodeName}`);
  return id;
}

/**
 * A pod container's output and commands in it, straight from the runtime. (`kubectl logs`/`exec`
 * go through the apiserver-to-kubelet relay, which fails in `skiff up` today: see examples/README.md.)
 */
export async function podLogs(c: NetnsCluster, pod: string, ctr = 'c'): Promise<string> {
  const r = await docker(['logs', await podContainer(c, pod, ctr)]);
  return r.stdout + r.stderr;
}

export async function podExec(c: NetnsCluster, pod: string, cmd: string[], ctr = 'c'): Promise<RunResult> {
  return docker(['exec', await podContainer(c, pod, ctr), ...cmd]);
}
