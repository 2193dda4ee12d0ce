import { randomBytes } from 'node:crypto';
import { LocalHost } from '../../host/host.js';
import { createNetns, deleteNetns } from '../../host/netns.js';
import { PodAgent } from './podagent.js';

/**
 * The lab's network: one "node" netns holding a bridge (no uplink, no default route: nothing can
 * leave it) and one netns per pod, wired to the bridge with a veth pair. The engine programs the
 * node netns exactly as it programs a real node; br_netfilter makes bridged pod-to-pod traffic
 * pass its FORWARD rules.
 */

export const LAB_GATEWAY = '10.244.0.1';
export const LAB_POD_CIDR = '10.244.0.0/24';

interface LabPod {
  key: string;
  ip: string;
  netns: string;
  veth: string;
  agent: PodAgent;
}

export class LabNetwork {
  readonly id = randomBytes(3).toString('hex');
  readonly nodeNetns = `npl-${this.id}`;
  readonly node = new LocalHost(this.nodeNetns);
  private readonly pods = new Map<string, LabPod>();
  private seq = 0;
  private created = false;

  async create(): Promise<void> {
    this.created = true;
    await createNetns(this.nodeNetns);
    await new LocalHost(null).exec('modprobe', ['br_netfilter'], { allowFail: true });
    await this.node.exec('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    await this.node.exec('ip', ['addr', 'add', `${LAB_GATEWAY}/24`, 'dev', 'br0']);
    await this.node.exec('ip', ['link', 'set', 'br0', 'up']);
    await this.node.exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1']);
  }

  /** Wires a pod's netns to the bridge and starts its listeners; resolves once they listen. */
  async addPod(key: string, ip: string, ports: { port: number; protocol: string }[]): Promise<void> {
    const n = this.seq++;
    const netns = `${this.nodeNetns}-${n}`;
    const veth = `lv${n}`;
    const agent = new PodAgent(netns, ports);
    this.pods.set(key, { key, ip, netns, veth, agent });
    const pod = await createNetns(netns);
    await this.node.exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await this.node.exec('ip', ['link', 'set', veth, 'master', 'br0', 'up']);
    await pod.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await pod.exec('ip', ['link', 'set', 'eth0', 'up']);
    await pod.exec('ip', ['route', 'add', 'default', 'via', LAB_GATEWAY]);
    await agent.start();
  }

  async removePod(key: string): Promise<void> {
    const p = this.pods.get(key);
    if (!p) return;
    this.pods.delete(key);
    await p.agent.stop();
    await deleteNetns(p.netns);
  }

  podIp(key: string): string | undefined {
    return this.pods.get(key)?.ip;
  }

  agent(key: string): PodAgent | undefined {
    return this.pods.get(key)?.agent;
  }

  /** Forgets connection state so each step's probes are new connections. */
  async flushConntrack(): Promise<void> {
    await this.node.exec('conntrack', ['-F'], { allowFail: true });
  }

  /** Stops every pod agent and deletes every netns this lab made (bridge, veths, rules, sets go with them). */
  async destroy(): Promise<void> {
    for (const key of [...this.pods.keys()]) await this.removePod(key).catch(() => undefined);
    if (this.created) await deleteNetns(this.nodeNetns);
    this.created = false;
  }
}
