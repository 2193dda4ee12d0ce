import type { ApiClient } from '../client/types.js';
import { InformerFactory } from '../client/factory.js';
import { ApiEventRecorder } from '../client/events.js';
import { Scheduler, type Binder } from './scheduler.js';

export { Scheduler, ApiBinder, type Binder } from './scheduler.js';

/**
 * Starts the scheduler: pods whose spec.schedulerName is `schedulerName` (default
 * default-scheduler) are bound to nodes through the pods/binding subresource. Pass the shared
 * `informers` of `skiff up`, or let it make (and start) its own.
 */
export async function startScheduler(opts: {
  client: ApiClient;
  informers?: InformerFactory;
  schedulerName?: string;
  binder?: Binder;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  flushIntervalMs?: number;
}): Promise<{ stop(): Promise<void> }> {
  const own = !opts.informers;
  const informers = opts.informers ?? new InformerFactory(opts.client);
  const recorder = new ApiEventRecorder(opts.client, opts.schedulerName ?? 'default-scheduler');
  const scheduler = new Scheduler({ ...opts, informers, recorder });
  informers.start();
  await scheduler.start();
  return {
    stop: async () => {
      await scheduler.stop();
      if (own) informers.stop();
    },
  };
}
