import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SkiffError } from '../../util/errors.js';

/**
 * The program each lab pod runs inside its network namespace: TCP and UDP listeners on the pod's
 * ports (TCP accepts and closes, UDP echoes), and a prober that answers JSON-line requests on stdin
 * (`{id, host, port, protocol, timeoutMs}` -> `{id, ok}`). Plain CommonJS run with `node -e`, so it
 * works the same from sources and from dist.
 */
const AGENT_SOURCE = String.raw`
const net = require('net'), dgram = require('dgram'), readline = require('readline');
const ports = JSON.parse(process.argv[1]);
let pending = ports.length;
const ready = () => { if (--pending <= 0) process.stdout.write(JSON.stringify({ ready: true }) + '\n'); };
if (pending === 0) { pending = 1; ready(); }
for (const p of ports) {
  if (p.protocol === 'TCP') {
    const srv = net.createServer((s) => { s.on('error', () => {}); s.end(); });
    srv.on('error', (e) => { process.stderr.write('listen ' + p.port + ': ' + e.message + '\n'); process.exit(3); });
    srv.listen(p.port, '0.0.0.0', ready);
  } else if (p.protocol === 'UDP') {
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.on('error', (e) => { process.stderr.write('bind ' + p.port + ': ' + e.message + '\n'); process.exit(3); });
    u.bind(p.port, '0.0.0.0', ready);
  } else ready();
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const q = JSON.parse(line);
  let sent = false;
  const done = (ok) => { if (!sent) { sent = true; process.stdout.write(JSON.stringify({ id: q.id, ok }) + '\n'); } };
  if (q.protocol === 'TCP') {
    const s = net.connect({ host: q.host, port: q.port });
    const t = setTimeout(() => { s.destroy(); done(false); }, q.timeoutMs);
    s.on('connect', () => { clearTimeout(t); s.destroy(); done(true); });
    s.on('error', () => { clearTimeout(t); done(false); });
  } else {
    const u = dgram.createSocket('udp4');
    const t = setTimeout(() => { try { u.close(); } catch {} done(false); }, q.timeoutMs);
    u.on('message', () => { clearTimeout(t); try { u.close(); } catch {} done(true); });
    u.on('error', () => { clearTimeout(t); try { u.close(); } catch {} done(false); });
    u.send('probe', q.port, q.host);
  }
});
process.stdin.on('end', () => process.exit(0));
`;

export interface ProbeRequest {
  host: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  timeoutMs: number;
}

/** One lab pod's agent process, running inside the pod's netns. */
export class PodAgent {
  private child?: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private stderr = '';

  constructor(readonly netns: string, readonly ports: { port: number; protocol: string }[]) {}

  async start(): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', this.netns, process.execPath, '-e', AGENT_SOURCE, JSON.stringify(this.ports)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SkiffError('ERR_LAB_POD', `pod agent in ${this.netns} did not start: ${this.stderr}`)), 20_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new SkiffError('ERR_LAB_POD', `pod agent in ${this.netns} exited ${code}: ${this.stderr}`));
      });
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id?: number; ok?: boolean };
        if (msg.ready) {
          clearTimeout(timer);
          resolve();
        } else if (msg.id !== undefined) {
          this.waiting.get(msg.id)?.(!!msg.ok);
          this.waiting.delete(msg.id);
        }
      });
    });
    child.removeAllListeners('exit');
    child.on('exit', () => {
      for (const cb of this.waiting.values()) cb(false);
      this.waiting.clear();
    });
  }

  probe(req: ProbeRequest): Promise<boolean> {
    const child = this.child;
    if (!child || child.exitCode !== null) return Promise.resolve(false);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      child.stdin.write(`${JSON.stringify({ id, ...req })}\n`);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }
}
