/**
 * Coalesces sync requests like kube-proxy's BoundedFrequencyRunner: at most `burst` runs back to
 * back, then one per `minIntervalMs`; requests during a run merge into one follow-up; a periodic
 * run every `maxIntervalMs`; `retryAfter` schedules a run after a failure.
 */
export class SyncRunner {
  private tokens: number;
  private lastRefill = Date.now();
  private running = false;
  private pending = false;
  private timer?: NodeJS.Timeout;
  private periodic?: NodeJS.Timeout;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly opts: { minIntervalMs: number; maxIntervalMs: number; burst?: number; onPeriodic?: () => void },
  ) {
    this.tokens = opts.burst ?? 2;
  }

  start(): void {
    this.stopped = false;
    this.armPeriodic();
  }

  /** Asks for a sync as soon as the rate limit allows. */
  run(): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.schedule(this.delayForToken());
  }

  /** Asks for a sync no earlier than `ms` from now (after a failure). */
  retryAfter(ms: number): void {
    if (this.stopped) return;
    this.schedule(Math.max(ms, this.delayForToken()));
  }

  /** Resolves once nothing is running or scheduled. */
  idle(): Promise<void> {
    if (!this.running && !this.timer && !this.pending) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.periodic) clearTimeout(this.periodic);
    this.timer = undefined;
    this.pending = false;
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private armPeriodic(): void {
    if (this.periodic) clearTimeout(this.periodic);
    this.periodic = setTimeout(() => {
      this.opts.onPeriodic?.();
      this.run();
      this.armPeriodic();
    }, this.opts.maxIntervalMs);
    this.periodic.unref?.();
  }

  private refill(): void {
    const now = Date.now();
    const burst = this.opts.burst ?? 2;
    if (this.opts.minIntervalMs <= 0) {
      this.tokens = burst;
    } else {
      this.tokens = Math.min(burst, this.tokens + (now - this.lastRefill) / this.opts.minIntervalMs);
    }
    this.lastRefill = now;
  }

  private delayForToken(): number {
    this.refill();
    if (this.tokens >= 1) return 0;
    return Math.ceil((1 - this.tokens) * this.opts.minIntervalMs);
  }

  private schedule(delay: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.execute();
    }, delay);
  }

  private async execute(): Promise<void> {
    if (this.stopped) return;
    this.refill();
    if (this.tokens < 1) {
      this.schedule(this.delayForToken());
      return;
    }
    this.tokens -= 1;
    this.running = true;
    this.pending = false;
    try {
      await this.fn();
    } finally {
      this.running = false;
    }
    if (this.pending && !this.stopped) {
      this.pending = false;
      this.schedule(this.delayForToken());
    }
    if (!this.timer && !this.running && !this.pending) for (const w of this.idleWaiters.splice(0)) w();
  }
}
