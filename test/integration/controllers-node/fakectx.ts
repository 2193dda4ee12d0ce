import { FakeApiClient } from '../../../src/client/fake.js';
import { InformerFactory } from '../../../src/client/factory.js';
import { FakeEventRecorder } from '../../../src/client/events.js';
import type { ApiClient } from '../../../src/client/types.js';
import { defaultControllerOptions, type Clock, type ControllerContext, type ControllerOptions } from '../../../src/controllers/context.js';

/** A movable clock for tests. */
export class FakeClock implements Clock {
  constructor(public t = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A ControllerContext over an API client (FakeApiClient by default), with a shared fake recorder. */
export function makeContext(opts: { client?: ApiClient; options?: Partial<ControllerOptions>; clock?: Clock } = {}) {
  const client = opts.client ?? new FakeApiClient();
  const informers = new InformerFactory(client);
  const recorder = new FakeEventRecorder();
  const ctx: ControllerContext = {
    client,
    informers,
    recorder: () => recorder,
    clock: opts.clock ?? new FakeClock(),
    options: { ...defaultControllerOptions, workers: 2, ...opts.options },
  };
  return { ctx, client, informers, recorder };
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with the last value). */
export async function eventually<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}; last=${JSON.stringify(last)} err=${String(lastErr ?? '')}`);
}
