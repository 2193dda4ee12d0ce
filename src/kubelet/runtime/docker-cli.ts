import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../../host/host.js';
import { SkiffError } from '../../util/errors.js';
import { shellQuote, spawnStream } from './spawn.js';
import { containerListPath, DockerEngine, engineSocketPath, type DockerInspect, type DockerSummary } from './docker-engine.js';
import {
  LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_MANAGED, LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_ROLE,
  type ContainerConfig, type ContainerInfo, type ContainerStats, type ContainerRuntime, type ExecResultSync, type LogOptions, type PullAuth,
  type SandboxConfig, type SandboxInfo, type StreamSession,
} from './types.js';

export const PAUSE_IMAGE = 'skiff/pause:3.9';

function ms(ts: string | undefined): number {
  if (!ts || ts.startsWith('0001-')) return 0;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? 0 : t;
}

/** Docker container names allow [a-zA-Z0-9_.-]. */
function dockerName(...parts: string[]): string {
  return parts.join('_').replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/** Pure: the `docker create` argv of an app or init container joined to the sandbox's network. */
export function renderCreateArgs(node: string, sandbox: SandboxInfo, cfg: ContainerConfig): string[] {
  const a = ['create', '--name', dockerName('skiff', cfg.name, sandbox.podName, sandbox.namespace, sandbox.podUid.slice(0, 8), String(cfg.attempt))];
  const labels: Record<string, string> = {
    [LABEL_MANAGED]: 'true', [LABEL_NODE]: node, [LABEL_POD_UID]: sandbox.podUid, [LABEL_POD_NAME]: sandbox.podName, [LABEL_POD_NAMESPACE]: sandbox.namespace,
    [LABEL_CONTAINER]: cfg.name, [LABEL_ATTEMPT]: String(cfg.attempt), [LABEL_ROLE]: cfg.role,
  };
  for (const [k, v] of Object.entries(labels)) a.push('--label', `${k}=${v}`);
  a.push('--network', `container:${sandbox.id}`, '--ipc', `container:${sandbox.id}`);
  for (const [k, v] of cfg.env) a.push('-e', `${k}=${v}`);
  for (const m of cfg.mounts) a.push('-v', `${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`);
  if (cfg.workingDir) a.push('-w', cfg.workingDir);
  if (cfg.tty) a.push('-t');
  if (cfg.stdin) a.push('-i');
  if (cfg.memoryLimitBytes > 0) a.push('--memory', String(cfg.memoryLimitBytes), '--memory-swap', String(cfg.memoryLimitBytes));
  if (cfg.cpuLimitMilli > 0) a.push('--cpus', (cfg.cpuLimitMilli / 1000).toFixed(3));
  if (cfg.cpuRequestMilli > 0) a.push('--cpu-shares', String(Math.max(2, Math.round((cfg.cpuRequestMilli * 1024) / 1000))));
  if (cfg.overrideEntrypoint) a.push('--entrypoint', cfg.command[0] ?? '');
  a.push(cfg.image);
  if (cfg.overrideEntrypoint) a.push(...cfg.command.slice(1));
  a.push(...cfg.args);
  return a;
}

/** How long an inspected container that may still change (running, created) is trusted; exited ones never change. */
const INSPECT_TTL_MS = 30_000;

export interface DockerCliRuntimeOptions {
  /** Engine API socket used for reads (list, inspect, image presence); null = read through the CLI too. Default: from DOCKER_HOST. */
  engineSocket?: string | null;
}

/**
 * Containers through the `docker` CLI; pause container with `--network none` holds the netns.
 * Every change goes through the CLI; state is read from the Engine API socket when it is there (one
 * list request, and an inspect only for containers that are new or changed state since the last
 * look), else through `docker ps` + `docker inspect`.
 */
export class DockerCliRuntime implements ContainerRuntime {
  readonly name = 'docker';
  private engine?: DockerEngine;
  private readonly inspected = new Map<string, { status: string; at: number; d: DockerInspect }>();
  constructor(private readonly host: Host, readonly node: string, private readonly docker = 'docker', opts: DockerCliRuntimeOptions = {}) {
    const sock = opts.engineSocket === undefined ? engineSocketPath(process.env.DOCKER_HOST) : opts.engineSocket;
    if (sock) this.engine = new DockerEngine(sock);
  }

  private run(args: string[], allowFail = false, input?: string) {
    return this.host.exec(this.docker, args, { allowFail, input, timeoutMs: 300_000 });
  }

  /** Runs `read` on the Engine API; undefined when the socket is unreachable (then the CLI is used from now on). */
  private async viaEngine<T>(read: (e: DockerEngine) => Promise<T>): Promise<T | undefined> {
    if (!this.engine) return undefined;
    try {
      return await read(this.engine);
    } catch (err) {
      if ((err as SkiffError).code !== 'ERR_ENGINE_UNREACHABLE') throw err;
      this.engine.close();
      this.engine = undefined;
      return undefined;
    }
  }

  private async imagePresent(image: string): Promise<boolean> {
    const viaApi = await this.viaEngine(async (e) => (await e.get(`/images/${image}/json`)).status === 200);
    if (viaApi !== undefined) return viaApi;
    return (await this.run(['image', 'inspect', '--format', '{{.Id}}', image], true)).exitCode === 0;
  }

  async ensureImage(image: string, policy: 'Always' | 'IfNotPresent' | 'Never', auth: PullAuth[] = []): Promise<void> {
    if (policy !== 'Always') {
      if (await this.imagePresent(image)) return;
      if (policy === 'Never') throw new SkiffError('ERR_IMAGE_NEVER_PULL', `Container image "${image}" is not present with pull policy of Never`);
    }
    let dir: string | undefined;
    try {
      const args = ['pull', image];
      if (auth.length > 0) {
        dir = await mkdtemp(join(tmpdir(), 'skiff-pull-'));
        await writeFile(join(dir, 'config.json'), mergeDockerConfigs(auth), { mode: 0o600 });
        args.unshift('--config', dir);
      }
      const r = await this.run(args, true);
      if (r.exitCode !== 0) {
        throw new SkiffError('ERR_IMAGE_PULL', `failed to pull image "${image}": ${(r.stderr || r.stdout).trim()}`);
      }
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  async runSandbox(cfg: SandboxConfig): Promise<SandboxInfo> {
    const labels = [
      `${LABEL_MANAGED}=true`, `${LABEL_NODE}=${this.node}`, `${LABEL_POD_UID}=${cfg.podUid}`, `${LABEL_POD_NAME}=${cfg.podName}`,
      `${LABEL_POD_NAMESPACE}=${cfg.namespace}`, `${LABEL_ROLE}=sandbox`, `${LABEL_CONTAINER}=POD`, `${LABEL_ATTEMPT}=0`,
    ];
    const name = dockerName('skiff', 'POD', cfg.podName, cfg.namespace, cfg.podUid.slice(0, 8));
    const args = ['run', '-d', '--name', name, '--network', 'none', '--ipc', 'shareable', '--hostname', cfg.hostname.slice(0, 63)];
    for (const l of labels) args.push('--label', l);
    args.push(PAUSE_IMAGE);
    let r = await this.run(args, true);
    if (r.exitCode !== 0 && /already in use/.test(r.stderr)) {
      // a dead sandbox of this pod still holds the name: remove it and run again
      await this.run(['rm', '-f', name], true);
      r = await this.run(args, true);
    }
    if (r.exitCode !== 0) throw new SkiffError('ERR_RUN_SANDBOX', `docker run ${name}: ${r.stderr.trim()}`);
    const [info] = await this.inspect([r.stdout.trim()]);
    if (!info) throw new SkiffError('ERR_RUN_SANDBOX', `sandbox ${name} is gone right after docker run`);
    return this.toSandbox(info);
  }

  private toSandbox(d: DockerInspect): SandboxInfo {
    const l = d.Config.Labels ?? {};
    return {
      id: d.Id, podUid: l[LABEL_POD_UID] ?? '', podName: l[LABEL_POD_NAME] ?? '', namespace: l[LABEL_POD_NAMESPACE] ?? '',
      running: d.State.Running, netns: d.State.Running && d.State.Pid > 0 ? { pid: d.State.Pid } : undefined, createdAt: ms(d.Created),
    };
  }

  private async inspect(ids: string[]): Promise<DockerInspect[]> {
    if (ids.length === 0) return [];
    const viaApi = await this.viaEngine(async (e) => (await Promise.all(ids.map((id) => e.get<DockerInspect>(`/containers/${id}/json`)))).map((r) => r.body));
    if (viaApi) return viaApi.filter((d): d is DockerInspect => d !== undefined);
    const r = await this.run(['inspect', ...ids], true);
    if (r.exitCode !== 0 && !r.stdout.trim().startsWith('[')) return [];
    return JSON.parse(r.stdout) as DockerInspect[];
  }

  /** One list request; inspects only containers that are new, changed state, or were last inspected long ago. */
  private async listFromEngine(e: DockerEngine): Promise<DockerInspect[]> {
    const { body = [] } = await e.get<DockerSummary[]>(containerListPath([`${LABEL_MANAGED}=true`, `${LABEL_NODE}=${this.node}`]));
    const now = Date.now();
    const live = new Set(body.map((c) => c.Id));
    for (const id of this.inspected.keys()) if (!live.has(id)) this.inspected.delete(id);
    const out = await Promise.all(body.map(async (c) => {
      const hit = this.inspected.get(c.Id);
      if (hit && hit.status === c.State && (c.State === 'exited' || now - hit.at < INSPECT_TTL_MS)) return hit.d;
      const d = (await e.get<DockerInspect>(`/containers/${c.Id}/json`)).body;
      if (d) this.inspected.set(c.Id, { status: d.State.Status, at: now, d });
      return d;
    }));
    return out.filter((d): d is DockerInspect => d !== undefined);
  }

  private async listManaged(): Promise<DockerInspect[]> {
    const viaApi = await this.viaEngine((e) => this.listFromEngine(e));
    if (viaApi) return viaApi;
    const r = await this.run(['ps', '-a', '-q', '--no-trunc', '--filter', `label=${LABEL_MANAGED}=true`, '--filter', `label=${LABEL_NODE}=${this.node}`]);
    return this.inspect(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
  }

  /** Sandboxes and containers from one listing (the RuntimeCache's relist). */
  async list(): Promise<{ sandboxes: SandboxInfo[]; containers: ContainerInfo[] }> {
    const all = await this.listManaged();
    return {
      sandboxes: all.filter((d) => d.Config.Labels?.[LABEL_ROLE] === 'sandbox').map((d) => this.toSandbox(d)),
      containers: all.filter((d) => d.Config.Labels?.[LABEL_ROLE] !== 'sandbox').map((d) => toContainerInfo(d)),
    };
  }

  async listSandboxes(): Promise<SandboxInfo[]> {
    return (await this.list()).sandboxes;
  }

  async listContainers(): Promise<ContainerInfo[]> {
    return (await this.list()).containers;
  }

  async removeSandbox(id: string): Promise<void> {
    await this.run(['rm', '-f', '-v', id], true);
  }

  async createContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<string> {
    const r = await this.run(renderCreateArgs(this.node, sandbox, cfg), true);
    if (r.exitCode !== 0) throw new SkiffError('ERR_CREATE_CONTAINER', `docker create ${cfg.name}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** `docker run -d`: one CLI call instead of create + start. */
  async runContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<{ id: string; startError?: string }> {
    const [, ...create] = renderCreateArgs(this.node, sandbox, cfg);
    const r = await this.run(['run', '-d', ...create], true);
    if (r.exitCode === 0) return { id: r.stdout.trim() };
    // created but not started, or not created at all: the name tells
    const [made] = await this.inspect([create[1]]);
    if (!made) throw new SkiffError('ERR_CREATE_CONTAINER', `docker run ${cfg.name}: ${r.stderr.trim()}`);
    return { id: made.Id, startError: `docker start: ${r.stderr.trim()}` };
  }

  async startContainer(id: string): Promise<void> {
    const r = await this.run(['start', id], true);
    if (r.exitCode !== 0) throw new SkiffError('ERR_START_CONTAINER', `docker start: ${r.stderr.trim()}`);
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    await this.run(['stop', '-t', String(Math.max(0, Math.floor(graceSeconds))), id], true);
  }

  async removeContainer(id: string): Promise<void> {
    await this.run(['rm', '-f', '-v', id], true);
  }

  async execSync(id: string, cmd: string[], timeoutMs: number): Promise<ExecResultSync> {
    const r = await this.host.exec(this.docker, ['exec', id, ...cmd], { allowFail: true, timeoutMs });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }

  exec(id: string, cmd: string[], opts: { stdin: boolean; tty: boolean }): StreamSession {
    if (!opts.tty) return spawnStream(this.docker, ['exec', ...(opts.stdin ? ['-i'] : []), id, ...cmd], { stdin: opts.stdin });
    // docker wants a terminal for -t: give it one with script(1).
    const line = [this.docker, 'exec', '-it', id, ...cmd].map(shellQuote).join(' ');
    return spawnStream('script', ['-qfec', line, '/dev/null'], { stdin: true });
  }

  attach(id: string, opts: { stdin: boolean; tty: boolean }): StreamSession {
    const args = ['attach', '--sig-proxy=false', ...(opts.stdin ? [] : ['--no-stdin']), id];
    if (!opts.tty) return spawnStream(this.docker, args, { stdin: opts.stdin });
    return spawnStream('script', ['-qfec', [this.docker, ...args].map(shellQuote).join(' '), '/dev/null'], { stdin: true });
  }

  async stats(): Promise<Map<string, ContainerStats>> {
    const ids = (await this.listManaged()).filter((d) => d.State.Running && d.Config.Labels?.[LABEL_ROLE] !== 'sandbox').map((d) => d.Id);
    const out = new Map<string, ContainerStats>();
    if (ids.length === 0) return out;
    const r = await this.run(['stats', '--no-stream', '--no-trunc', '--format', '{{json .}}', ...ids], true);
    for (const line of r.stdout.split('\n')) {
      if (!line.trim()) continue;
      const s = JSON.parse(line) as { ID: string; CPUPerc: string; MemUsage: string };
      out.set(s.ID, parseDockerStats(s.CPUPerc, s.MemUsage));
    }
    return out;
  }

  logs(id: string, opts: LogOptions): StreamSession {
    const args = ['logs'];
    if (opts.follow) args.push('--follow');
    if (opts.timestamps) args.push('--timestamps');
    if (opts.tail !== undefined && opts.tail >= 0) args.push('--tail', String(opts.tail));
    if (opts.sinceSeconds) args.push('--since', `${opts.sinceSeconds}s`);
    args.push(id);
    return spawnStream(this.docker, args, { stdin: false });
  }
}

/** Pure: the kubelet's view of an inspected app or init container. */
export function toContainerInfo(d: DockerInspect): ContainerInfo {
  const l = d.Config.Labels ?? {};
  const st = d.State.Running ? 'running' : d.State.Status === 'created' ? 'created' : 'exited';
  return {
    id: d.Id, podUid: l[LABEL_POD_UID] ?? '', name: l[LABEL_CONTAINER] ?? '', role: l[LABEL_ROLE] === 'init' ? 'init' : 'app',
    attempt: Number(l[LABEL_ATTEMPT] ?? 0), image: d.Config.Image, imageId: d.Image, state: st,
    exitCode: d.State.ExitCode, oomKilled: d.State.OOMKilled, createdAt: ms(d.Created), startedAt: ms(d.State.StartedAt), finishedAt: ms(d.State.FinishedAt),
  };
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, kB: 1e3, MB: 1e6, GB: 1e9 };

/** Pure: `docker stats` "12.5%" and "1.5MiB / 2GiB" -> nanocores and bytes. */
export function parseDockerStats(cpuPerc: string, memUsage: string): ContainerStats {
  const cpu = Number.parseFloat(cpuPerc) || 0;
  const m = /^([0-9.]+)\s*([A-Za-z]+)/.exec(memUsage.trim());
  return { cpuNanoCores: Math.round((cpu / 100) * 1e9), memoryBytes: m ? Math.round(Number(m[1]) * (UNITS[m[2]] ?? 1)) : 0 };
}

/** Merges the `auths` of several dockerconfigjson secrets into one config.json body. */
export function mergeDockerConfigs(auth: PullAuth[]): string {
  const auths: Record<string, unknown> = {};
  for (const a of auth) {
    try {
      const parsed = JSON.parse(a.dockerConfigJson) as { auths?: Record<string, unknown> };
      Object.assign(auths, parsed.auths ?? {});
    } catch {
      // a malformed secret contributes nothing; the pull then fails with the registry's message
    }
  }
  return JSON.stringify({ auths });
}
