/** Exponential restart / pull backoff per key (pod uid + container): initial, doubling, capped. */
export class Backoff {
  private readonly entries = new Map<string, { delayMs: number; until: number }>();
  constructor(readonly initialMs = 10_000, readonly maxMs = 300_000, private readonly now: () => number = Date.now) {}

  /** Records a failure: the next attempt may start after the (doubled) delay. Returns that delay. */
  next(key: string): number {
    const cur = this.entries.get(key);
    const delayMs = cur ? Math.min(this.maxMs, cur.delayMs * 2) : this.initialMs;
    this.entries.set(key, { delayMs, until: this.now() + delayMs });
    return delayMs;
  }

  /** Milliseconds still to wait (0 = may start now). */
  remaining(key: string): number {
    const e = this.entries.get(key);
    return e ? Math.max(0, e.until - this.now()) : 0;
  }

  /** The current delay of `key` (0 when not backing off). */
  delay(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  forgetPrefix(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}
