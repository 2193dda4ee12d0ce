import { createHash } from 'node:crypto';
import type { CanaryConfig } from './annotations.js';
import type { Backend, Endpoint } from './routes.js';

/**
 * Load-balancing policies as pure functions over an in-memory pool, plus the per-endpoint state
 * (round-robin cursors, passive health) that outlives route-table swaps.
 */

export function endpointId(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** The opaque affinity cookie value naming an endpoint. */
export function affinityToken(e: Endpoint): string {
  return createHash('sha1').update(endpointId(e)).digest('hex').slice(0, 16);
}

export class BalancerState {
  private readonly cursors = new Map<string, number>();
  private readonly downUntil = new Map<string, number>();

  constructor(readonly failTimeoutMs = 10_000) {}

  /** Passive health: a failed endpoint is skipped for failTimeoutMs. */
  markFailed(e: Endpoint, now: number): void {
    this.downUntil.set(endpointId(e), now + this.failTimeoutMs);
  }

  /** true when some endpoint is marked down (else selection skips the health filter) */
  get anyDown(): boolean {
    return this.downUntil.size > 0;
  }

  isDown(e: Endpoint, now: number): boolean {
    const until = this.downUntil.get(endpointId(e));
    if (until === undefined) return false;
    if (until <= now) {
      this.downUntil.delete(endpointId(e));
      return false;
    }
    return true;
  }

  next(backendId: string): number {
    const n = this.cursors.get(backendId) ?? 0;
    this.cursors.set(backendId, (n + 1) % 1_000_000_007);
    return n;
  }

  /** Forget cursors of backends that are gone (called after a swap). */
  prune(liveBackendIds: Iterable<string>): void {
    const live = new Set(liveBackendIds);
    for (const id of this.cursors.keys()) if (!live.has(id)) this.cursors.delete(id);
  }
}

export interface SelectOptions {
  now: number;
  /** endpoints already tried for this request */
  exclude?: Set<string>;
  /** affinity cookie value */
  affinity?: string;
}

/**
 * Picks an endpoint: the affinity endpoint if it is still usable, else round-robin over the ready
 * endpoints that are not down. Terminating endpoints only serve when nothing is ready (drain).
 * If every candidate is marked down they are all tried anyway rather than failing outright.
 */
export function selectEndpoint(backend: Backend, state: BalancerState, opts: SelectOptions): Endpoint | undefined {
  const pool = backend.endpoints.length > 0 ? backend.endpoints : backend.draining;
  const fresh = opts.exclude?.size ? pool.filter((e) => !opts.exclude!.has(endpointId(e))) : pool;
  if (fresh.length === 0) return undefined;
  if (opts.affinity) {
    const sticky = [...backend.endpoints, ...backend.draining].find((e) => affinityToken(e) === opts.affinity);
    if (sticky && !opts.exclude?.has(endpointId(sticky)) && !state.isDown(sticky, opts.now)) return sticky;
  }
  const healthy = state.anyDown ? fresh.filter((e) => !state.isDown(e, opts.now)) : fresh;
  const candidates = healthy.length > 0 ? healthy : fresh;
  return candidates[state.next(backend.id) % candidates.length];
}

/**
 * Canary decision in ingress-nginx order: header, then cookie, then weight.
 * `random` returns [0, 1).
 */
export function useCanary(c: CanaryConfig, header: (name: string) => string | undefined, cookie: (name: string) => string | undefined, random: () => number, pattern?: RegExp): boolean {
  if (c.byHeader) {
    const v = header(c.byHeader);
    if (v !== undefined) {
      if (c.byHeaderValue !== undefined) {
        if (v === c.byHeaderValue) return true;
      } else if (c.byHeaderPattern !== undefined) {
        if (pattern?.test(v)) return true;
      } else if (v === 'always') return true;
      else if (v === 'never') return false;
    }
  }
  if (c.byCookie) {
    const v = cookie(c.byCookie);
    if (v === 'always') return true;
    if (v === 'never') return false;
  }
  if (c.weight <= 0) return false;
  if (c.weight >= c.weightTotal) return true;
  return random() * c.weightTotal < c.weight;
}

/** Parses a Cookie header into a lookup function. */
export function cookieReader(header: string | undefined): (name: string) => string | undefined {
  let parsed: Map<string, string> | undefined;
  return (name) => {
    if (!header) return undefined;
    parsed ??= new Map(
      header.split(';').map((kv) => {
        const i = kv.indexOf('=');
        return i < 0 ? [kv.trim(), ''] : [kv.slice(0, i).trim(), safeDecode(kv.slice(i + 1).trim())];
      }),
    );
    return parsed.get(name);
  };
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
