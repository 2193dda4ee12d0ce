// Helpers for chaos tests on a `skiff up --split` cluster: request loops inside the cluster's netns
// and the components' PIDs from DIR/components.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetnsCluster } from './netns-cluster.js';
import { poll } from './poll.js';

export interface RequestLoop {
  proc: ChildProcess;
  /** one "ok" or "fail" per try, in order */
  lines: string[];
  stop(): Promise<void>;
}

/**
 * A bounded loop inside the netns (at most MAX tries, EVERY seconds apart) running CMD, a shell
 * command that fails on a failed request; one line per try.
 */
export function requestLoop(c: NetnsCluster, cmd: string, opts: { every?: number; max?: number } = {}): RequestLoop {
  const script = `i=0; while [ $i -lt ${opts.max ?? 3000} ]; do i=$((i+1)); if ${cmd} >/dev/null 2>&1; then echo ok; else echo fail; fi; sleep ${opts.every ?? 0.1}; done`;
  const proc = spawn('ip', ['netns', 'exec', c.netns, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    process.kill(-proc.pid!, 'SIGKILL');
    await exited;
  };
  return { proc, lines, stop };
}

/** Tries and failures in LINES[from..to). */
export function window(lines: string[], from: number, to = lines.length): { tries: number; failed: number } {
  const w = lines.slice(from, to);
  return { tries: w.length, failed: w.filter((l) => l === 'fail').length };
}

interface ComponentsFile {
  mode: string;
  supervisor: number;
  components: Record<string, { pid: number | null; state: string; restarts: number; readyCpuMs: number | null }>;
}

export function readComponents(c: NetnsCluster): ComponentsFile {
  return JSON.parse(readFileSync(join(c.dataDir, 'components.json'), 'utf8')) as ComponentsFile;
}

/** kill -9 of component NAME's process; resolves with the PID it killed. */
export function killComponent(c: NetnsCluster, name: string): number {
  const pid = readComponents(c).components[name]?.pid;
  if (!pid) throw new Error(`component ${name} has no pid in components.json`);
  process.kill(pid, 'SIGKILL');
  return pid;
}

/** Waits until the supervisor reports component NAME running again under a PID other than OLD. */
export function waitRestarted(c: NetnsCluster, name: string, old: number, timeoutMs = 60_000): Promise<number> {
  return poll(`${name} running again after kill -9 of pid ${old}`, timeoutMs, async () => {
    const s = readComponents(c).components[name];
    return s && s.state === 'running' && s.pid && s.pid !== old ? s.pid : undefined;
  }, 100);
}
