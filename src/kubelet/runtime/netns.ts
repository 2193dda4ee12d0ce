import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { LocalHost, type Host } from '../../host/host.js';
import { errorMessage, SkiffError } from '../../util/errors.js';
import { shellQuote, spawnStream } from './spawn.js';
import type { ContainerConfig, ContainerInfo, ContainerRuntime, ExecResultSync, LogOptions, SandboxConfig, SandboxInfo, StreamSession } from './types.js';

interface SandboxRecord { id: string; podUid: string; podName: string; namespace: string; netns: string; createdAt: number }
/** `sup`: the supervisor's pid once started (older records keep it in `supervisor.pid` beside the record). */
interface ContainerRecord { id: string; sandboxId: string; podUid: string; netns: string; config: ContainerConfig; createdAt: number; startedAt: number; sup?: number }
/** A container as this runtime tracks it: its record, its supervisor's pid, its exit file, and how it ended (final once known). */
interface LiveContainer { rec: ContainerRecord; sup?: number; exitFile: string; exited?: { exitCode: number; finishedAt: number } }

/**
 * Pure: the supervisor script a netns container runs under. It bind-mounts the volumes in a
 * private mount namespace, starts the command, forwards SIGTERM to it, and records its pid and
 * exit code in files so a restarted kubelet can adopt it.
 */
export function renderSupervisor(cfg: ContainerConfig, dir: string): string {
  const lines = ['set -e'];
  for (const m of cfg.mounts) {
    lines.push(`mount --bind ${shellQuote(m.hostPath)} ${shellQuote(m.containerPath)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${shellQuote(m.containerPath)}`);
  }
  if (cfg.workingDir) lines.push(`cd ${shellQuote(cfg.workingDir)}`);
  lines.push('set +e', '"$@" & c=$!', `echo $c > ${shellQuote(join(dir, 'child.pid'))}`, `trap 'kill -TERM $c 2>/dev/null' TERM INT`,
    'while :; do wait $c; r=$?; kill -0 $c 2>/dev/null || break; done', `echo $r > ${shellQuote(join(dir, 'exit'))}`);
  return lines.join('\n');
}

/** Starts a long-lived process in its own session with its output appended to `log`; resolves with its pid. */
export type Launcher = (file: string, args: readonly string[], opts: { log: string; env: Record<string, string> }) => Promise<number>;

/** The default Launcher: spawns from this process. */
export const launchDetached: Launcher = async (file, args, opts) => {
  const log = { file: opts.log, append: true } as const;
  const child = execa(file, [...args], { detached: true, stdin: 'ignore', stdout: log, stderr: log, reject: false, cleanup: false, env: opts.env, extendEnv: false });
  child.unref();
  void child.catch(() => undefined);
  if (!child.pid) throw new SkiffError('ERR_EXEC', `starting ${file}: no pid`);
  return child.pid;
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Containers as host processes in the pod's own named network namespace, supervised by the
 * kubelet; no images (the command runs from the host's filesystem). Fast, Docker-free pods for
 * tests and the policy lab. State lives under `dir`, so a restarted kubelet adopts its processes.
 */
export class NetnsRuntime implements ContainerRuntime {
  readonly name = 'netns';
  /**
   * What is on disk under `dir`, read once (the first call; a restarted kubelet adopts from it) and
   * kept in memory afterwards: this runtime is the only writer of the records, so a relist reads no
   * files, only the state the supervisors change (their pid alive, the exit file).
   */
  private sbDirMade?: Promise<void>;
  private state?: Promise<{ sandboxes: Map<string, SandboxRecord>; containers: Map<string, LiveContainer> }>;
  /**
   * `host` is the node's netns seam; named pod netns are global objects and must be created from
   * the root mount namespace (an `ip netns add` under `ip netns exec` would bind-mount the new netns
   * inside that command's private mount namespace), so netns lifecycle goes through `rootHost`.
   */
  constructor(
    private readonly host: Host,
    private readonly dir: string,
    private readonly rootHost: Host = new LocalHost(null),
    private readonly launch: Launcher = launchDetached,
  ) {}

  private sbDir(): string { return join(this.dir, 'sandboxes'); }
  private cDir(id?: string): string { return id ? join(this.dir, 'containers', id) : join(this.dir, 'containers'); }

  private loaded(): Promise<{ sandboxes: Map<string, SandboxRecord>; containers: Map<string, LiveContainer> }> {
    this.state ??= (async () => {
      const sandboxes = new Map((await this.readJson<SandboxRecord>(this.sbDir())).map((r) => [r.id, r]));
      const containers = new Map<string, LiveContainer>();
      for (const rec of await this.readJson<ContainerRecord>(this.cDir(), 'dir')) {
        const sup = rec.sup ?? (Number((await readFile(join(this.cDir(rec.id), 'supervisor.pid'), 'utf8').catch(() => '')).trim()) || undefined);
        containers.set(rec.id, { rec, sup, exitFile: join(this.cDir(rec.id), 'exit') });
      }
      return { sandboxes, containers };
    })();
    return this.state;
  }

  async ensureImage(): Promise<void> {
    // images are not used: commands run from the host filesystem
  }

  async runSandbox(cfg: SandboxConfig): Promise<SandboxInfo> {
    const { sandboxes } = await this.loaded();
    const id = randomBytes(6).toString('hex');
    const rec: SandboxRecord = { id, podUid: cfg.podUid, podName: cfg.podName, namespace: cfg.namespace, netns: `skp-${id.slice(0, 10)}`, createdAt: Date.now() };
    // loopback comes up with the pod network (the bridge plugin's pod-side batch); with
    // `netnsByNetwork` the plugin's host-side batch makes the netns too. Until the netns exists the
    // sandbox lists as not running, so a sandbox whose network never came up is made again.
    if (!cfg.netnsByNetwork) await this.rootHost.exec('ip', ['netns', 'add', rec.netns]);
    this.sbDirMade ??= mkdir(this.sbDir(), { recursive: true }).then(() => undefined);
    await this.sbDirMade;
    await writeFile(join(this.sbDir(), `${id}.json`), JSON.stringify(rec));
    sandboxes.set(id, rec);
    return { ...this.toSandbox(rec, new Set([rec.netns])), netnsPending: cfg.netnsByNetwork || undefined };
  }

  /** Names of the netns that exist (one directory read per relist, not a stat per sandbox). */
  private static netnsNow(): Set<string> {
    try {
      return new Set(readdirSync('/var/run/netns'));
    } catch {
      return new Set();
    }
  }

  private toSandbox(r: SandboxRecord, netnsNow: Set<string>): SandboxInfo {
    const running = netnsNow.has(r.netns);
    return { id: r.id, podUid: r.podUid, podName: r.podName, namespace: r.namespace, running, netns: running ? { name: r.netns } : undefined, createdAt: r.createdAt };
  }

  private async readJson<T>(dir: string, suffix = '.json'): Promise<T[]> {
    const files = await readdir(dir).catch(() => [] as string[]);
    const out: T[] = [];
    for (const f of files) {
      const p = suffix === '.json' ? join(dir, f) : join(dir, f, 'record.json');
      if (suffix === '.json' && !f.endsWith('.json')) continue;
      const txt = await readFile(p, 'utf8').catch(() => undefined);
      if (txt) out.push(JSON.parse(txt) as T);
    }
    return out;
  }

  /** Sandboxes and containers from memory (RuntimeCache's relist): no file is read for a running container. */
  async list(): Promise<{ sandboxes: SandboxInfo[]; containers: ContainerInfo[] }> {
    const sandboxes = await this.listSandboxes();
    const liveNetns = new Set(sandboxes.flatMap((sb) => (sb.netns && 'name' in sb.netns ? [sb.netns.name] : [])));
    const containers: ContainerInfo[] = [];
    for (const c of (await this.loaded()).containers.values()) containers.push(await this.observe(c, liveNetns));
    return { sandboxes, containers };
  }

  async listSandboxes(): Promise<SandboxInfo[]> {
    const { sandboxes } = await this.loaded();
    const netnsNow = NetnsRuntime.netnsNow();
    return [...sandboxes.values()].map((r) => this.toSandbox(r, netnsNow));
  }

  async removeSandbox(id: string): Promise<void> {
    const { sandboxes, containers } = await this.loaded();
    const rec = sandboxes.get(id);
    if (!rec) return;
    for (const c of [...containers.values()]) if (c.rec.sandboxId === id) await this.removeContainer(c.rec.id);
    await this.rootHost.exec('ip', ['netns', 'delete', rec.netns], { allowFail: true });
    await rm(join(this.sbDir(), `${id}.json`), { force: true });
    sandboxes.delete(id);
  }

  async createContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<string> {
    const rec = await this.newContainer(sandbox, cfg);
    await writeFile(join(this.cDir(rec.id), 'record.json'), JSON.stringify(rec));
    return rec.id;
  }

  /** Create + start with one record write (the pod worker's path): the record is written once, started. */
  async runContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<{ id: string; startError?: string }> {
    const rec = await this.newContainer(sandbox, cfg);
    try {
      await this.launchSupervisor(rec);
      return { id: rec.id };
    } catch (err) {
      await writeFile(join(this.cDir(rec.id), 'record.json'), JSON.stringify(rec));
      return { id: rec.id, startError: errorMessage(err) };
    }
  }

  /** A container's record and directory (nothing on disk says it exists until record.json is written). */
  private async newContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<ContainerRecord> {
    if (!sandbox.netns || !('name' in sandbox.netns)) throw new SkiffError('ERR_CREATE_CONTAINER', 'sandbox has no named netns');
    if (cfg.command.length + cfg.args.length === 0) throw new SkiffError('ERR_CREATE_CONTAINER', `the netns runtime needs a command for container ${cfg.name} (images are not used)`);
    for (const m of cfg.mounts) {
      if (!existsSync(m.containerPath)) throw new SkiffError('ERR_CREATE_CONTAINER', `netns runtime: mount target ${m.containerPath} must exist on the host`);
    }
    const { containers } = await this.loaded();
    const id = randomBytes(8).toString('hex');
    const rec: ContainerRecord = { id, sandboxId: sandbox.id, podUid: sandbox.podUid, netns: sandbox.netns.name, config: cfg, createdAt: Date.now(), startedAt: 0 };
    await mkdir(this.cDir(id), { recursive: true });
    containers.set(id, { rec, exitFile: join(this.cDir(id), 'exit') });
    return rec;
  }

  private async live(id: string): Promise<LiveContainer> {
    const c = (await this.loaded()).containers.get(id);
    if (!c) throw new SkiffError('ERR_NO_CONTAINER', `no such container ${id}`);
    return c;
  }

  async startContainer(id: string): Promise<void> {
    await this.launchSupervisor((await this.live(id)).rec);
  }

  /** Starts the container's supervisor; then its pid and the started record are on disk. */
  private async launchSupervisor(rec: ContainerRecord): Promise<void> {
    const c = await this.live(rec.id);
    const dir = this.cDir(rec.id);
    const argv = [...rec.config.command, ...rec.config.args];
    // `ip netns exec` also gives the supervisor its own mount namespace (a slave of the host's), so
    // its bind mounts stay private to the container
    const pid = await this.launch('ip', ['netns', 'exec', rec.netns, 'sh', '-c', renderSupervisor(rec.config, dir), 'sh', ...argv], {
      log: join(dir, 'log'), env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...Object.fromEntries(rec.config.env) },
    });
    const started = { ...rec, startedAt: Date.now(), sup: pid };
    await writeFile(join(dir, 'record.json'), JSON.stringify(started));
    c.rec = started;
    c.sup = pid;
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const c = (await this.loaded()).containers.get(id);
    const sup = c?.sup;
    const child = Number((await readFile(join(this.cDir(id), 'child.pid'), 'utf8').catch(() => '')).trim()) || undefined;
    const exitFile = join(this.cDir(id), 'exit');
    if (!sup || !alive(sup)) return;
    process.kill(sup, 'SIGTERM');
    const deadline = Date.now() + graceSeconds * 1000;
    while (Date.now() < deadline && !existsSync(exitFile)) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(exitFile)) {
      if (child && alive(child)) process.kill(child, 'SIGKILL');
      for (let i = 0; i < 40 && !existsSync(exitFile); i++) await new Promise((r) => setTimeout(r, 50));
      if (!existsSync(exitFile)) await writeFile(exitFile, '137');
      if (alive(sup)) process.kill(sup, 'SIGKILL');
    }
  }

  async removeContainer(id: string): Promise<void> {
    await this.stopContainer(id, 0).catch(() => undefined);
    await rm(this.cDir(id), { recursive: true, force: true });
    (await this.loaded()).containers.delete(id);
  }

  async listContainers(): Promise<ContainerInfo[]> {
    const out: ContainerInfo[] = [];
    for (const c of (await this.loaded()).containers.values()) out.push(await this.observe(c));
    return out;
  }

  /**
   * A container's state: from memory once it exited (final), else from its supervisor: alive and no
   * exit file means running (a signal-0 and a stat, no file read); otherwise the exit file decides.
   */
  private async observe(c: LiveContainer, liveNetns?: Set<string>): Promise<ContainerInfo> {
    const { rec } = c;
    const { exitFile } = c;
    let state: ContainerInfo['state'] = rec.startedAt === 0 ? 'created' : 'running';
    let exitCode = 0;
    let finishedAt = 0;
    if (c.exited) {
      ({ exitCode, finishedAt } = c.exited);
      state = 'exited';
    } else if (state === 'running' && (existsSync(exitFile) || !c.sup || !alive(c.sup))) {
      const exitTxt = await readFile(exitFile, 'utf8').catch(() => undefined);
      state = 'exited';
      if (exitTxt !== undefined) {
        exitCode = Number(exitTxt.trim());
        finishedAt = (await stat(exitFile)).mtimeMs;
        c.exited = { exitCode, finishedAt };
      } else {
        exitCode = 137;
        finishedAt = Date.now();
      }
    }
    if (state === 'running' && !liveNetns?.has(rec.netns) && !existsSync(`/var/run/netns/${rec.netns}`)) {
      state = 'exited';
      exitCode = 137;
      finishedAt = Date.now();
    }
    return {
      id: rec.id, podUid: rec.podUid, name: rec.config.name, role: rec.config.role, attempt: rec.config.attempt, image: rec.config.image, imageId: '',
      state, exitCode, oomKilled: false, createdAt: rec.createdAt, startedAt: rec.startedAt, finishedAt,
    };
  }

  async execSync(id: string, cmd: string[], timeoutMs: number): Promise<ExecResultSync> {
    const { rec } = await this.live(id);
    const r = await this.rootHost.exec('ip', ['netns', 'exec', rec.netns, ...cmd], { allowFail: true, timeoutMs });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }

  /** exec/attach/logs are synchronous by interface: read the container's netns name synchronously. */
  private netnsOf(id: string): string {
    try {
      return (JSON.parse(readFileSync(join(this.cDir(id), 'record.json'), 'utf8')) as ContainerRecord).netns;
    } catch {
      throw new SkiffError('ERR_NO_CONTAINER', `no such container ${id}`);
    }
  }

  exec(id: string, cmd: string[], opts: { stdin: boolean; tty: boolean }): StreamSession {
    const ns = this.netnsOf(id);
    if (!opts.tty) return spawnStream('ip', ['netns', 'exec', ns, ...cmd], { stdin: opts.stdin });
    return spawnStream('script', ['-qfec', ['ip', 'netns', 'exec', ns, ...cmd].map(shellQuote).join(' '), '/dev/null'], { stdin: true });
  }

  attach(id: string): StreamSession {
    return spawnStream('tail', ['-n', '0', '-f', join(this.cDir(id), 'log')], { stdin: false });
  }

  logs(id: string, opts: LogOptions): StreamSession {
    const args = ['-n', opts.tail !== undefined && opts.tail >= 0 ? String(opts.tail) : '+1'];
    if (opts.follow) args.push('-f');
    return spawnStream('tail', [...args, join(this.cDir(id), 'log')], { stdin: false });
  }
}
