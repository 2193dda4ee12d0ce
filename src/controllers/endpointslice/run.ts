import type { Logger } from '../../util/log.js';
import type { Counter } from 'prom-client';
import type { Informer } from '../../client/types.js';
import { WorkQueue, runWorkers } from '../../client/workqueue.js';

/**
 * The common tail of a controller's wiring (shared by the networking/node/storage controllers):
 * once the given informers have synced, run `workers` workers over the queue; errors are counted,
 * logged once and re-queued with backoff by the queue. Returns stop().
 */
export function runWhenSynced(opts: {
  informers: Informer[];
  queue: WorkQueue;
  workers: number;
  sync: (key: string) => Promise<void>;
  log: Logger;
  syncs: Counter<'result'>;
  onStop?: () => void;
}): { stop(): void } {
  let stopWorkers: (() => void) | undefined;
  let stopped = false;
  void Promise.all(opts.informers.map((i) => i.synced())).then(() => {
    if (stopped) return;
    stopWorkers = runWorkers(
      opts.queue,
      opts.workers,
      async (key) => {
        await opts.sync(key);
        opts.syncs.inc({ result: 'ok' });
      },
      (key, err) => {
        opts.syncs.inc({ result: 'error' });
        opts.log.warn({ key, err: String(err) }, 'sync failed');
      },
    );
  });
  return {
    stop: () => {
      stopped = true;
      opts.queue.shutdown();
      stopWorkers?.();
      opts.onStop?.();
    },
  };
}

export { WorkQueue };
