// `skiff up --split`: a small supervisor that runs each component as its own child process
// (`skiff component NAME`), restarts a child that dies (with backoff), prefixes each child's log
// lines with its name and keeps DIR/components.json (the PIDs, states and restart counts) current.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ClusterOptions } from './cluster.js';
import { COMPONENTS, type ComponentName } from './component.js';

export type ComponentState = 'starting' | 'running' | 'backoff' | 'stopped';

export interface ComponentStatus {
  pid: number | null;
  state: ComponentState;
  /** restarts after the first start */
  restarts: number;
  startedAt: string | null;
  /** CPU time (user + system, ms) the process had used when it reported ready: its start cost */
  readyCpuMs: number | null;
  lastExit: { code: number | null; signal: string | null; at: string } | null;
}

/** DIR/components.json */
export interface StatusFile {
  mode: 'split' | 'single';
  supervisor: number;
  components: Partial<Record<ComponentName, ComponentStatus>>;
}

export const STATUS_FILE = 'components.json';

/**
 * Start phases: the apiserver first (everything else talks to it), then the control-plane
 * components and netpol and proxy, the kubelet last (netpol before the kubelet, as in one process,
 * so new pods stay dark until their policy is programmed).
 */
export function componentPlan(o: Pick<ClusterOptions, 'agent' | 'dns' | 'ingress'>): ComponentName[][] {
  const on = (n: ComponentName): boolean => (n === 'dns' ? o.dns : n === 'ingress' ? o.ingress : ['netpol', 'proxy', 'kubelet'].includes(n) ? o.agent : true);
  const enabled = COMPONENTS.filter(on);
  return [enabled.filter((n) => n === 'apiserver'), enabled.filter((n) => n !== 'apiserver' && n !== 'kubelet'), enabled.filter((n) => n === 'kubelet')].filter((p) => p.length > 0);
}

/** Delay before restart number FAILURES+1 of a child that keeps dying: 100 ms doubling, at most 10 s. */
export function restartDelayMs(failures: number): number {
  return Math.min(10_000, 100 * 2 ** Math.min(failures, 10));
}

/** A child that stayed ready this long is healthy again: its next death restarts it after the minimum delay. */
export const HEALTHY_AFTER_MS = 10_000;

/** The `skiff component` flags that reproduce these options (every value explicit, so children agree). */
export function componentArgs(o: ClusterOptions, identity: string): string[] {
  const a = [
    '--data-dir', o.dataDir,
    '--bind-address', o.bindAddress,
    '--port', String(o.port),
    '--node-name', o.nodeName,
    '--node-ip', o.nodeIP,
    '--service-cidr', o.serviceCIDR,
    '--pod-cidr', o.podCIDR,
    '--cluster-domain', o.clusterDomain,
    '--runtime', o.runtime,
    '--http-port', String(o.httpPort),
    '--https-port', String(o.httpsPort),
    '--dns-port', String(o.dnsPort),
    '--lease-identity', identity,
  ];
  if (o.store) a.push('--store', o.store);
  if (o.lbPool?.length) a.push('--lb-pool', o.lbPool.join(','));
  if (o.netns) a.push('--netns', o.netns);
  if (o.nodeMonitorGracePeriodSeconds !== undefined) a.push('--node-monitor-grace-period', String(o.nodeMonitorGracePeriodSeconds));
  if (o.podEvictionTimeoutSeconds !== undefined) a.push('--pod-eviction-timeout', String(o.podEvictionTimeoutSeconds));
  return a;
}

/** User + system CPU of PID in ms, from /proc/PID/stat (null where there is no /proc). */
export function processCpuMs(pid: number): number | null {
  try {
    // the fields after the command name (which may hold spaces) start at "state"; utime and stime are 14 and 15
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return null;
  }
}

export function writeStatusFile(dataDir: string, s: StatusFile): void {
  const path = join(dataDir, STATUS_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(s, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
}

export function readStatusFile(dataDir: string): StatusFile | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, STATUS_FILE), 'utf8')) as StatusFile;
  } catch {
    return undefined;
  }
}

/** `skiff status`: one line per component; a PID that is gone shows as "dead". */
export function renderStatus(s: StatusFile, alive: (pid: number) => boolean): string {
  const rows = [['COMPONENT', 'PID', 'STATE', 'RESTARTS', 'LAST EXIT']];
  for (const [name, c] of Object.entries(s.components)) {
    const state = c.pid !== null && !alive(c.pid) ? 'dead' : c.state;
    const exit = c.lastExit ? `${c.lastExit.signal ?? `code ${c.lastExit.code}`} at ${c.lastExit.at}` : '-';
    rows.push([name, c.pid === null ? '-' : String(c.pid), state, String(c.restarts), exit]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const head = `${s.mode === 'split' ? 'split' : 'single process'}, supervisor pid ${s.supervisor}${alive(s.supervisor) ? '' : ' (not running)'}\n`;
  return head + rows.map((r) => r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

interface Child {
  name: ComponentName;
  proc?: ChildProcess;
  status: ComponentStatus;
  readyAt: number;
  failures: number;
  timer?: NodeJS.Timeout;
  /** the last lines the child wrote to stderr (startup failures quote them) */
  tail: string[];
}

export interface SupervisorOptions {
  o: ClusterOptions;
  /** argv before `component NAME` (node, its flags, the skiff entry script) */
  command: string[];
  onPhase?: (names: ComponentName[], done: boolean) => void;
  /** a child that does not report ready in this long is killed (and restarted), default 120 s */
  readyTimeoutMs?: number;
  /** where the children's prefixed stdout and stderr lines (and the supervisor's own) go, default this process's */
  out?: { write(s: string): unknown };
  err?: { write(s: string): unknown };
}

/** Runs the components of `skiff up` as child processes; see the top of this file. */
export class Supervisor {
  private readonly children = new Map<ComponentName, Child>();
  private stopping = false;
  private readonly identity: string;
  private readonly out: { write(s: string): unknown };
  private readonly err: { write(s: string): unknown };

  constructor(private readonly opts: SupervisorOptions) {
    this.out = opts.out ?? process.stdout;
    this.err = opts.err ?? process.stderr;
    // one identity for every restart of this supervisor's children: a restarted controller manager
    // or scheduler renews its own Lease at once instead of waiting for it to expire
    this.identity = `${opts.o.nodeName}-${process.pid}`;
  }

  /** Starts every component phase by phase; rejects if one dies before it is first ready. */
  async start(): Promise<void> {
    mkdirSync(this.opts.o.dataDir, { recursive: true, mode: 0o700 });
    for (const phase of componentPlan(this.opts.o)) {
      this.opts.onPhase?.(phase, false);
      await Promise.all(phase.map((name) => this.startFirst(name)));
      this.opts.onPhase?.(phase, true);
    }
  }

  private startFirst(name: ComponentName): Promise<void> {
    const c: Child = { name, tail: [], readyAt: 0, failures: 0, status: { pid: null, state: 'starting', restarts: 0, startedAt: null, readyCpuMs: null, lastExit: null } };
    this.children.set(name, c);
    return new Promise((resolve, reject) => {
      const proc = this.spawnChild(c);
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before it was ready:\n${c.tail.join('\n')}`));
      proc.once('exit', onExit);
      proc.on('message', (m: { type?: string }) => {
        if (m?.type !== 'ready') return;
        proc.off('exit', onExit);
        resolve();
      });
    });
  }

  private spawnChild(c: Child): ChildProcess {
    const proc = spawn(this.opts.command[0], [...this.opts.command.slice(1), 'component', c.name, ...componentArgs(this.opts.o, this.identity)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // its own process group: a Ctrl-C reaches only the supervisor, which stops the children in order
      detached: true,
    });
    c.proc = proc;
    c.tail = [];
    c.readyAt = 0;
    c.status = { ...c.status, pid: proc.pid ?? null, state: 'starting', startedAt: new Date().toISOString(), readyCpuMs: null };
    this.writeStatus();
    const prefix = `${c.name.padEnd(18)} | `;
    createInterface({ input: proc.stdout! }).on('line', (l) => this.out.write(prefix + l + '\n'));
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      c.tail = [...c.tail.slice(-19), l];
      this.err.write(prefix + l + '\n');
    });
    const readyTimer = setTimeout(() => {
      this.err.write(`${'supervisor'.padEnd(18)} | ${c.name} not ready after ${this.opts.readyTimeoutMs ?? 120_000} ms: killing it\n`);
      proc.kill('SIGKILL');
    }, this.opts.readyTimeoutMs ?? 120_000);
    proc.on('message', (m: { type?: string }) => {
      if (m?.type !== 'ready') return;
      clearTimeout(readyTimer);
      c.readyAt = Date.now();
      c.status = { ...c.status, state: 'running', readyCpuMs: proc.pid ? processCpuMs(proc.pid) : null };
      this.writeStatus();
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(readyTimer);
      c.proc = undefined;
      c.status = { ...c.status, pid: null, lastExit: { code, signal, at: new Date().toISOString() } };
      this.onChildExit(c);
    });
    return proc;
  }

  private onChildExit(c: Child): void {
    if (this.stopping || (c.status.restarts === 0 && c.readyAt === 0)) {
      // stopping, or its first start failed (start() rejects and `skiff up` fails): no restart
      c.status = { ...c.status, state: 'stopped' };
      this.writeStatus();
      return;
    }
    if (c.readyAt > 0 && Date.now() - c.readyAt > HEALTHY_AFTER_MS) c.failures = 0;
    const delay = restartDelayMs(c.failures++);
    c.status = { ...c.status, state: 'backoff', restarts: c.status.restarts + 1 };
    this.writeStatus();
    const why = c.status.lastExit?.signal ?? `code ${c.status.lastExit?.code}`;
    this.err.write(`${'supervisor'.padEnd(18)} | ${c.name} exited (${why}); restart ${c.status.restarts} in ${delay} ms\n`);
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (!this.stopping) this.spawnChild(c);
    }, delay);
  }

  private writeStatus(): void {
    const components = Object.fromEntries([...this.children].map(([n, c]) => [n, c.status]));
    writeStatusFile(this.opts.o.dataDir, { mode: 'split', supervisor: process.pid, components });
  }

  /** Stops the children in reverse start order (SIGTERM, SIGKILL after 15 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.children.values()) if (c.timer) clearTimeout(c.timer);
    for (const phase of componentPlan(this.opts.o).reverse()) {
      await Promise.all(
        phase.map(async (name) => {
          const proc = this.children.get(name)?.proc;
          if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(t);
        }),
      );
    }
    this.writeStatus();
  }
}
