import type { Host } from '../../host/host.js';
import type { NetnsRef } from '../runtime/types.js';
import { BridgeNetwork } from './bridge.js';
import { FileIpam } from './ipam.js';

/** The pod network plugin as the pod worker sees it (CNI ADD/DEL in spirit). */
export interface PodNetwork {
  /**
   * Gives the pod's netns an eth0 with an address from the node range; adopts an existing one.
   * `fresh`: the netns was made just now (it has no eth0 yet), so there is nothing to adopt.
   */
  attach(podUid: string, ref: NetnsRef, opts?: { fresh?: boolean; makeNetns?: boolean }): Promise<string>;
  /** The plugin can make a named pod netns itself (`attach` with `makeNetns`, a sandbox with `netnsPending`). */
  readonly makesNetns?: boolean;
  detach(podUid: string): Promise<void>;
  /** Frees addresses of pods that no longer exist. */
  retain(liveUids: Set<string>): Promise<void>;
}

/** Bridge + veth + on-disk IPAM. */
export class BridgePodNetwork implements PodNetwork {
  readonly bridge: BridgeNetwork;
  readonly ipam: FileIpam;
  /**
   * `podHost`: where pod-side commands start (they enter the pod netns themselves); default `host`.
   * `makesNetns`: `host` runs its commands in the root mount namespace (a named netns made there is
   * visible to all), so a fresh netns can be made in the host-side batch.
   */
  constructor(host: Host, bridgeName: string, podCidr: string, ipamDir: string, podHost: Host = host, readonly makesNetns = false) {
    this.bridge = new BridgeNetwork(host, bridgeName, podCidr, podHost);
    this.ipam = new FileIpam(ipamDir, podCidr);
  }

  async attach(podUid: string, ref: NetnsRef, opts: { fresh?: boolean; makeNetns?: boolean } = {}): Promise<string> {
    if (opts.fresh || opts.makeNetns) {
      // a new netns: the host-side veth is made while IPAM writes the address to disk
      const want = this.ipam.allocate(podUid);
      want.catch(() => undefined); // awaited in attachPod (after the host batch)
      await this.bridge.attachPod(podUid, ref, want, { makeNetns: opts.makeNetns });
      return want;
    }
    const want = await this.ipam.allocate(podUid);
    if ((await this.bridge.currentPodIP(ref)) === want) return want;
    await this.bridge.attachPod(podUid, ref, want);
    return want;
  }

  async detach(podUid: string): Promise<void> {
    await this.bridge.detachPod(podUid);
    await this.ipam.release(podUid);
  }

  retain(liveUids: Set<string>): Promise<void> {
    return this.ipam.retain(liveUids);
  }
}
