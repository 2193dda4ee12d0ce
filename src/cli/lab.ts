import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNodeToken } from '../apiserver/auth/tokens.js';
import { LocalHost, type Host } from '../host/host.js';
import { NetnsRuntime } from '../kubelet/runtime/netns.js';
import { SkiffError, errorMessage } from '../util/errors.js';
import { componentLogger } from '../util/log.js';

const log = componentLogger('lab');

/** The lab's L2 segment: node i (1-based) is 192.168.250.(10+i)/24, node 1 runs the server. */
export const LAB_SUBNET = '192.168.250';
export const LAB_API_PORT = 6443;

export interface LabOptions {
  nodes: number;
  /** state: DIR/lab/state.json, DIR/lab/<node>/ (data dirs), DIR/lab/<node>.log */
  dataDir: string;
  runtime: 'docker' | 'netns';
  /** lab name: netns `skiff-<name>-sw` / `skiff-<name>-nI`, nodes `<name>-nodeI` (default `lab`) */
  name?: string;
  /** extra flags for node 1's `skiff up` (e.g. --node-monitor-grace-period 10) */
  serverArgs?: string[];
  /** extra flags for every `skiff agent` */
  agentArgs?: string[];
  /** how long to wait for each node process to report it is up (default 120 s) */
  startTimeoutMs?: number;
  /** the skiff CLI script (default: main.js next to this file) */
  bin?: string;
  /** progress: called with done=false when a step starts, done=true when it finished */
  onStep?: (step: string, done: boolean) => void;
}

export interface LabNode {
  index: number;
  name: string;
  netns: string;
  ip: string;
  /** switch-side veth (in the switch netns) */
  port: string;
  dataDir: string;
  log: string;
  pid?: number;
}

export interface LabState {
  name: string;
  dataDir: string;
  runtime: 'docker' | 'netns';
  switchNetns: string;
  bridge: string;
  server: string;
  caFile: string;
  kubeconfig: string;
  nodes: LabNode[];
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/;

/** Pure: names, addresses and paths of a lab (no side effects). */
export function planLab(o: Pick<LabOptions, 'nodes' | 'dataDir' | 'runtime' | 'name'>): LabState {
  const name = o.name ?? 'lab';
  if (!NAME_RE.test(name)) throw new SkiffError('ERR_LAB_NAME', `invalid lab name ${JSON.stringify(name)}: lowercase letters, digits and dashes, up to 22 characters`);
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 200) throw new SkiffError('ERR_LAB_NODES', `--nodes must be an integer from 1 to 200, got ${o.nodes}`);
  const dir = join(o.dataDir, 'lab');
  const nodes: LabNode[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const node = `${name}-node${i}`;
    nodes.push({ index: i, name: node, netns: `skiff-${name}-n${i}`, ip: `${LAB_SUBNET}.${10 + i}`, port: `p${i}`, dataDir: join(dir, node), log: join(dir, `${node}.log`) });
  }
  return {
    name,
    dataDir: o.dataDir,
    runtime: o.runtime,
    switchNetns: `skiff-${name}-sw`,
    bridge: 'br0',
    server: `https://${nodes[0].ip}:${LAB_API_PORT}`,
    caFile: join(nodes[0].dataDir, 'pki', 'ca.crt'),
    kubeconfig: join(nodes[0].dataDir, 'kubeconfig'),
    nodes,
  };
}

/** Pure: the command line (argv after `ip netns exec NS node`) of one lab node. */
export function nodeArgv(s: LabState, n: LabNode, bin: string, token: string | undefined, o: Pick<LabOptions, 'serverArgs' | 'agentArgs'>): string[] {
  const base = ['--data-dir', n.dataDir, '--node-ip', n.ip, '--node-name', n.name, '--runtime', s.runtime];
  if (n.index === 1) return [bin, 'up', ...base, ...(o.serverArgs ?? [])];
  return [bin, 'agent', ...base, '--server', s.server, '--token', token ?? '', '--ca-file', s.caFile, '--no-dns', '--no-ingress', ...(o.agentArgs ?? [])];
}

function statePath(dataDir: string): string {
  return join(dataDir, 'lab', 'state.json');
}

function saveState(s: LabState): void {
  writeFileSync(statePath(s.dataDir), JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
}

export function readLabState(dataDir: string): LabState | undefined {
  const p = statePath(dataDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as LabState) : undefined;
}

/** The switch netns with its bridge, then each node netns wired to it (address, default route onto the switch). */
async function wire(s: LabState, root: Host): Promise<void> {
  const sw = (...a: string[]) => root.exec('ip', ['-n', s.switchNetns, ...a]);
  await root.exec('ip', ['netns', 'add', s.switchNetns]);
  await sw('link', 'set', 'lo', 'up');
  await sw('link', 'add', s.bridge, 'type', 'bridge');
  await sw('link', 'set', s.bridge, 'up');
  for (const n of s.nodes) {
    const nd = (...a: string[]) => root.exec('ip', ['-n', n.netns, ...a]);
    await root.exec('ip', ['netns', 'add', n.netns]);
    await nd('link', 'set', 'lo', 'up');
    await sw('link', 'add', n.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.netns);
    await sw('link', 'set', n.port, 'master', s.bridge);
    await sw('link', 'set', n.port, 'up');
    await nd('addr', 'add', `${n.ip}/24`, 'dev', 'eth0');
    await nd('link', 'set', 'eth0', 'up');
    await nd('route', 'add', 'default', 'dev', 'eth0');
    await root.exec('ip', ['netns', 'exec', n.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }
}

/**
 * Pure: the ClusterRoleBinding that lets agents' node identities run netpol. The system:node role
 * does not read NetworkPolicies, and `skiff agent --token` runs netpol under the node's user.
 */
export function netpolBinding(): object {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'skiff:lab-nodes-netpol', labels: { 'app.kubernetes.io/managed-by': 'skiff-lab' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'skiff:netpol' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }],
  };
}

/** Creates the binding from inside node 1 (the API is only reachable there), as admin; 409 is fine. */
async function bindNodesToNetpol(s: LabState, root: Host): Promise<void> {
  const pki = join(s.nodes[0].dataDir, 'pki');
  const url = `https://127.0.0.1:${LAB_API_PORT}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings`;
  const r = await root.exec('ip', ['netns', 'exec', s.nodes[0].netns, 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(pki, 'ca.crt'), '--cert', join(pki, 'admin.crt'), '--key', join(pki, 'admin.key'),
    '-H', 'Content-Type: application/json', '--data-binary', '@-', url], { input: JSON.stringify(netpolBinding()) });
  const code = r.stdout.trim();
  if (code !== '201' && code !== '409') throw new SkiffError('ERR_LAB_RBAC', `creating ClusterRoleBinding skiff:lab-nodes-netpol answered HTTP ${code}: ${r.stderr.trim()}`);
}

/**
 * Starts one node process detached (it survives this command), stdout+stderr into its log file.
 * It enters only the node's network namespace (nsenter --net), not a private mount namespace as
 * `ip netns exec` would: the netns runtime's `ip netns add` for pods must reach the host's /run/netns.
 */
function spawnNode(n: LabNode, argv: string[]): number {
  const fd = openSync(n.log, 'a');
  try {
    const child = spawn('nsenter', [`--net=/run/netns/${n.netns}`, '--', process.execPath, ...argv], { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    if (!child.pid) throw new SkiffError('ERR_LAB_SPAWN', `could not start ${n.name}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls the node's log until `ready` matches; fails when the process exits or the deadline passes. */
async function waitLog(n: LabNode, ready: RegExp, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(n.log) ? readFileSync(n.log, 'utf8') : '';
    if (ready.test(text)) return;
    const tail = text.split('\n').slice(-15).join('\n');
    if (!n.pid || !alive(n.pid)) throw new SkiffError('ERR_LAB_NODE_EXITED', `${n.name} exited during start; log ${n.log}:\n${tail}`);
    if (Date.now() > end) throw new SkiffError('ERR_LAB_TIMEOUT', `${n.name} did not start in ${timeoutMs / 1000} s; log ${n.log}:\n${tail}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `skiff lab up`: wires the namespaces, starts node 1 (`skiff up`), then the agents of nodes 2..N. */
export async function labUp(o: LabOptions, root: Host = new LocalHost(null)): Promise<LabState> {
  const s = planLab(o);
  if (readLabState(o.dataDir)) throw new SkiffError('ERR_LAB_EXISTS', `a lab is already recorded in ${statePath(o.dataDir)}: run skiff lab down --data-dir ${o.dataDir} first`);
  const bin = o.bin ?? fileURLToPath(new URL('./main.js', import.meta.url));
  const timeout = o.startTimeoutMs ?? 120_000;
  for (const n of s.nodes) mkdirSync(n.dataDir, { recursive: true, mode: 0o700 });
  saveState(s);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    o.onStep?.(name, false);
    const r = await fn();
    o.onStep?.(name, true);
    return r;
  };
  try {
    await step('network namespaces', () => wire(s, root));
    // agents' tokens go into node 1's token file before its apiserver starts
    const tokens = new Map(s.nodes.slice(1).map((n) => [n.name, ensureNodeToken(s.nodes[0].dataDir, n.name)]));
    const first = s.nodes[0];
    first.pid = spawnNode(first, nodeArgv(s, first, bin, undefined, o));
    saveState(s);
    log.info({ node: first.name, pid: first.pid }, 'server node started');
    await step(`${first.name}: skiff up`, () => waitLog(first, /skiff is up/, timeout));
    await bindNodesToNetpol(s, root);
    for (const n of s.nodes.slice(1)) {
      n.pid = spawnNode(n, nodeArgv(s, n, bin, tokens.get(n.name), o));
      saveState(s);
      log.info({ node: n.name, pid: n.pid }, 'agent started');
    }
    if (s.nodes.length > 1) await step(`agents of ${s.nodes.slice(1).map((n) => n.name).join(', ')}`, () => Promise.all(s.nodes.slice(1).map((n) => waitLog(n, /✓ kubelet/, timeout))));
    return s;
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'lab up failed, removing what was created');
    await labDown(o.dataDir, root).catch((e) => log.warn({ err: errorMessage(e) }, 'cleanup failed'));
    throw err;
  }
}

/** True when PID is still the node process we started (guards against a recycled pid). */
function isOurs(pid: number, n: LabNode): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(n.name);
  } catch {
    return false;
  }
}

async function killNode(n: LabNode, graceMs: number): Promise<void> {
  if (!n.pid || !isOurs(n.pid, n)) return;
  process.kill(n.pid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (Date.now() < end && alive(n.pid)) await new Promise((r) => setTimeout(r, 100));
  if (alive(n.pid) && isOurs(n.pid, n)) process.kill(n.pid, 'SIGKILL');
}

/** Pods the node's kubelet left behind: docker containers with its node label, netns-runtime sandboxes. */
async function removePods(n: LabNode, root: Host): Promise<void> {
  const ps = await root.exec('docker', ['ps', '-aq', '--filter', 'label=io.skiff.managed=true', '--filter', `label=io.skiff.node=${n.name}`], { allowFail: true }).catch(() => undefined);
  const ids = (ps?.exitCode === 0 ? ps.stdout : '').split('\n').filter(Boolean);
  if (ids.length) await root.exec('docker', ['rm', '-f', ...ids], { allowFail: true });
  const rtDir = join(n.dataDir, 'kubelet', 'netns-runtime');
  if (existsSync(rtDir)) {
    const rt = new NetnsRuntime(root, rtDir, root);
    for (const sb of await rt.listSandboxes()) await rt.removeSandbox(sb.id).catch((err) => log.warn({ node: n.name, sandbox: sb.id, err: errorMessage(err) }, 'sandbox removal failed'));
  }
}

/** `skiff lab down`: stops every node process, removes their pods and all lab namespaces, forgets the lab. */
export async function labDown(dataDir: string, root: Host = new LocalHost(null), opts: { graceMs?: number } = {}): Promise<LabState | undefined> {
  const s = readLabState(dataDir);
  if (!s) return undefined;
  // agents first, the server last
  await Promise.all(s.nodes.slice(1).map((n) => killNode(n, opts.graceMs ?? 10_000)));
  await killNode(s.nodes[0], opts.graceMs ?? 10_000);
  for (const n of s.nodes) await removePods(n, root);
  for (const ns of [...s.nodes.map((n) => n.netns), s.switchNetns]) {
    if (existsSync(`/var/run/netns/${ns}`)) await root.exec('ip', ['netns', 'delete', ns], { allowFail: true });
  }
  rmSync(statePath(dataDir), { force: true });
  return s;
}

/** What `skiff lab up` prints. */
export function usage(s: LabState): string {
  const n1 = s.nodes[0];
  const lines = [
    `skiff lab "${s.name}" is up: ${s.nodes.length} node(s) on ${LAB_SUBNET}.0/24 behind switch netns ${s.switchNetns}`,
    ...s.nodes.map((n) => `  ${n.name.padEnd(14)} ${n.ip.padEnd(16)} netns ${n.netns.padEnd(18)} pid ${n.pid ?? '-'}  log ${n.log}`),
    '',
    'Use it (the cluster is only reachable from inside the lab namespaces):',
    `  ip netns exec ${n1.netns} kubectl --kubeconfig ${s.kubeconfig} get nodes -o wide`,
    `  ip netns exec ${s.nodes[s.nodes.length - 1].netns} ping -c1 ${n1.ip}`,
    `  tail -f ${n1.log}`,
    `Remove it: skiff lab down --data-dir ${s.dataDir}`,
  ];
  return lines.join('\n') + '\n';
}
