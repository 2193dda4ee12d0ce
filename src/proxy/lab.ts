import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, deleteNetns, uniqueName } from '../host/netns.js';
import type { LocalHost } from '../host/host.js';

/** Test support for the proxy's netns integration tests and benchmarks (not used at runtime). */

/** A pod's workload: answers TCP and UDP with "<name> <client address>" (client IP checks). */
const SERVER_JS = `// A pod's workload: answers TCP and UDP with "<name> <client address>" (client IP checks).
import net from 'node:net';
import dgram from 'node:dgram';

const [name, tcpPort, udpPort] = process.argv.slice(2);
const tcp = net.createServer((s) => s.end(\`\${name} \${s.remoteAddress}\\n\`));
const udp = dgram.createSocket('udp4');
udp.on('message', (_m, r) => udp.send(\`\${name} \${r.address}\`, r.port, r.address));
await new Promise((r) => tcp.listen(Number(tcpPort), '0.0.0.0', r));
await new Promise((r) => udp.bind(Number(udpPort), '0.0.0.0', r));
process.stdout.write('ready\\n');
`;

/**
 * Probes a service from inside a netns and prints JSON: { replies: ["name src", ...], errors: { CODE: n } }.
 *   node client.mjs tcp HOST PORT COUNT | node client.mjs udp HOST PORT COUNT SOURCE_PORT
 */
const CLIENT_JS = `// Probes a service from inside a netns and prints JSON: { replies: ["name src", ...], errors: { CODE: n } }.
//   node client.mjs tcp HOST PORT COUNT
//   node client.mjs udp HOST PORT COUNT SOURCE_PORT
import net from 'node:net';
import dgram from 'node:dgram';

const [mode, host, portStr, countStr, sportStr] = process.argv.slice(2);
const port = Number(portStr);
const count = Number(countStr);
const replies = [];
const errors = {};
const fail = (code) => (errors[code] = (errors[code] ?? 0) + 1);

function tcpOnce() {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    s.setTimeout(2000, () => {
      fail('TIMEOUT');
      s.destroy();
      resolve();
    });
    s.on('data', (d) => (data += d));
    s.on('error', (e) => {
      fail(e.code ?? 'ERROR');
      resolve();
    });
    s.on('close', () => {
      if (data) replies.push(data.trim());
      resolve();
    });
  });
}

async function udpAll() {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(Number(sportStr), '0.0.0.0', r));
  for (let i = 0; i < count; i++) {
    const got = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 700);
      sock.once('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
      sock.send(\`probe \${i}\`, port, host);
    });
    if (got) replies.push(got);
    else fail('NOREPLY');
  }
  sock.close();
}

if (mode === 'tcp') for (let i = 0; i < count; i++) await tcpOnce();
else await udpAll();
process.stdout.write(JSON.stringify({ replies, errors }) + '\\n');
`;

export const NODE_IP = '192.168.60.1';
export const REMOTE_IP = '192.168.60.9';
export const GATEWAY = '10.244.1.1';

/**
 * A node netns (bridge 10.244.1.1/24 for pods, a self-contained default route on a veth pair
 * whose both ends stay inside, ip_forward on), pod netns on the bridge, and a "remote host"
 * netns on a point-to-point veth to the node (192.168.60.0/24). Nothing reaches the root netns.
 */
export class Lab {
  readonly node: string;
  readonly remote: string;
  readonly pods = new Map<string, { ns: string; ip: string; server?: ResultPromise }>();
  private readonly created: string[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'skiff-proxy-lab-'));
  private readonly server = join(this.dir, 'server.mjs');
  private readonly client = join(this.dir, 'client.mjs');
  nodeHost!: LocalHost;

  constructor(tag: string) {
    this.node = uniqueName(`sk-${tag}n`);
    this.remote = uniqueName(`sk-${tag}r`);
  }

  private async nsx(ns: string, ...args: string[]): Promise<void> {
    await execa('ip', ['netns', 'exec', ns, ...args]);
  }

  async up(): Promise<void> {
    writeFileSync(this.server, SERVER_JS);
    writeFileSync(this.client, CLIENT_JS);
    this.nodeHost = await createNetns(this.node);
    this.created.push(this.node);
    await createNetns(this.remote);
    this.created.push(this.remote);
    const n = (...a: string[]) => this.nsx(this.node, ...a);
    await n('sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await n('ip', 'link', 'add', 'br0', 'type', 'bridge');
    await n('ip', 'addr', 'add', `${GATEWAY}/24`, 'dev', 'br0');
    await n('ip', 'link', 'set', 'br0', 'up');
    // Default route onto a veth whose both ends stay in the node netns: nothing can leave.
    await n('ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'wire0');
    await n('ip', 'addr', 'add', '192.168.50.2/24', 'dev', 'eth0');
    await n('ip', 'link', 'set', 'eth0', 'up');
    await n('ip', 'link', 'set', 'wire0', 'up');
    await n('ip', 'route', 'add', 'default', 'dev', 'eth0');
    // The remote host: a p2p link to the node, no default route.
    await n('ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', this.remote);
    await n('ip', 'addr', 'add', `${NODE_IP}/24`, 'dev', 'ext0');
    await n('ip', 'link', 'set', 'ext0', 'up');
    const r = (...a: string[]) => this.nsx(this.remote, ...a);
    await r('ip', 'addr', 'add', `${REMOTE_IP}/24`, 'dev', 'up0');
    await r('ip', 'link', 'set', 'up0', 'up');
    await r('ip', 'route', 'add', '172.18.255.0/24', 'via', NODE_IP);
  }

  /** A pod netns on the bridge running server.mjs (TCP 8080, UDP 5353) when `serve`. */
  async addPod(name: string, ip: string, serve = true): Promise<void> {
    const ns = uniqueName(`sk-p${name}`);
    await createNetns(ns);
    this.created.push(ns);
    const hostSide = uniqueName(`vp${name}`);
    await this.nsx(this.node, 'ip', 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await this.nsx(this.node, 'ip', 'link', 'set', hostSide, 'master', 'br0');
    await this.nsx(this.node, 'ip', 'link', 'set', hostSide, 'up');
    // As kubelet does (hairpin-veth): with br_netfilter a pod DNATed to itself is bridged back out its own port.
    await this.nsx(this.node, 'ip', 'link', 'set', hostSide, 'type', 'bridge_slave', 'hairpin', 'on');
    await this.nsx(ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    await this.nsx(ns, 'ip', 'link', 'set', 'eth0', 'up');
    await this.nsx(ns, 'ip', 'route', 'add', 'default', 'via', GATEWAY);
    const pod: { ns: string; ip: string; server?: ResultPromise } = { ns, ip };
    this.pods.set(name, pod);
    if (serve) await this.startServer(name);
  }

  async startServer(name: string): Promise<void> {
    const pod = this.pods.get(name)!;
    const proc = execa('ip', ['netns', 'exec', pod.ns, process.execPath, this.server, name, '8080', '5353'], { reject: false });
    pod.server = proc;
    await new Promise<void>((resolve, reject) => {
      proc.stdout?.on('data', (d: Buffer) => {
        if (String(d).includes('ready')) resolve();
      });
      void proc.then((r) => reject(new Error(`server ${name} exited: ${r.stderr}`)));
    });
  }

  async stopServer(name: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod?.server) return;
    pod.server.kill('SIGKILL');
    await pod.server;
    pod.server = undefined;
  }

  /** Runs client.mjs in `ns` (a pod name, 'node' or 'remote'). */
  async probe(from: string, args: (string | number)[]): Promise<{ replies: string[]; errors: Record<string, number> }> {
    const ns = from === 'node' ? this.node : from === 'remote' ? this.remote : this.pods.get(from)!.ns;
    const res = await execa('ip', ['netns', 'exec', ns, process.execPath, this.client, ...args.map(String)]);
    return JSON.parse(res.stdout) as { replies: string[]; errors: Record<string, number> };
  }

  async nodeExec(...args: string[]): Promise<string> {
    return (await execa('ip', ['netns', 'exec', this.node, ...args], { reject: false })).stdout;
  }

  async down(): Promise<void> {
    for (const pod of this.pods.values()) {
      pod.server?.kill('SIGKILL');
      await pod.server?.catch(() => undefined);
    }
    for (const ns of this.created.reverse()) await deleteNetns(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Counts replies by the answering pod name. */
export function countByName(replies: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of replies) {
    const name = r.split(' ')[0];
    m.set(name, (m.get(name) ?? 0) + 1);
  }
  return m;
}
