import { connect } from 'node:net';
import { request } from 'node:http';
import type { Container, Probe } from 'kubernetes-types/core/v1.js';
import type { Host } from '../host/host.js';
import type { ContainerRuntime } from './runtime/types.js';
import { counter } from '../util/metrics.js';

const probeTotal = counter({ name: 'skiff_kubelet_probe_total', help: 'Probe runs by type and result', labelNames: ['probe', 'result'] as const });

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/** Runs one probe action against a container: exec through the runtime, TCP/HTTP in the node's netns. */
export class ProbeRunner {
  constructor(private readonly runtime: ContainerRuntime, private readonly host: Host) {}

  async run(p: Probe, containerId: string, podIP: string, c: Container): Promise<boolean> {
    const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
    if (p.exec) {
      const r = await this.runtime.execSync(containerId, [...(p.exec.command ?? [])], timeoutMs + 1000);
      return r.exitCode === 0;
    }
    const port = (hp: number | string): number => (typeof hp === 'number' ? hp : (c.ports ?? []).find((x) => x.name === hp)?.containerPort ?? Number(hp));
    if (p.tcpSocket) return this.tcp(p.tcpSocket.host || podIP, port(p.tcpSocket.port), timeoutMs);
    if (p.httpGet) {
      const h = p.httpGet;
      const headers = Object.fromEntries((h.httpHeaders ?? []).map((x) => [x.name, x.value]));
      return this.http(`${(h.scheme ?? 'HTTP').toLowerCase()}://${h.host || podIP}:${port(h.port)}${h.path ?? '/'}`, headers, timeoutMs);
    }
    return true;
  }

  private async tcp(ip: string, port: number, timeoutMs: number): Promise<boolean> {
    if (this.host.netns === null) {
      return new Promise((resolve) => {
        const s = connect({ host: ip, port, timeout: timeoutMs }, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
        s.on('timeout', () => { s.destroy(); resolve(false); });
      });
    }
    const r = await this.host.exec('bash', ['-c', 'exec 3<>"/dev/tcp/$0/$1"', ip, String(port)], { allowFail: true, timeoutMs });
    return r.exitCode === 0;
  }

  private async http(url: string, headers: Record<string, string>, timeoutMs: number): Promise<boolean> {
    if (this.host.netns === null && url.startsWith('http:')) {
      return new Promise((resolve) => {
        const req = request(url, { headers: { 'User-Agent': 'kube-probe/1.33', ...headers }, timeout: timeoutMs }, (res) => {
          res.resume();
          resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
        });
        req.on('error', () => resolve(false));
        req.on('timeout', () => { req.destroy(); resolve(false); });
        req.end();
      });
    }
    const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--noproxy', '*', '--max-time', secs, '-A', 'kube-probe/1.33', '-k'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    const r = await this.host.exec('curl', [...args, url], { allowFail: true, timeoutMs: timeoutMs + 2000 });
    const code = Number(r.stdout.trim());
    return code >= 200 && code < 400;
  }
}

/** Probe state of one running container instance. */
export interface ProbeState {
  started: boolean;
  ready: boolean;
  /** liveness (or startup) crossed its failure threshold: the container must be restarted */
  unhealthy?: 'liveness' | 'startup';
}

interface Worker {
  timer?: NodeJS.Timeout;
  stopped: boolean;
  successes: number;
  failures: number;
}

/**
 * Runs the startup, liveness and readiness probes of one container instance on their periods
 * with Kubernetes' thresholds (startup gates the others; readiness starts false; liveness and
 * startup failures mark the container unhealthy). `onChange` fires when the state changes.
 */
export class ContainerProber {
  readonly state: ProbeState;
  private readonly workers: Worker[] = [];

  constructor(
    private readonly runner: ProbeRunner,
    private readonly c: Container,
    private readonly containerId: string,
    private readonly podIP: string,
    private readonly onChange: () => void,
  ) {
    this.state = { started: !c.startupProbe, ready: !c.readinessProbe && !c.startupProbe };
    if (c.startupProbe) this.schedule('startup', c.startupProbe);
    else this.startAfterStartup();
  }

  private startAfterStartup(): void {
    if (this.c.livenessProbe) this.schedule('liveness', this.c.livenessProbe);
    if (this.c.readinessProbe) this.schedule('readiness', this.c.readinessProbe);
    else if (!this.state.ready) this.set({ ready: true });
  }

  private set(p: Partial<ProbeState>): void {
    const before = JSON.stringify(this.state);
    Object.assign(this.state, p);
    if (JSON.stringify(this.state) !== before) this.onChange();
  }

  private schedule(kind: ProbeKind, p: Probe): void {
    const w: Worker = { stopped: false, successes: 0, failures: 0 };
    this.workers.push(w);
    const period = (p.periodSeconds ?? 10) * 1000;
    const tick = async (): Promise<void> => {
      if (w.stopped) return;
      const ok = await this.runner.run(p, this.containerId, this.podIP, this.c).catch(() => false);
      if (w.stopped) return;
      probeTotal.inc({ probe: kind, result: ok ? 'success' : 'failure' });
      if (ok) { w.successes++; w.failures = 0; } else { w.failures++; w.successes = 0; }
      const done = this.observe(kind, p, w, ok);
      if (!done && !w.stopped) w.timer = setTimeout(() => void tick(), period);
    };
    w.timer = setTimeout(() => void tick(), (p.initialDelaySeconds ?? 0) * 1000);
  }

  /** Applies one result; returns true when this probe worker is finished. */
  private observe(kind: ProbeKind, p: Probe, w: Worker, ok: boolean): boolean {
    const failTh = p.failureThreshold ?? 3;
    const okTh = kind === 'readiness' ? (p.successThreshold ?? 1) : 1;
    if (kind === 'startup') {
      if (ok) {
        this.set({ started: true });
        this.startAfterStartup();
        return true;
      }
      if (w.failures >= failTh) { this.set({ unhealthy: 'startup' }); return true; }
      return false;
    }
    if (kind === 'liveness') {
      if (w.failures >= failTh) { this.set({ unhealthy: 'liveness' }); return true; }
      return false;
    }
    if (ok && w.successes >= okTh) this.set({ ready: true });
    if (!ok && w.failures >= failTh) this.set({ ready: false });
    return false;
  }

  stop(): void {
    for (const w of this.workers) {
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
    }
  }
}
