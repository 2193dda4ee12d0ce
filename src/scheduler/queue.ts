/**
 * The scheduling queue: an active queue ordered by priority then arrival, a backoff area for pods
 * whose last attempt failed (1 s doubling to 10 s by default) and an unschedulable set that
 * cluster events (node added or changed, a pod gone) move back. Keys only: the pod itself is read
 * from the cache when popped.
 */
export class SchedulingQueue {
  private readonly active: { key: string; prio: number; seq: number }[] = [];
  private readonly inActive = new Set<string>();
  private readonly backoff = new Map<string, NodeJS.Timeout>();
  private readonly unschedulable = new Set<string>();
  private readonly attempts = new Map<string, { n: number; at: number }>();
  private readonly waiters: (() => void)[] = [];
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: { initialBackoffMs?: number; maxBackoffMs?: number; now?: () => number } = {}) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A pending pod appeared or changed: it goes to the active queue unless it is backing off. */
  add(key: string, prio = 0): void {
    if (this.closed || this.inActive.has(key) || this.backoff.has(key)) return;
    this.unschedulable.delete(key);
    const item = { key, prio, seq: this.seq++ };
    let lo = 0;
    let hi = this.active.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.active[mid];
      if (m.prio > prio || (m.prio === prio && m.seq < item.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.active.splice(lo, 0, item);
    this.inActive.add(key);
    this.waiters.shift()?.();
  }

  /** The next pod to schedule, or undefined once closed. */
  async pop(): Promise<string | undefined> {
    while (this.active.length === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const item = this.active.shift()!;
    this.inActive.delete(item.key);
    return item.key;
  }

  backoffMs(key: string): number {
    const a = this.attempts.get(key);
    if (!a) return 0;
    const d = Math.min((this.opts.initialBackoffMs ?? 1000) * 2 ** (a.n - 1), this.opts.maxBackoffMs ?? 10_000);
    return Math.max(0, a.at + d - this.now());
  }

  private recordAttempt(key: string): void {
    const a = this.attempts.get(key);
    this.attempts.set(key, { n: (a?.n ?? 0) + 1, at: this.now() });
  }

  /** No node fits: park until a cluster event (or the periodic flush) moves it back. */
  markUnschedulable(key: string): void {
    this.recordAttempt(key);
    if (!this.closed) this.unschedulable.add(key);
  }

  /** A transient failure (binding error): retry after backoff. */
  retryLater(key: string, prio = 0): void {
    this.recordAttempt(key);
    this.toBackoff(key, prio);
  }

  private toBackoff(key: string, prio: number): void {
    if (this.closed || this.backoff.has(key)) return;
    const ms = this.backoffMs(key);
    if (ms <= 0) return this.add(key, prio);
    this.backoff.set(
      key,
      setTimeout(() => {
        this.backoff.delete(key);
        this.add(key, prio);
      }, ms),
    );
  }

  /** Something changed that may let parked pods fit: move them to active (or backoff if still due). */
  moveAllUnschedulable(prio: (key: string) => number = () => 0): void {
    for (const key of [...this.unschedulable]) {
      this.unschedulable.delete(key);
      this.toBackoff(key, prio(key));
    }
  }

  /** The pod was scheduled or deleted: drop every trace of it. */
  forget(key: string): void {
    this.attempts.delete(key);
    this.unschedulable.delete(key);
    const t = this.backoff.get(key);
    if (t) clearTimeout(t);
    this.backoff.delete(key);
    if (this.inActive.delete(key)) this.active.splice(this.active.findIndex((i) => i.key === key), 1);
  }

  stats(): { active: number; backoff: number; unschedulable: number } {
    return { active: this.active.length, backoff: this.backoff.size, unschedulable: this.unschedulable.size };
  }

  close(): void {
    this.closed = true;
    for (const t of this.backoff.values()) clearTimeout(t);
    this.backoff.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}
