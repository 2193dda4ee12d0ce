import { PassThrough } from 'node:stream';
import { SkiffError } from '../../util/errors.js';
import type { ContainerConfig, ContainerInfo, ContainerStats, ContainerRuntime, ExecResultSync, PullAuth, SandboxConfig, SandboxInfo, StreamSession } from './types.js';

interface FakeContainer extends ContainerInfo {
  config: ContainerConfig;
  logs: string;
}

/**
 * An in-memory container engine for unit tests. It models behaviour: images must be "present"
 * (or pullable), containers move created -> running -> exited, `exit()` simulates a crash or an
 * OOM kill, stop honours nothing but records the grace it was given, exec answers from a handler.
 */
export class FakeRuntime implements ContainerRuntime {
  readonly name = 'fake';
  readonly images = new Set<string>(['skiff/busybox:1.36', 'skiff/pause:3.9']);
  /** images a pull can fetch, and the auth (registry host) each needs */
  readonly pullable = new Map<string, string | undefined>();
  readonly sandboxes = new Map<string, SandboxInfo>();
  readonly containers = new Map<string, FakeContainer>();
  readonly stops: { id: string; grace: number }[] = [];
  readonly pulls: string[] = [];
  execHandler: (c: FakeContainer, cmd: string[]) => ExecResultSync = () => ({ exitCode: 0, stdout: '', stderr: '' });
  private seq = 0;
  private pid = 1000;

  async ensureImage(image: string, policy: 'Always' | 'IfNotPresent' | 'Never', auth: PullAuth[] = []): Promise<void> {
    if (policy !== 'Always' && this.images.has(image)) return;
    if (policy === 'Never') throw new SkiffError('ERR_IMAGE_NEVER_PULL', `Container image "${image}" is not present with pull policy of Never`);
    this.pulls.push(image);
    if (!this.pullable.has(image)) {
      if (this.images.has(image)) throw new SkiffError('ERR_IMAGE_PULL', `pull access denied for ${image}`);
      throw new SkiffError('ERR_IMAGE_PULL', `failed to pull image "${image}": manifest unknown`);
    }
    const needs = this.pullable.get(image);
    if (needs && !auth.some((a) => a.dockerConfigJson.includes(needs))) throw new SkiffError('ERR_IMAGE_PULL', `failed to pull image "${image}": no basic auth credentials`);
    this.images.add(image);
  }

  async runSandbox(cfg: SandboxConfig): Promise<SandboxInfo> {
    const sb: SandboxInfo = { id: `sb${++this.seq}`, podUid: cfg.podUid, podName: cfg.podName, namespace: cfg.namespace, running: true, netns: { pid: ++this.pid }, createdAt: Date.now() + this.seq };
    this.sandboxes.set(sb.id, sb);
    return { ...sb };
  }

  async listSandboxes(): Promise<SandboxInfo[]> {
    return [...this.sandboxes.values()].map((s) => ({ ...s }));
  }

  async removeSandbox(id: string): Promise<void> {
    this.sandboxes.delete(id);
  }

  async createContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<string> {
    if (!this.images.has(cfg.image)) throw new SkiffError('ERR_CREATE_CONTAINER', `no such image ${cfg.image}`);
    const id = `c${++this.seq}`;
    this.containers.set(id, {
      id, podUid: sandbox.podUid, name: cfg.name, role: cfg.role, attempt: cfg.attempt, image: cfg.image, imageId: `sha256:${cfg.image}`,
      state: 'created', exitCode: 0, oomKilled: false, createdAt: Date.now() + this.seq, startedAt: 0, finishedAt: 0, config: cfg, logs: '',
    });
    return id;
  }

  async startContainer(id: string): Promise<void> {
    const c = this.must(id);
    c.state = 'running';
    c.startedAt = Date.now();
  }

  /** Test hook: the container's process ends with `code` (oom = the kernel killed it). */
  exit(id: string, code: number, oom = false): void {
    const c = this.must(id);
    if (c.state !== 'running') return;
    Object.assign(c, { state: 'exited', exitCode: code, oomKilled: oom, finishedAt: Date.now() });
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    this.stops.push({ id, grace: graceSeconds });
    this.exit(id, 137);
  }

  async removeContainer(id: string): Promise<void> {
    this.containers.delete(id);
  }

  async listContainers(): Promise<ContainerInfo[]> {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }

  /** Running containers of a pod, by name (test helper). */
  running(podUid: string, name: string): FakeContainer | undefined {
    return [...this.containers.values()].find((c) => c.podUid === podUid && c.name === name && c.state === 'running');
  }

  async execSync(id: string, cmd: string[]): Promise<ExecResultSync> {
    const c = this.must(id);
    if (c.state !== 'running') return { exitCode: 126, stdout: '', stderr: 'container not running' };
    return this.execHandler(c, cmd);
  }

  private session(text: string, code: number): StreamSession {
    const stdout = new PassThrough();
    stdout.end(text);
    const stderr = new PassThrough();
    stderr.end();
    return { stdin: null, stdout, stderr, exited: Promise.resolve(code), resize: () => undefined, kill: () => undefined };
  }

  exec(id: string, cmd: string[]): StreamSession {
    const r = this.execHandler(this.must(id), cmd);
    return this.session(r.stdout, r.exitCode);
  }

  attach(id: string): StreamSession {
    return this.session(this.must(id).logs, 0);
  }

  /** memory per running container = 1 MiB x attempt+1, CPU 5 millicores (deterministic for tests) */
  async stats(): Promise<Map<string, ContainerStats>> {
    return new Map([...this.containers.values()].filter((c) => c.state === 'running').map((c) => [c.id, { cpuNanoCores: 5_000_000, memoryBytes: (c.attempt + 1) * 1024 * 1024 }]));
  }

  logs(id: string): StreamSession {
    return this.session(this.must(id).logs, 0);
  }

  private must(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new SkiffError('ERR_NO_CONTAINER', `no such container ${id}`);
    return c;
  }
}
