import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Logger } from '../util/log.js';
import { counter } from '../util/metrics.js';
import { DROP_LOG_PREFIX } from './names.js';

/**
 * Drop log: every pod chain ends in `LOG --log-prefix "SKIFF-NP-DROP-<I|E>-<tag> "` immediately
 * followed by an unconditional DROP, so a logged packet is always a dropped one (no false lines for
 * allowed traffic). The kernel writes those records to its log; this reader follows it
 * (`dmesg --follow-new`), keeps only our tag, folds retransmissions of one attempt (same 5-tuple
 * within `dedupeMs`) into one line, rate-limits, and writes one JSON line per denied attempt.
 * In a non-root network namespace the kernel logs only with net.netfilter.nf_log_all_netns=1.
 */

export interface DropRecord {
  time: string;
  direction: 'ingress' | 'egress';
  src: string;
  dst: string;
  protocol: string;
  srcPort?: number;
  dstPort?: number;
}

export interface DropLine extends DropRecord {
  verdict: 'DROP';
  srcPod?: string;
  dstPod?: string;
  /** the policies isolating the pod whose rules denied it */
  policies: string[];
}

/** Parses one kernel log line; null when it is not one of this instance's drop records. */
export function parseDropLine(line: string, tag: string, now = new Date()): DropRecord | null {
  const m = line.match(new RegExp(`${DROP_LOG_PREFIX}-([IE])-${tag} (.*)$`));
  if (!m) return null;
  const fields = new Map<string, string>();
  for (const part of m[2].split(/\s+/)) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i), part.slice(i + 1));
  }
  const src = fields.get('SRC');
  const dst = fields.get('DST');
  if (!src || !dst) return null;
  const num = (k: string) => (fields.has(k) ? Number(fields.get(k)) : undefined);
  return { time: now.toISOString(), direction: m[1] === 'I' ? 'ingress' : 'egress', src, dst, protocol: fields.get('PROTO') ?? 'unknown', srcPort: num('SPT'), dstPort: num('DPT') };
}

export interface DropLookup {
  podOf(ip: string): string | undefined;
  /** policies isolating pod in direction */
  isolating(pod: string, direction: 'ingress' | 'egress'): string[];
}

export interface DropLoggerOptions {
  tag: string;
  path?: string;
  ratePerSec?: number;
  dedupeMs?: number;
  log: Logger;
  lookup: DropLookup;
}

const drops = counter({ name: 'skiff_netpol_drops_total', help: 'Denied connection attempts seen in the drop log', labelNames: ['namespace', 'direction'] as const });

/** Folds records into drop lines: dedupe per 5-tuple, token-bucket rate limit. Pure apart from the clock. */
export class DropFolder {
  private readonly seen = new Map<string, number>();
  private tokens: number;
  private last = Date.now();
  constructor(private readonly rate: number, private readonly dedupeMs: number, private readonly lookup: DropLookup) {
    this.tokens = rate;
  }

  fold(rec: DropRecord, nowMs = Date.now()): DropLine | null {
    const key = `${rec.direction}|${rec.src}|${rec.srcPort}|${rec.dst}|${rec.dstPort}|${rec.protocol}`;
    const prev = this.seen.get(key);
    this.seen.set(key, nowMs);
    if (this.seen.size > 10_000) for (const [k, t] of this.seen) if (nowMs - t > this.dedupeMs) this.seen.delete(k);
    if (prev !== undefined && nowMs - prev < this.dedupeMs) return null;
    this.tokens = Math.min(this.rate, this.tokens + ((nowMs - this.last) / 1000) * this.rate);
    this.last = nowMs;
    if (this.tokens < 1) return null;
    this.tokens -= 1;
    const srcPod = this.lookup.podOf(rec.src);
    const dstPod = this.lookup.podOf(rec.dst);
    const isolated = rec.direction === 'ingress' ? dstPod : srcPod;
    return { ...rec, verdict: 'DROP', srcPod, dstPod, policies: isolated ? this.lookup.isolating(isolated, rec.direction) : [] };
  }
}

export class DropLogger {
  private child?: ChildProcess;
  private readonly folder: DropFolder;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DropLoggerOptions) {
    this.folder = new DropFolder(opts.ratePerSec ?? 20, opts.dedupeMs ?? 10_000, opts.lookup);
  }

  start(): void {
    const child = spawn('dmesg', ['--follow-new', '--kernel', '--notime'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.on('error', (err) => this.opts.log.warn({ err: err.message }, 'drop log reader failed'));
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
  }

  onLine(line: string): void {
    const rec = parseDropLine(line, this.opts.tag);
    if (!rec) return;
    const out = this.folder.fold(rec);
    if (!out) return;
    const pod = out.direction === 'ingress' ? out.dstPod : out.srcPod;
    drops.inc({ namespace: pod?.split('/')[0] ?? 'unknown', direction: out.direction });
    if (this.opts.path) {
      const path = this.opts.path;
      this.writes = this.writes.then(() => appendFile(path, `${JSON.stringify(out)}\n`)).catch((err: Error) => this.opts.log.warn({ err: err.message }, 'drop log write failed'));
    } else this.opts.log.info({ drop: out }, 'connection denied by network policy');
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    this.child = undefined;
    await this.writes;
  }
}
