// Connection-rate part of scripts/bench/netpol.ts: a TCP server pod and a client pod (netns on a
// bridge in a lab node netns, no uplink, no default route out of the node), the client doing
// connect/close in a loop for a fixed time; netpol not installed vs 0 vs 1,000 policies.
import { spawn } from 'node:child_process';
import { NetpolApplier } from '../../src/netpol/apply.js';
import { LAB_POD_CIDR, LabNetwork } from '../../src/netpol/lab/network.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type Snapshot } from '../../src/netpol/model.js';
import { NetpolRenderer } from '../../src/netpol/render.js';
import { makeNamespace, makePod, makePolicy } from '../../src/netpol/testing.js';
import { benchSnapshot } from './netpol-fixture.js';

const SERVER_IP = '10.244.0.252';
const CLIENT_IP = '10.244.0.253';
const RUN_MS = Number(process.env.NETPOL_BENCH_RATE_MS ?? 1500);
const ROUNDS = Number(process.env.NETPOL_BENCH_RATE_ROUNDS ?? 4);
const CONCURRENCY = 4;

/** connect/close loops until the deadline; prints {connections, errors, cpuMs} (the client's own CPU time). */
const CLIENT = String.raw`
const net = require('net');
const [host, port, ms, conc] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
const end = Date.now() + ms;
const start = process.cpuUsage();
let ok = 0, errors = 0, live = conc;
function loop() {
  if (Date.now() >= end) { if (--live === 0) { const u = process.cpuUsage(start); process.stdout.write(JSON.stringify({ connections: ok, errors, cpuMs: (u.user + u.system) / 1000 }) + '\n'); } return; }
  const s = net.connect({ host, port });
  const t = setTimeout(() => s.destroy(new Error('timeout')), 1000);
  s.once('connect', () => { ok++; clearTimeout(t); s.destroy(); setImmediate(loop); });
  s.once('error', () => { errors++; clearTimeout(t); s.destroy(); setImmediate(loop); });
}
for (let i = 0; i < conc; i++) loop();
`;

interface ClientResult {
  connections: number;
  errors: number;
  cpuMs: number;
}

function runClient(netns: string): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', CLIENT, SERVER_IP, '80', String(RUN_MS), String(CONCURRENCY)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as ClientResult) : reject(new Error(`client exited ${code}: ${stderr}`))));
  });
}

/** The sync bench's 1,000 policies plus the two real pods; the client is allowed by the last policy in the server's chain. */
function rateSnapshot(policies: number): Snapshot {
  const snap = benchSnapshot(policies);
  snap.namespaces.push(toNamespaceInfo(makeNamespace('client', { team: 'client' })));
  snap.pods.push(
    toPodInfo(makePod('ns0', 'server', { labels: { app: 'a0' }, ip: SERVER_IP, node: 'n', ports: ['http=80/TCP'] }))!,
    toPodInfo(makePod('client', 'client', { labels: { app: 'client' }, ip: CLIENT_IP, node: 'n' }))!,
  );
  if (policies > 0) {
    snap.policies.push(toPolicyInfo(makePolicy('ns0', 'zz-allow-client', { podSelector: { matchLabels: { app: 'a0' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'client' } } }], ports: [{ port: 80 }] }] })));
  }
  return snap;
}

export async function connectionRate(): Promise<Record<string, unknown>> {
  const net = new LabNetwork();
  try {
    await net.create();
    await net.addPod('ns0/server', SERVER_IP, [{ port: 80, protocol: 'TCP' }]);
    await net.addPod('client/client', CLIENT_IP, []);
    const clientNetns = net.agent('client/client')!.netns;
    const sysctl = (netns: string, kv: string) => net.node.exec('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', kv]);
    await sysctl(clientNetns, 'net.ipv4.ip_local_port_range=1024 65000');
    await sysctl(clientNetns, 'net.ipv4.tcp_tw_reuse=1');
    const applier = new NetpolApplier(net.node);
    const opts = { podCIDR: LAB_POD_CIDR, dropLog: null };
    const modes: Record<string, Snapshot | null> = { netpol_absent: null, policies_0: rateSnapshot(0), policies_1000: rateSnapshot(1000) };
    const runs: Record<string, number[]> = { netpol_absent: [], policies_0: [], policies_1000: [] };
    const perCpu: Record<string, number[]> = { netpol_absent: [], policies_0: [], policies_1000: [] };
    let errors = 0;
    let serverChainRules = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, snap] of Object.entries(modes)) {
        await applier.cleanup();
        if (snap) {
          await applier.ensureBase(opts);
          const r = new NetpolRenderer(opts).render(snap);
          await applier.apply(r);
          const chain = r.pods.get('ns0/server')?.ingressChain;
          if (chain) serverChainRules = r.chains.get(chain)!.length;
        }
        await net.flushConntrack();
        const res = await runClient(clientNetns);
        errors += res.errors;
        runs[mode].push(Math.round(res.connections / (RUN_MS / 1000)));
        perCpu[mode].push(Math.round(res.connections / (res.cpuMs / 1000)));
      }
    }
    await applier.cleanup();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ratio = (m: Record<string, number[]>, a: string, b: string) => Math.round((median(m[a]) / median(m[b])) * 100) / 100;
    return {
      run_ms: RUN_MS,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      conn_per_s: runs,
      conn_per_client_cpu_s: perCpu,
      server_chain_rules_1000: serverChainRules,
      ratio_1000_vs_0: ratio(runs, 'policies_1000', 'policies_0'),
      ratio_1000_vs_0_per_cpu: ratio(perCpu, 'policies_1000', 'policies_0'),
      ratio_0_vs_absent: ratio(runs, 'policies_0', 'netpol_absent'),
      client_errors: errors,
    };
  } finally {
    await net.destroy();
  }
}
