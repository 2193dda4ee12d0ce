import { R } from '../../../src/api/registry.js';
import { objectKey } from '../../../src/api/object.js';
import type { KubeObject } from '../../../src/api/object.js';
import { InformerFactory } from '../../../src/client/factory.js';
import type { ApiClient } from '../../../src/client/types.js';
import type { PodObj } from '../../../src/scheduler/cache.js';

/**
 * Fake nodes and a fake kubelet for integration tests against the real apiserver: registers
 * Nodes (allocatable, Ready) with Leases in kube-node-lease and renews them; pods bound to its
 * nodes become Running and Ready with an IP; pods being deleted are finalized (grace 0) unless
 * `holdTerminating` is set. A silenced node stops heartbeating and stops serving its pods.
 */
export class FakeKubelet {
  private readonly informers: InformerFactory;
  private readonly silent = new Set<string>();
  private timer?: NodeJS.Timeout;
  private ipSeq = new Map<string, number>();
  holdTerminating = false;
  readonly handled = new Set<string>();

  constructor(
    private readonly client: ApiClient,
    readonly nodes: string[],
    private readonly opts: { cpu?: string; memory?: string; heartbeatMs?: number; labels?: (node: string) => Record<string, string> } = {},
  ) {
    this.informers = new InformerFactory(client);
  }

  private nodeObject(name: string, i: number): KubeObject {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(this.opts.labels?.(name) ?? {}) } },
      spec: {},
      status: {
        capacity: { cpu: this.opts.cpu ?? '4', memory: this.opts.memory ?? '8Gi', pods: '110' },
        allocatable: { cpu: this.opts.cpu ?? '4', memory: this.opts.memory ?? '8Gi', pods: '110' },
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'fake kubelet is posting ready status', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
        addresses: [{ type: 'InternalIP', address: `127.0.0.${10 + i}` }],
      },
    };
  }

  async start(): Promise<void> {
    for (const [i, name] of this.nodes.entries()) {
      await this.client.create(R.nodes, this.nodeObject(name, i));
      await this.renew(name, true);
    }
    const pods = this.informers.get<PodObj>(R.pods);
    pods.addHandlers({ add: (p) => void this.onPod(p), update: (_o, p) => void this.onPod(p) });
    this.informers.start();
    await this.informers.waitForSync();
    this.timer = setInterval(() => {
      for (const n of this.nodes) if (!this.silent.has(n)) void this.renew(n, false).catch(() => undefined);
    }, this.opts.heartbeatMs ?? 200);
  }

  private async renew(node: string, create: boolean): Promise<void> {
    const renewTime = new Date().toISOString().replace('Z', '000Z');
    if (create) {
      await this.client.create(R.leases, { metadata: { name: node, namespace: 'kube-node-lease' }, spec: { holderIdentity: node, leaseDurationSeconds: 40, renewTime } }, 'kube-node-lease');
      return;
    }
    await this.client.patch(R.leases, node, { spec: { renewTime } }, { namespace: 'kube-node-lease', type: 'merge' });
  }

  silence(node: string): void {
    this.silent.add(node);
  }

  private async onPod(p: PodObj): Promise<void> {
    const node = p.spec?.nodeName;
    if (!node || !this.nodes.includes(node) || this.silent.has(node)) return;
    try {
      if (p.metadata?.deletionTimestamp) {
        if (!this.holdTerminating) await this.client.delete(R.pods, p.metadata.name!, p.metadata.namespace, { gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid } });
        return;
      }
      if (p.status?.phase === 'Running' || this.handled.has(p.metadata!.uid!)) return;
      this.handled.add(p.metadata!.uid!);
      const idx = this.nodes.indexOf(node);
      const n = (this.ipSeq.get(node) ?? 1) + 1;
      this.ipSeq.set(node, n);
      const now = new Date().toISOString();
      await this.client.patch(
        R.pods,
        p.metadata!.name!,
        {
          status: {
            phase: 'Running',
            podIP: `10.244.${idx}.${n}`,
            podIPs: [{ ip: `10.244.${idx}.${n}` }],
            hostIP: `127.0.0.${10 + idx}`,
            startTime: now,
            conditions: [
              { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
              { type: 'Initialized', status: 'True', lastTransitionTime: now },
              { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
              { type: 'Ready', status: 'True', lastTransitionTime: now },
            ],
          },
        },
        { namespace: p.metadata!.namespace, subresource: 'status', type: 'merge' },
      );
    } catch {
      this.handled.delete(p.metadata?.uid ?? '');
    }
  }

  /** Finalizes every terminating pod of the running nodes now (after holdTerminating). */
  async releaseTerminating(): Promise<void> {
    this.holdTerminating = false;
    for (const p of (await this.client.list<PodObj>(R.pods)).items) if (p.metadata?.deletionTimestamp) await this.onPod(p);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.informers.stop();
  }

  key(p: PodObj): string {
    return objectKey(p);
  }
}
