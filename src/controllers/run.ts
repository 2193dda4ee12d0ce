/**
 * The wiring every controller shares, in the sample-controller shape: informer handlers only
 * enqueue keys into one rate-limited work queue; `run` starts the workers once every cache the
 * controller reads has synced (nothing acts on partial state); each `sync(key)` is counted and
 * timed per controller; a failed sync is logged once and re-queued with per-key backoff.
 */
import type { KubeObject } from '../api/object.js';
import { objectKey } from '../api/object.js';
import type { EventHandlers, Informer } from '../client/types.js';
import { WorkQueue, runWorkers } from '../client/workqueue.js';
import type { Logger } from '../util/log.js';
import { counter, histogram } from '../util/metrics.js';
import { errCode } from './replicaset/common.js';

const syncs = counter({ name: 'skiff_controller_syncs_total', help: 'Controller syncs by controller and result', labelNames: ['controller', 'result'] as const });
const syncSeconds = histogram({
  name: 'skiff_controller_sync_duration_seconds',
  help: 'Duration of one controller sync',
  labelNames: ['controller'] as const,
  buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
});

export interface ControllerOptions {
  /** metrics label (`controller="replicaset"`) */
  name: string;
  log: Logger;
  /** per-key retry backoff: first delay and cap (default 20 ms doubling to 30 s) */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface RunOptions {
  /** caches `sync` reads: workers start only once all of them have synced */
  informers: readonly Informer[];
  workers: number;
  sync: (key: string) => Promise<void>;
  /** extra teardown (timers) run by stop() */
  onStop?: () => void;
}

/** The queue key(s) an object's change concerns: its own key, its owner's, the Services selecting a pod ... */
export type KeysOf<T> = (obj: T) => string | undefined | readonly string[];

/**
 * Handlers that enqueue `keys(obj)` on add and delete, and on update the keys of both the old and
 * the new object (a pod whose labels changed concerns the Services it left as well).
 */
export function enqueueHandlers<T extends KubeObject>(enqueue: (key: string) => void, keys: KeysOf<T> = objectKey): EventHandlers<T> {
  const add = (o: T): void => {
    const k = keys(o);
    if (typeof k === 'string') enqueue(k);
    else if (k) for (const x of k) enqueue(x);
  };
  return {
    add,
    update: (old, o) => {
      add(old);
      add(o);
    },
    delete: add,
  };
}

/** One controller's queue and workers. Create it, register handlers that call `enqueue`, then `run`. */
export class Controller {
  readonly queue: WorkQueue;
  /** Adds a key (bound: pass it around as a callback). */
  readonly enqueue: (key: string) => void;

  constructor(private readonly opts: ControllerOptions) {
    this.queue = new WorkQueue({ baseDelayMs: opts.baseDelayMs ?? 20, maxDelayMs: opts.maxDelayMs ?? 30_000 });
    this.enqueue = (key) => this.queue.add(key);
  }

  /** Handlers that enqueue the object's key (or `keys(obj)`) on every event. */
  handlers<T extends KubeObject>(keys?: KeysOf<T>): EventHandlers<T> {
    return enqueueHandlers<T>(this.enqueue, keys);
  }

  /** Starts `workers` workers once `informers` have synced. stop() shuts the queue down. */
  run(r: RunOptions): { stop(): void } {
    const { name, log } = this.opts;
    let stopped = false;
    void Promise.all(r.informers.map((i) => i.synced())).then(() => {
      if (stopped) return;
      runWorkers(
        this.queue,
        r.workers,
        async (key) => {
          const end = syncSeconds.startTimer({ controller: name });
          try {
            await r.sync(key);
            syncs.inc({ controller: name, result: 'ok' });
          } finally {
            end();
          }
        },
        (key, err) => {
          syncs.inc({ controller: name, result: 'error' });
          // the first failure of a key is worth a warning; conflicts and repeats are routine
          const code = errCode(err);
          const level = this.queue.numRequeues(key) === 0 && code !== 409 ? 'warn' : 'debug';
          log[level]({ key, err: String(err), code }, 'sync failed, requeued');
        },
      );
    });
    return {
      stop: () => {
        stopped = true;
        this.queue.shutdown();
        r.onStop?.();
      },
    };
  }
}
