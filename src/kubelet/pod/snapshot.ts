import type { ContainerInfo, ContainerRuntime, SandboxInfo } from '../runtime/types.js';

export interface RuntimeSnapshot {
  at: number;
  sandboxes: SandboxInfo[];
  containers: ContainerInfo[];
}

/**
 * The runtime's state, listed at most once per round however many pod workers ask (a PLEG-like
 * relist). `fresh()` waits for a list that started after the call, so a worker sees its own writes.
 */
export class RuntimeCache {
  private current: RuntimeSnapshot = { at: 0, sandboxes: [], containers: [] };
  private inflight?: Promise<RuntimeSnapshot>;
  private queued?: Promise<RuntimeSnapshot>;

  constructor(private readonly runtime: ContainerRuntime) {}

  get latest(): RuntimeSnapshot {
    return this.current;
  }

  fresh(): Promise<RuntimeSnapshot> {
    if (!this.inflight) return (this.inflight = this.list());
    // a list is running: it may have started before our caller's writes, so queue exactly one more
    if (!this.queued) {
      this.queued = this.inflight.catch(() => undefined).then(() => {
        this.queued = undefined;
        return (this.inflight = this.list());
      });
    }
    return this.queued;
  }

  private async list(): Promise<RuntimeSnapshot> {
    const at = Date.now();
    try {
      const { sandboxes, containers } = this.runtime.list
        ? await this.runtime.list()
        : await Promise.all([this.runtime.listSandboxes(), this.runtime.listContainers()]).then(([s, c]) => ({ sandboxes: s, containers: c }));
      this.current = { at, sandboxes, containers };
      return this.current;
    } finally {
      this.inflight = undefined;
    }
  }
}

/** Instances of one container of a pod, newest attempt first. */
export function instancesOf(s: RuntimeSnapshot, podUid: string, name: string, role: 'init' | 'app'): ContainerInfo[] {
  return s.containers.filter((c) => c.podUid === podUid && c.name === name && c.role === role).sort((a, b) => b.attempt - a.attempt || b.createdAt - a.createdAt);
}

/** The newest running sandbox of a pod (or the newest at all). */
export function sandboxOf(s: RuntimeSnapshot, podUid: string): SandboxInfo | undefined {
  const all = s.sandboxes.filter((x) => x.podUid === podUid).sort((a, b) => Number(b.running) - Number(a.running) || b.createdAt - a.createdAt);
  return all[0];
}
