import { spawn, type ChildProcess } from 'node:child_process';
import { LocalHost, type ExecOptions, type ExecResult, type Host } from './host.js';
import { SkiffError } from '../util/errors.js';

/**
 * The helper's own code (plain JS, run with `node -e`): it spawns what it is asked to over IPC and
 * answers with the exit code and output. `detached` requests start a long-lived process with its
 * output appended to a log file and answer with its pid at once.
 */
const HELPER = String.raw`
const { spawn } = require('node:child_process');
const { openSync, closeSync } = require('node:fs');
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  let sent = false;
  const reply = (r) => { if (!sent) { sent = true; process.send({ id: m.id, stdout: '', stderr: '', ...r }); } };
  if (m.detached) {
    let fd;
    try {
      fd = openSync(m.detached.log, 'a');
      const c = spawn(m.file, m.args, { detached: true, stdio: ['ignore', fd, fd], env: m.detached.env });
      c.on('error', () => undefined);
      c.unref();
      reply({ exitCode: c.pid ? 0 : -1, pid: c.pid });
    } catch (e) {
      reply({ exitCode: -1, stderr: String(e && e.message) });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return;
  }
  let c;
  try {
    c = spawn(m.file, m.args, { stdio: [m.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  } catch (e) {
    return reply({ exitCode: -1, stderr: String(e && e.message) });
  }
  const out = [];
  const err = [];
  c.stdout.on('data', (d) => out.push(d));
  c.stderr.on('data', (d) => err.push(d));
  const timer = m.timeoutMs ? setTimeout(() => c.kill('SIGTERM'), m.timeoutMs) : undefined;
  c.on('error', (e) => { if (!c.pid) { clearTimeout(timer); reply({ exitCode: -1, stderr: String(e.message) }); } });
  c.on('close', (code) => {
    clearTimeout(timer);
    reply({ exitCode: code === null ? -1 : code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
  });
  if (m.input !== undefined) { c.stdin.on('error', () => undefined); c.stdin.end(m.input); }
});
`;

interface Request {
  id: number;
  file: string;
  args: string[];
  input?: string;
  timeoutMs?: number;
  detached?: { log: string; env: Record<string, string> };
}

interface Reply {
  id: number;
  exitCode: number;
  stdout: string;
  stderr: string;
  pid?: number;
}

/**
 * A small process that spawns commands for the agent (a fork server): the kubelet, the service
 * proxy and netpol exec through it. Spawning from a large
 * Node process costs CPU in proportion to its memory (fork copies its page tables while the event
 * loop waits): ~7 ms per 100 MB of RSS, so 15-30 ms a command in an apiserver + kubelet process,
 * against ~1.5 ms from this helper. It starts on first use, does not keep the parent alive while idle,
 * exits when the parent goes away, and is started again if it dies.
 */
export class ExecHelper {
  private child?: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, (r: Reply) => void>();

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: process.env });
    child.on('message', (r: Reply) => {
      const done = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (this.pending.size === 0) child.channel?.unref();
      done?.(r);
    });
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = undefined;
      for (const [id, done] of [...this.pending]) done({ id, exitCode: -1, stdout: '', stderr: `exec helper ${why}` });
      this.pending.clear();
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    child.on('error', (err) => gone(`failed: ${err.message}`));
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  private request(r: Omit<Request, 'id'>): Promise<Reply> {
    const child = this.ensure();
    const id = ++this.seq;
    return new Promise<Reply>((resolve) => {
      this.pending.set(id, resolve);
      child.channel?.ref();
      child.send({ ...r, id } satisfies Request, (err) => {
        if (!err) return;
        this.pending.delete(id);
        resolve({ id, exitCode: -1, stdout: '', stderr: `exec helper: ${err.message}` });
      });
    });
  }

  run(file: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return this.request({ file, args: [...args], input: opts.input, timeoutMs: opts.timeoutMs });
  }

  /** Starts a long-lived process in its own session, output appended to `log`; resolves with its pid. */
  async spawnDetached(file: string, args: readonly string[], opts: { log: string; env: Record<string, string> }): Promise<number> {
    const r = await this.request({ file, args: [...args], detached: opts });
    if (r.exitCode !== 0 || !r.pid) throw new SkiffError('ERR_EXEC', `starting ${file}: ${r.stderr.trim() || 'no pid'}`);
    return r.pid;
  }

  /** Ends the helper (it also ends by itself when this process exits). */
  close(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

let shared: ExecHelper | undefined;

/** The process-wide helper (one serves every kubelet in this process). */
export function sharedExecHelper(): ExecHelper {
  return (shared ??= new ExecHelper());
}

/** Pure: the argv that runs `cmd` inside the named netns: `nsenter --net=` (a setns, nothing more). */
export function inNamedNetns(netns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=/var/run/netns/${netns}`, cmd, ...args]];
}

/**
 * A Host whose commands the exec helper spawns; inside `netns` when one is given, with the same
 * results and errors as LocalHost. LocalHost enters with `ip netns exec NAME`, which also makes a
 * mount namespace and mounts a sysfs for the command; the kubelet's commands (ip, sysctl, curl,
 * docker) need neither, so this enters with `nsenter --net=` (~2 ms less CPU a command).
 */
export class HelperHost implements Host {
  constructor(readonly netns: string | null, private readonly helper: ExecHelper = sharedExecHelper()) {}

  async exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const [file, argv] = this.netns ? inNamedNetns(this.netns, cmd, args) : [cmd, [...args]];
    const r = await this.helper.run(file, argv, { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
    const out: ExecResult = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    if (out.exitCode !== 0 && !opts.allowFail) {
      throw new SkiffError('ERR_EXEC', `${cmd} ${args.join(' ')} exited ${out.exitCode}: ${out.stderr.trim()}`, {
        details: { cmd, args, exitCode: out.exitCode, stderr: out.stderr, netns: this.netns },
      });
    }
    return out;
  }
}

/**
 * The host an agent component should exec through: a LocalHost (a real machine or a named netns)
 * becomes a HelperHost on the same netns, so the component's ip/iptables/ipset calls do not fork
 * the large agent process; any other Host (fakes, recorders) is used as given.
 */
export function viaExecHelper(host: Host): Host {
  return host instanceof LocalHost ? new HelperHost(host.netns) : host;
}
