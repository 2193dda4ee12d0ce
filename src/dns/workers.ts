/**
 * The primary side of DNS workers: forks `n` processes running worker.ts, hands each the bound
 * UDP sockets (the kernel spreads datagrams over every process reading a socket), pushes each
 * new snapshot, folds their stats into this process's registry, and respawns a worker that dies.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type dgram from 'node:dgram';
import { componentLogger } from '../util/log.js';
import { recordBatch } from './metrics.js';
import type { WireSnapshot } from './model.js';
import type { FromWorker, ToWorker } from './worker.js';

const log = componentLogger('dns');

export interface WorkerPoolOptions {
  count: number;
  sockets: dgram.Socket[];
  init: () => Extract<ToWorker, { type: 'init' }>;
}

function workerPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`./worker.${ext}`, import.meta.url));
}

export class WorkerPool {
  private readonly children = new Set<ChildProcess>();
  private stopping = false;

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Starts the workers; resolves when each serves its sockets. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.opts.count }, () => this.spawn()));
  }

  private spawn(): Promise<void> {
    const child = fork(workerPath(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.children.add(child);
    const ready = new Promise<void>((resolve) => {
      let waiting = this.opts.sockets.length;
      child.on('message', (m: FromWorker) => {
        if (m.type === 'stats') recordBatch(m.batch);
        else if (m.type === 'ready' && --waiting === 0) resolve();
      });
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        resolve();
        if (this.stopping) return;
        log.warn({ pid: child.pid, code, signal }, 'dns worker exited; respawning');
        setTimeout(() => void (this.stopping ? undefined : this.spawn()), 1000).unref();
      });
    });
    child.send(this.opts.init());
    for (const s of this.opts.sockets) child.send({ type: 'socket' } satisfies ToWorker, s);
    return ready;
  }

  broadcast(snap: WireSnapshot): void {
    for (const c of this.children) if (c.connected) c.send({ type: 'zone', snap } satisfies ToWorker);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
            c.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            if (c.connected) c.send({ type: 'stop' } satisfies ToWorker);
            else c.kill('SIGTERM');
          }),
      ),
    );
  }
}
