import { cpus, hostname, totalmem, release, arch } from 'node:os';
import type { Node, NodeStatus } from 'kubernetes-types/core/v1.js';
import type { ApiClient } from '../client/types.js';
import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface NodeFacts {
  nodeName: string;
  nodeIP: string;
  kubeletPort: number;
  runtime: string;
  runtimeVersion: string;
  cpuCount: number;
  memoryBytes: number;
  maxPods: number;
}

export function localFacts(nodeName: string, nodeIP: string, kubeletPort: number, runtime: string, runtimeVersion: string): NodeFacts {
  return { nodeName, nodeIP, kubeletPort, runtime, runtimeVersion, cpuCount: cpus().length, memoryBytes: totalmem(), maxPods: 110 };
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Pure: the Node status the kubelet reports (capacity, allocatable, conditions, addresses, nodeInfo). */
export function renderNodeStatus(f: NodeFacts, prev: NodeStatus | undefined, now: Date): NodeStatus {
  const mem = `${Math.floor(f.memoryBytes / 1024)}Ki`;
  const allocMem = `${Math.max(0, Math.floor(f.memoryBytes / 1024) - 100 * 1024)}Ki`;
  const cond = (type: string, status: string, reason: string, message: string) => {
    const old = prev?.conditions?.find((c) => c.type === type);
    return { type, status, reason, message, lastHeartbeatTime: iso(now), lastTransitionTime: old && old.status === status ? old.lastTransitionTime : iso(now) };
  };
  return {
    capacity: { cpu: String(f.cpuCount), memory: mem, pods: String(f.maxPods), 'ephemeral-storage': '100Gi' },
    allocatable: { cpu: String(f.cpuCount), memory: allocMem, pods: String(f.maxPods), 'ephemeral-storage': '95Gi' },
    conditions: [
      cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
    ],
    addresses: [{ type: 'InternalIP', address: f.nodeIP }, { type: 'Hostname', address: f.nodeName }],
    daemonEndpoints: { kubeletEndpoint: { Port: f.kubeletPort } },
    nodeInfo: {
      machineID: '', systemUUID: '', bootID: '', kernelVersion: release(), osImage: 'Linux', operatingSystem: 'linux', architecture: arch() === 'x64' ? 'amd64' : arch(),
      containerRuntimeVersion: `${f.runtime}://${f.runtimeVersion}`, kubeletVersion: 'v1.33.0-skiff', kubeProxyVersion: 'v1.33.0-skiff',
    },
  };
}

/** Registers the Node, keeps its status fresh and heartbeats its Lease in kube-node-lease. */
export class NodeAgent {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  constructor(private readonly client: ApiClient, private readonly facts: NodeFacts, private readonly log: Logger, private readonly opts = { statusMs: 10_000, leaseMs: 10_000 }) {}

  async register(): Promise<Node> {
    const name = this.facts.nodeName;
    let node = await this.client.get<Node & KubeObject>(R.nodes, name).catch(() => undefined);
    if (!node) {
      const obj = {
        apiVersion: 'v1', kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
        spec: {},
      };
      node = await this.client.create<Node & KubeObject>(R.nodes, obj as Node & KubeObject).catch(async (err) => {
        if ((err as { code?: number }).code === 409 || /already exists/i.test(errorMessage(err))) return this.client.get<Node & KubeObject>(R.nodes, name);
        throw err;
      });
    }
    await this.updateStatus(node);
    return this.client.get<Node & KubeObject>(R.nodes, name);
  }

  private async updateStatus(node?: Node): Promise<void> {
    const cur = node ?? (await this.client.get<Node & KubeObject>(R.nodes, this.facts.nodeName));
    const status = renderNodeStatus(this.facts, cur.status, new Date());
    await this.client.patch(R.nodes, this.facts.nodeName, { status }, { type: 'merge', subresource: 'status' });
  }

  async renewLease(): Promise<void> {
    const name = this.facts.nodeName;
    const now = new Date().toISOString().replace('Z', '000Z');
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: now };
    try {
      await this.client.patch(R.leases, name, { spec }, { namespace: 'kube-node-lease', type: 'merge' });
    } catch {
      const node = await this.client.get<Node & KubeObject>(R.nodes, name);
      await this.client.create(R.leases, {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
        metadata: { name, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid! }] },
        spec,
      }, 'kube-node-lease');
    }
  }

  /** Starts the periodic status update and lease renewal. */
  start(): void {
    const loop = (ms: number, fn: () => Promise<void>, what: string) => {
      const run = async () => {
        if (this.stopped) return;
        await fn().catch((err) => this.log.warn({ err: errorMessage(err) }, `${what} failed`));
        if (!this.stopped) this.timers.set(what, setTimeout(() => void run(), ms));
      };
      void run();
    };
    loop(this.opts.leaseMs, () => this.renewLease(), 'lease renewal');
    loop(this.opts.statusMs, () => this.updateStatus(), 'node status update');
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
  }
}

export function defaultNodeName(): string {
  return hostname().toLowerCase();
}
