import type { NetnsRef } from '../runtime/types.js';
import type { PodNetwork } from './index.js';
import { allocate, release, type IpamState } from './ipam.js';

/** In-memory pod network for unit tests: the real (pure) IPAM, attachments recorded per pod. */
export class FakePodNetwork implements PodNetwork {
  state: IpamState;
  readonly attached = new Map<string, { ip: string; netns: NetnsRef }>();
  constructor(cidr: string) {
    this.state = { cidr, allocations: {} };
  }

  async attach(podUid: string, ref: NetnsRef): Promise<string> {
    const r = allocate(this.state, podUid);
    this.state = r.state;
    this.attached.set(podUid, { ip: r.ip, netns: ref });
    return r.ip;
  }

  async detach(podUid: string): Promise<void> {
    this.state = release(this.state, podUid);
    this.attached.delete(podUid);
  }

  async retain(live: Set<string>): Promise<void> {
    for (const uid of new Set(Object.values(this.state.allocations))) if (!live.has(uid)) await this.detach(uid);
  }
}
