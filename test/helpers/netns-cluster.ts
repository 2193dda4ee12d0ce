import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { SKIFF, KUBECTL } from './server-process.js';

const run = promisify(execFile);

export interface NetnsCluster {
  netns: string;
  nodeName: string;
  nodeIP: string;
  dataDir: string;
  kubeconfig: string;
  /** the current `skiff up` process (replaced by restart()) */
  readonly proc: ChildProcess;
  /** kubectl inside the cluster's netns */
  kubectl(...args: string[]): Promise<string>;
  /** any command inside the netns */
  exec(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** SIGKILLs `skiff up` (pods keep running) and waits for it to exit */
  kill(): Promise<void>;
  /** starts `skiff up` again on the same data dir (after kill()), resolves once it says it is up */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A whole `skiff up` inside its own network namespace: loopback plus a veth pair whose both ends
 * stay in that netns (eth0 holds the node address and the default route), so the cluster behaves
 * like a real host and nothing can leave. Docker containers join it through the kubelet's veths.
 */
export async function startNetnsCluster(opts: { extraArgs?: string[]; nodeIP?: string; dataDir?: string; nodeName?: string } = {}): Promise<NetnsCluster> {
  const id = randomBytes(3).toString('hex');
  const netns = `skiff-e2e-${id}`;
  const nodeName = opts.nodeName ?? `node-${id}`;
  const nodeIP = opts.nodeIP ?? '192.168.240.2';
  const ip = (...a: string[]) => run('ip', ['netns', 'exec', netns, 'ip', ...a]);
  await run('ip', ['netns', 'add', netns]);
  await ip('link', 'set', 'lo', 'up');
  await ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wire0');
  await ip('addr', 'add', `${nodeIP}/24`, 'dev', 'eth0');
  await ip('link', 'set', 'eth0', 'up');
  await ip('link', 'set', 'wire0', 'up');
  await ip('route', 'add', 'default', 'dev', 'eth0');
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // a given data dir (e.g. a restored backup) belongs to the caller; ours is removed on stop
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'skiff-e2e-'));
  let proc: ChildProcess;
  let stderr = '';
  const launch = async (): Promise<void> => {
    stderr = '';
    proc = spawn('ip', ['netns', 'exec', netns, process.execPath, SKIFF, 'up', '--data-dir', dataDir, '--node-ip', nodeIP, '--node-name', nodeName, ...(opts.extraArgs ?? [])], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SKIFF_LOG_LEVEL: process.env.SKIFF_LOG_LEVEL ?? 'warn' },
    });
    const p = proc;
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const end = Date.now() + 90_000;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`skiff up exited ${p.exitCode ?? p.signalCode}: ${stderr}`);
      if (/skiff is up/.test(stderr)) return;
      if (Date.now() > end) throw new Error(`skiff up did not start in 90 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  const kubeconfig = join(dataDir, 'kubeconfig');
  const exec = (cmd: string, args: string[]) => run('ip', ['netns', 'exec', netns, cmd, ...args], { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 16 << 20 });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    // containers of this cluster's pods (the kubelet labels every docker object it creates)
    const ids = (await run('docker', ['ps', '-aq', '--filter', 'label=io.skiff.managed=true', '--filter', `label=io.skiff.node=${nodeName}`]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
    if (ids.length) await run('docker', ['rm', '-f', ...ids]).catch(() => undefined);
    await run('ip', ['netns', 'delete', netns]).catch(() => undefined);
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    netns,
    nodeName,
    nodeIP,
    dataDir,
    kubeconfig,
    get proc() {
      return proc;
    },
    exec,
    kubectl: async (...args: string[]) => (await exec(KUBECTL, args)).stdout,
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    stop,
  };
}
