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
  proc: ChildProcess;
  /** kubectl inside the cluster's netns */
  kubectl(...args: string[]): Promise<string>;
  /** any command inside the netns */
  exec(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/**
 * A whole `skiff up` inside its own network namespace: loopback plus a veth pair whose both ends
 * stay in that netns (eth0 holds the node address and the default route), so the cluster behaves
 * like a real host and nothing can leave. Docker containers join it through the kubelet's veths.
 */
export async function startNetnsCluster(opts: { extraArgs?: string[]; nodeIP?: string } = {}): Promise<NetnsCluster> {
  const id = randomBytes(3).toString('hex');
  const netns = `skiff-e2e-${id}`;
  const nodeName = `node-${id}`;
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
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-e2e-'));
  const proc = spawn('ip', ['netns', 'exec', netns, process.execPath, SKIFF, 'up', '--data-dir', dataDir, '--node-ip', nodeIP, '--node-name', nodeName, ...(opts.extraArgs ?? [])], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SKIFF_LOG_LEVEL: process.env.SKIFF_LOG_LEVEL ?? 'warn' },
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const kubeconfig = join(dataDir, 'kubeconfig');
  const exec = (cmd: string, args: string[]) => run('ip', ['netns', 'exec', netns, cmd, ...args], { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 16 << 20 });
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null) {
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
    rmSync(dataDir, { recursive: true, force: true });
  };
  const end = Date.now() + 90_000;
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`skiff up exited ${proc.exitCode}: ${stderr}`);
      if (/skiff is up/.test(stderr)) break;
      if (Date.now() > end) throw new Error(`skiff up did not start in 90 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
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
    proc,
    exec,
    kubectl: async (...args: string[]) => (await exec(KUBECTL, args)).stdout,
    stop,
  };
}
