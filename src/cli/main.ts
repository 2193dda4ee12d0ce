#!/usr/bin/env node
import 'reflect-metadata';
import os from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { detectNodeIP, startAgent, startServer, type ClusterOptions } from './cluster.js';
import { RestClient } from '../client/rest.js';
import { Progress } from './progress.js';

const program = new Command();
program.name('skiff').description('A Kubernetes-compatible control plane and networking dataplane').version('0.1.0');

function common(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'state directory (store, certificates, kubeconfig)', '/var/lib/skiff')
    .option('--store <spec>', 'sqlite (default, DIR/store.db) or etcd://host:port[,host:port...]')
    .option('--bind-address <ip>', 'apiserver listen address', '0.0.0.0')
    .option('--port <n>', 'apiserver port', (v) => Number(v), 6443)
    .option('--node-name <name>', 'this node', os.hostname().toLowerCase())
    .option('--node-ip <ip>', 'this node\'s address (default: first non-loopback IPv4)')
    .option('--service-cidr <cidr>', 'Service ClusterIP range', '10.96.0.0/12')
    .option('--pod-cidr <cidr>', 'pod range (a /24 per node)', '10.244.0.0/16')
    .option('--cluster-domain <d>', 'cluster DNS domain', 'cluster.local')
    .option('--lb-pool <ranges>', 'LoadBalancer address pool (CIDRs or a-b ranges, comma-separated)')
    .option('--netns <name>', 'run the node\'s networking in this network namespace (labs, tests)')
    .addOption(new Option('--runtime <rt>', 'container runtime').choices(['docker', 'netns']).default('docker'))
    .option('--http-port <n>', 'ingress HTTP port', (v) => Number(v), 80)
    .option('--https-port <n>', 'ingress HTTPS port', (v) => Number(v), 443)
    .option('--dns-port <n>', 'cluster DNS port on the node address', (v) => Number(v), 53)
    .option('--no-dns', 'do not run cluster DNS')
    .option('--no-ingress', 'do not run the ingress controller')
    .option('--node-monitor-grace-period <s>', 'seconds without a node heartbeat before the Node is NotReady', (v) => Number(v), 40)
    .option('--pod-eviction-timeout <s>', 'seconds a NotReady/unreachable node\'s pods are tolerated before eviction', (v) => Number(v), 300);
}

type Flags = Record<string, unknown>;

function toOptions(f: Flags, agent: boolean, progress?: Progress): ClusterOptions {
  return {
    dataDir: String(f.dataDir),
    store: f.store as string | undefined,
    bindAddress: String(f.bindAddress),
    port: Number(f.port),
    nodeName: String(f.nodeName),
    nodeIP: (f.nodeIp as string | undefined) ?? detectNodeIP(),
    serviceCIDR: String(f.serviceCidr),
    podCIDR: String(f.podCidr),
    clusterDomain: String(f.clusterDomain),
    lbPool: f.lbPool ? String(f.lbPool).split(',') : undefined,
    netns: (f.netns as string | undefined) ?? null,
    runtime: f.runtime as 'docker' | 'netns',
    agent,
    dns: f.dns !== false,
    ingress: f.ingress !== false,
    httpPort: Number(f.httpPort),
    httpsPort: Number(f.httpsPort),
    dnsPort: Number(f.dnsPort),
    nodeMonitorGracePeriodSeconds: Number(f.nodeMonitorGracePeriod),
    podEvictionTimeoutSeconds: Number(f.podEvictionTimeout),
    onStep: progress ? (s, done) => (done ? progress.done(s) : progress.start(s)) : undefined,
  };
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(1);
      stopping = true;
      process.stderr.write(`\n${sig}: stopping skiff...\n`);
      void stop().finally(() => process.exit(0));
    });
  }
}

function upMessage(kubeconfig: string, note = ''): string {
  return (
    `\nskiff is up${note}. Kubeconfig: ${kubeconfig}\n  export KUBECONFIG=${kubeconfig}\n  kubectl get nodes\n` +
    `  kubectl apply -f examples/   # a web app with a Service, Ingress and NetworkPolicy\n`
  );
}

/** `skiff up --split`: each component in its own process under a supervisor that restarts them. */
async function upSplit(o: ClusterOptions, progress: Progress): Promise<void> {
  const { Supervisor } = await import('./supervisor.js');
  const sup = new Supervisor({
    o,
    command: [process.execPath, ...process.execArgv, process.argv[1]],
    onPhase: (names, done) => (done ? progress.done(names.join(', ')) : progress.start(names.join(', '))),
  });
  try {
    await sup.start();
  } catch (err) {
    progress.fail(err);
    await sup.stop();
    process.exit(1);
  }
  progress.finish();
  process.stderr.write(upMessage(join(o.dataDir, 'kubeconfig'), ` (one process per component: skiff status --data-dir ${o.dataDir})`));
  onSignals(() => sup.stop());
}

common(program.command('up'))
  .description('run a whole single-node cluster on this host: control plane and node agent in one process (or one per component with --split)')
  .option('--no-agent', 'control plane only')
  .option('--split', 'run each component (apiserver, controller-manager, scheduler, dns, ingress, netpol, proxy, kubelet) as its own process, restarted when it dies; PIDs in DIR/components.json')
  .action(async (f: Flags) => {
    const progress = new Progress();
    const o = toOptions(f, f.agent !== false, progress);
    if (f.split) return upSplit({ ...o, onStep: undefined }, progress);
    try {
      const server = await startServer(o);
      const agent = o.agent ? await startAgent({ ...o, client: server.client, pki: server.pki }) : undefined;
      progress.finish();
      const { componentPlan, writeStatusFile } = await import('./supervisor.js');
      const running = { pid: process.pid, state: 'running' as const, restarts: 0, startedAt: new Date().toISOString(), readyCpuMs: null, lastExit: null };
      writeStatusFile(o.dataDir, { mode: 'single', supervisor: process.pid, components: Object.fromEntries(componentPlan(o).flat().map((n) => [n, running])) });
      process.stderr.write(upMessage(server.kubeconfig));
      onSignals(async () => {
        await agent?.stop();
        await server.stop();
      });
    } catch (err) {
      progress.fail(err);
      process.exit(1);
    }
  });

common(program.command('component'))
  .description('run one component of `skiff up --split` in this process (its supervisor starts these)')
  .argument('<name>', 'apiserver, controller-manager, scheduler, dns, ingress, netpol, proxy or kubelet')
  .option('--lease-identity <id>', 'leader-election identity (default NODE-PID); the supervisor passes one that survives restarts')
  .action(async (name: string, f: Flags) => {
    const { isComponent, startComponent } = await import('./component.js');
    if (!isComponent(name)) throw new Error(`unknown component "${name}"`);
    const o = toOptions(f, true);
    // started by a supervisor: it reads "ready" from the IPC channel; when the channel closes the
    // supervisor is gone (even by kill -9), and so is this process
    process.on('disconnect', () => process.exit(0));
    const h = await startComponent(name, o, f.leaseIdentity ? String(f.leaseIdentity) : `${o.nodeName}-${process.pid}`);
    process.send?.({ type: 'ready' });
    onSignals(() => h.stop());
  });

program
  .command('status')
  .description('the components of the `skiff up` on a data dir: PIDs, states, restarts (from DIR/components.json)')
  .option('--data-dir <dir>', 'state directory', '/var/lib/skiff')
  .option('--json', 'print DIR/components.json as it is')
  .action(async (f: Flags) => {
    const { readStatusFile, renderStatus } = await import('./supervisor.js');
    const s = readStatusFile(String(f.dataDir));
    if (!s) throw new Error(`no ${String(f.dataDir)}/components.json: skiff up has not run on this data dir`);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    };
    process.stdout.write(f.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s, alive));
  });

common(program.command('server'))
  .description('run the control plane (apiserver, controllers, scheduler, DNS, ingress)')
  .action(async (f: Flags) => {
    const progress = new Progress();
    const o = toOptions(f, false, progress);
    try {
      const server = await startServer(o);
      progress.finish();
      process.stderr.write(`\nskiff server is up at ${server.url}. Kubeconfig: ${server.kubeconfig}\n`);
      onSignals(() => server.stop());
    } catch (err) {
      progress.fail(err);
      process.exit(1);
    }
  });

common(program.command('agent'))
  .description('run a node agent (kubelet, proxy, netpol) against a server')
  .requiredOption('--server <url>', 'apiserver URL')
  .requiredOption('--token <token>', 'bootstrap/node bearer token')
  .option('--ca-file <file>', 'cluster CA certificate (PEM)')
  .action(async (f: Flags) => {
    const progress = new Progress();
    const o = toOptions(f, true, progress);
    const { readFileSync } = await import('node:fs');
    const client = new RestClient({ server: String(f.server), token: String(f.token), ca: f.caFile ? readFileSync(String(f.caFile)) : undefined, insecureSkipTLSVerify: !f.caFile, userAgent: 'skiff-agent' });
    try {
      const agent = await startAgent({ ...o, client });
      progress.finish();
      onSignals(() => agent.stop());
    } catch (err) {
      progress.fail(err);
      process.exit(1);
    }
  });

const policy = program.command('policy').description('NetworkPolicy tools');
policy
  .command('test')
  .description('run NetworkPolicy scenario suites in network namespaces (the policy lab)')
  .allowUnknownOption(true)
  .argument('[args...]')
  .action(async (args: string[]) => {
    const { runPolicyTest } = await import('../netpol/lab/cli.js');
    process.exitCode = await runPolicyTest(args);
  });
policy
  .command('explain')
  .description('explain whether a connection between two pods is allowed, and why')
  .allowUnknownOption(true)
  .argument('[args...]')
  .action(async (args: string[]) => {
    const { runPolicyExplain } = await import('../netpol/lab/cli.js');
    process.exitCode = await runPolicyExplain(args);
  });

const lab = program.command('lab').description('a multi-node cluster on this machine: one network namespace per node behind a switch namespace');
lab
  .command('up')
  .description('start a lab: node 1 runs skiff up, nodes 2..N run skiff agent against it')
  .option('--nodes <n>', 'number of nodes', (v) => Number(v), 3)
  .option('--data-dir <dir>', 'state directory (DIR/lab/<node>/, DIR/lab/<node>.log)', '/var/lib/skiff')
  .addOption(new Option('--runtime <rt>', 'container runtime of every node').choices(['docker', 'netns']).default('docker'))
  .option('--name <name>', 'lab name (netns skiff-NAME-nI, nodes NAME-nodeI)', 'lab')
  .option('--node-monitor-grace-period <s>', 'passed to the server node')
  .option('--pod-eviction-timeout <s>', 'passed to the server node')
  .action(async (f: Flags) => {
    const { labUp, usage } = await import('./lab.js');
    const serverArgs: string[] = [];
    if (f.nodeMonitorGracePeriod !== undefined) serverArgs.push('--node-monitor-grace-period', String(f.nodeMonitorGracePeriod));
    if (f.podEvictionTimeout !== undefined) serverArgs.push('--pod-eviction-timeout', String(f.podEvictionTimeout));
    const progress = new Progress();
    try {
      const s = await labUp({ nodes: Number(f.nodes), dataDir: String(f.dataDir), runtime: f.runtime as 'docker' | 'netns', name: String(f.name), serverArgs, onStep: (st, done) => (done ? progress.done(st) : progress.start(st)) });
      progress.finish();
      process.stdout.write(usage(s));
    } catch (err) {
      progress.fail(err);
      process.exit(1);
    }
  });
lab
  .command('down')
  .description('stop every lab node, remove their pods and namespaces')
  .option('--data-dir <dir>', 'state directory of the lab', '/var/lib/skiff')
  .action(async (f: Flags) => {
    const { labDown } = await import('./lab.js');
    const s = await labDown(String(f.dataDir));
    process.stdout.write(s ? `lab "${s.name}" removed (${s.nodes.length} nodes)\n` : `no lab recorded in ${String(f.dataDir)}/lab\n`);
  });

program
  .command('backup')
  .description('consistent snapshot of the store while the cluster runs')
  .argument('<file>')
  .option('--data-dir <dir>', 'state directory', '/var/lib/skiff')
  .option('--store <spec>', 'sqlite (default) or etcd://...')
  .action(async (file: string, f: Flags) => {
    const { openStore } = await import('./cluster.js');
    const store = await openStore(f.store as string | undefined, String(f.dataDir));
    await store.backup!(file);
    await store.close();
    process.stderr.write(`backup written to ${file}\n`);
  });

program
  .command('restore')
  .description('restore a backup into a fresh data directory')
  .argument('<file>')
  .requiredOption('--data-dir <dir>', 'new state directory')
  .option('--from <dir>', 'the old data dir: copy its pki/ (cluster CA, keys) and encryption.json (Secrets at rest) too')
  .action(async (file: string, f: Flags) => {
    const { mkdirSync, copyFileSync, cpSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const dir = String(f.dataDir);
    const target = join(dir, 'store.db');
    if (existsSync(target)) throw new Error(`${target} exists: restore into a fresh data dir`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(file, target);
    if (f.from === undefined) {
      process.stderr.write(`restored ${file} into ${dir}; copy the old data dir's pki/ and encryption.json too (or pass --from OLD_DIR), then: skiff up --data-dir ${dir}\n`);
      return;
    }
    const from = String(f.from);
    for (const name of ['pki', 'encryption.json']) {
      if (!existsSync(join(from, name))) throw new Error(`${join(from, name)} not found: --from must be the data dir the backup was taken from`);
      cpSync(join(from, name), join(dir, name), { recursive: true, preserveTimestamps: true });
    }
    process.stderr.write(`restored ${file} into ${dir} with pki/ and encryption.json from ${from}; start it: skiff up --data-dir ${dir}\n`);
  });

program
  .command('doctor')
  .description('check the host (iptables backend, ipset, conntrack, br_netfilter, docker, ports)')
  .action(async () => {
    const { runChecks, formatChecks } = await import('./doctor.js');
    const checks = await runChecks();
    process.stdout.write(formatChecks(checks) + '\n');
    process.exitCode = checks.some((c) => !c.ok && !['iptables-legacy'].includes(c.name)) ? 1 : 0;
  });

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`skiff: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
