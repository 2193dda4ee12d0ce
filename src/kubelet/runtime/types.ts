import type { Readable, Writable } from 'node:stream';

/** Labels every runtime object carries; only objects with `io.skiff.managed=true` are ever touched. */
export const LABEL_MANAGED = 'io.skiff.managed';
export const LABEL_POD_UID = 'io.skiff.pod-uid';
export const LABEL_POD_NAME = 'io.skiff.pod-name';
export const LABEL_POD_NAMESPACE = 'io.skiff.pod-namespace';
export const LABEL_CONTAINER = 'io.skiff.container-name';
export const LABEL_ATTEMPT = 'io.skiff.attempt';
export const LABEL_ROLE = 'io.skiff.role';
/** The node (kubelet) that owns the object: several kubelets may share one dockerd in labs and tests. */
export const LABEL_NODE = 'io.skiff.node';

/** Where a pod's network namespace can be entered: a pid (`/proc/PID/ns/net`) or a named netns. */
export type NetnsRef = { pid: number } | { name: string };

export interface SandboxConfig {
  podUid: string;
  podName: string;
  namespace: string;
  hostname: string;
  /**
   * The pod network makes the sandbox's named netns itself, in its first batch (one process fewer
   * a pod): a runtime that honours this returns the sandbox with `netnsPending`. Others ignore it.
   */
  netnsByNetwork?: boolean;
}

export interface SandboxInfo {
  id: string;
  podUid: string;
  podName: string;
  namespace: string;
  running: boolean;
  /** Set while the sandbox runs. */
  netns?: NetnsRef;
  /** The named netns is not made yet: the pod network makes it when it attaches (`netnsByNetwork`). */
  netnsPending?: boolean;
  createdAt: number;
}

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerConfig {
  name: string;
  role: 'init' | 'app';
  image: string;
  /** Resolved argv (command + args); empty = image default. */
  command: string[];
  args: string[];
  /** Set when spec.command is given (overrides the image entrypoint). */
  overrideEntrypoint: boolean;
  env: [string, string][];
  mounts: Mount[];
  workingDir?: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  attempt: number;
  /** millicores (0 = none) */
  cpuLimitMilli: number;
  cpuRequestMilli: number;
  /** bytes (0 = none) */
  memoryLimitBytes: number;
}

export type ContainerState = 'created' | 'running' | 'exited';

export interface ContainerInfo {
  id: string;
  podUid: string;
  name: string;
  role: 'init' | 'app';
  attempt: number;
  image: string;
  imageId: string;
  state: ContainerState;
  exitCode: number;
  oomKilled: boolean;
  /** epoch ms; 0 when unknown */
  createdAt: number;
  startedAt: number;
  finishedAt: number;
}

export interface PullAuth {
  /** a docker config.json body ({"auths": {...}}) from kubernetes.io/dockerconfigjson secrets */
  dockerConfigJson: string;
}

export interface ExecResultSync {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface LogOptions {
  follow: boolean;
  tail?: number;
  sinceSeconds?: number;
  timestamps: boolean;
}

/** A streaming process attached to a container (exec, attach, logs). */
export interface StreamSession {
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable | null;
  /** Resolves with the exit code (-1 when killed/unknown). */
  exited: Promise<number>;
  resize(cols: number, rows: number): void;
  kill(): void;
}

/**
 * The kubelet's view of a container engine: pod sandboxes (the network namespace holder) and
 * containers inside them. Implementations: DockerCliRuntime (docker CLI), NetnsRuntime (host
 * processes in a named netns) and FakeRuntime (unit tests).
 */
export interface ContainerRuntime {
  readonly name: string;
  /** Makes `image` available. `policy` is the container's imagePullPolicy. Throws ERR_IMAGE_PULL. */
  ensureImage(image: string, policy: 'Always' | 'IfNotPresent' | 'Never', auth?: PullAuth[]): Promise<void>;
  runSandbox(cfg: SandboxConfig): Promise<SandboxInfo>;
  listSandboxes(): Promise<SandboxInfo[]>;
  removeSandbox(id: string): Promise<void>;
  createContainer(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  /**
   * Create + start in one step (optional: the pod worker uses it when there). Throws when the
   * container could not be created; a start failure leaves the created container and comes back
   * as `startError`.
   */
  runContainer?(sandbox: SandboxInfo, cfg: ContainerConfig): Promise<{ id: string; startError?: string }>;
  /** SIGTERM, wait up to graceSeconds, SIGKILL. */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  listContainers(): Promise<ContainerInfo[]>;
  /** Both lists from one look at the engine (optional; the RuntimeCache's relist uses it when there). */
  list?(): Promise<{ sandboxes: SandboxInfo[]; containers: ContainerInfo[] }>;
  execSync(id: string, cmd: string[], timeoutMs: number): Promise<ExecResultSync>;
  exec(id: string, cmd: string[], opts: { stdin: boolean; tty: boolean }): StreamSession;
  attach(id: string, opts: { stdin: boolean; tty: boolean }): StreamSession;
  logs(id: string, opts: LogOptions): StreamSession;
  /** Current CPU (nanocores) and memory (working set bytes) of running containers, by id. */
  stats?(): Promise<Map<string, ContainerStats>>;
}

export interface ContainerStats {
  cpuNanoCores: number;
  memoryBytes: number;
}
