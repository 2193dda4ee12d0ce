import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { RestClient } from '../../src/client/rest.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const SKIFF = join(REPO, 'dist/cli/main.js');
export const KUBECTL = existsSync(join(REPO, '.bin/kubectl')) ? join(REPO, '.bin/kubectl') : 'kubectl';
export const HELM = join(REPO, '.bin/helm');

export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  port: number;
  kubeconfig: string;
  client: RestClient;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `skiff server` (the built binary) on loopback with DIR as its data dir, control plane only. */
export async function startServerProcess(dataDir: string, port: number, extra: string[] = []): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [SKIFF, 'server', '--data-dir', dataDir, '--port', String(port), '--bind-address', '127.0.0.1', '--node-ip', '127.0.0.1', '--no-dns', '--no-ingress', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SKIFF_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const kubeconfig = join(dataDir, 'kubeconfig');
  const end = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`skiff server exited ${proc.exitCode}: ${stderr}`);
    if (/skiff server is up/.test(stderr)) break;
    if (Date.now() > end) throw new Error(`skiff server did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const cfg = JSON.parse(readFileSync(kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
  const b64 = (s: string) => Buffer.from(s, 'base64').toString();
  const client = new RestClient({
    server: `https://127.0.0.1:${port}`,
    ca: b64(cfg.clusters[0].cluster['certificate-authority-data']),
    cert: b64(cfg.users[0].user['client-certificate-data']),
    key: b64(cfg.users[0].user['client-key-data']),
  });
  return {
    proc,
    port,
    kubeconfig,
    client,
    kill: async (signal: NodeJS.Signals = 'SIGTERM') => {
      client.close();
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await exited;
    },
  };
}
