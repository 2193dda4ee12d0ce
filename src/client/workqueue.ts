/**
 * A rate-limited work queue in the client-go style: a key is never processed by two workers at
 * once, repeats while queued merge, a key added while being processed is re-queued after it, and
 * failures come back with per-key exponential backoff.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirtyWhileProcessing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(private readonly opts: { baseDelayMs?: number; maxDelayMs?: number } = {}) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirtyWhileProcessing.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  /** Re-queue after a failure with per-key backoff. */
  addRateLimited(key: string): void {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const base = this.opts.baseDelayMs ?? 5;
    const delay = Math.min(base * 2 ** (n - 1), this.opts.maxDelayMs ?? 60_000);
    this.addAfter(key, delay);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Next key, or undefined once shut down. Call done(key) when finished with it. */
  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const key = this.queue.shift()!;
    this.queued.delete(key);
    this.processing.add(key);
    return key;
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirtyWhileProcessing.delete(key)) this.add(key);
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * Runs `workers` loops that take keys and call `sync(key)`; a thrown error re-queues with backoff.
 * Returns a stop function.
 */
export function runWorkers(queue: WorkQueue, workers: number, sync: (key: string) => Promise<void>, onError?: (key: string, err: unknown) => void): () => void {
  for (let i = 0; i < workers; i++) {
    void (async () => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        try {
          await sync(key);
          queue.forget(key);
        } catch (err) {
          onError?.(key, err);
          queue.addRateLimited(key);
        } finally {
          queue.done(key);
        }
      }
    })();
  }
  return () => queue.shutdown();
}
