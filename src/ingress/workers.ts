import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { IngressServer, ServerOptions } from './server.js';
import type { RouteTable } from './routes.js';
import type { IngressMetrics } from './metrics.js';
import { componentLogger } from '../util/log.js';

const log = componentLogger('ingress');

/** Messages between the controller process and its proxy worker processes. */
export type ToWorker =
  | { type: 'init'; options: ServerOptions }
  | { type: 'listen'; which: 'http' | 'https' }
  | { type: 'table'; table: RouteTable }
  | { type: 'stop' };
export type FromWorker = { type: 'ready' } | { type: 'swapped'; version: number } | { type: 'metrics'; metrics: unknown };

function workerEntry(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./worker${ext}`, import.meta.url));
}

/**
 * Extra proxy processes sharing the listening sockets of the controller process (which serves
 * too), so the ingress uses every core. Each gets every route table over IPC and is restarted if
 * it dies.
 */
export class WorkerPool {
  private readonly children = new Map<number, ChildProcess>();
  private table?: RouteTable;
  private stopping = false;

  constructor(private readonly size: number, private readonly server: IngressServer, private readonly options: ServerOptions, private readonly metrics: IngressMetrics) {}

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, (_v, i) => this.spawn(i)));
  }

  private spawn(slot: number): Promise<void> {
    const child = fork(workerEntry(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, SKIFF_INGRESS_WORKER: String(slot) } });
    this.children.set(slot, child);
    const id = `worker-${slot}`;
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'metrics') this.metrics.setRemote(id, m.metrics as never);
      });
      child.once('exit', (code, signal) => {
        reject(new Error(`ingress worker ${slot} exited (${code ?? signal}) before it was ready`));
        this.metrics.setRemote(id, undefined);
        if (this.stopping) return;
        log.warn({ slot, code, signal }, 'ingress worker died; restarting');
        setTimeout(() => void this.spawn(slot).catch((err) => log.error({ slot, err: String(err) }, 'ingress worker restart failed')), 500).unref();
      });
    });
    child.send({ type: 'init', options: this.options } satisfies ToWorker);
    child.send({ type: 'listen', which: 'http' } satisfies ToWorker, this.server.http);
    child.send({ type: 'listen', which: 'https' } satisfies ToWorker, this.server.https as never);
    if (this.table) child.send({ type: 'table', table: this.table } satisfies ToWorker);
    return ready;
  }

  broadcast(table: RouteTable): void {
    this.table = table;
    for (const c of this.children.values()) if (c.connected) c.send({ type: 'table', table } satisfies ToWorker);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const kill = setTimeout(() => c.kill('SIGKILL'), 5000);
            c.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (c.connected) c.send({ type: 'stop' } satisfies ToWorker);
            else c.kill('SIGTERM');
          }),
      ),
    );
    this.children.clear();
  }
}
