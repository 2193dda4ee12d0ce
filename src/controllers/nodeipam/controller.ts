import type { ControllerContext } from '../context.js';
import { R } from '../../api/registry.js';
import { componentLogger } from '../../util/log.js';
import { gauge } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import { Controller } from '../run.js';
import { formatCidr, parseCidr } from './cidr.js';
import { decidePodCIDR, type NodeObj } from './reconcile.js';

const log = componentLogger('nodeipam-controller');
const allocated = gauge({ name: 'skiff_nodeipam_allocated_cidrs', help: 'Pod CIDRs held by nodes' });

/**
 * Node IPAM: gives each Node spec.podCIDR(s), a /nodeCIDRMaskSize from options.podCIDR. A CIDR
 * stays taken while its node exists. One worker, so two nodes never race for the same range.
 */
export function startNodeIpamController(ctx: ControllerContext): { stop(): void } {
  const nodes = ctx.informers.get<NodeObj>(R.nodes);
  const recorder = ctx.recorder('nodeipam-controller');
  const c = new Controller({ name: 'nodeipam', log });
  /** CIDRs we assigned whose node update the cache may not show yet: node name -> cidr. */
  const handedOut = new Map<string, string>();
  nodes.addHandlers(c.handlers());
  const sync = async (name: string): Promise<void> => {
    const used = new Set<string>();
    for (const n of nodes.list()) if (n.spec?.podCIDR) used.add(formatCidr(parseCidr(n.spec.podCIDR)));
    for (const [n, cidr] of handedOut) {
      const cur = nodes.get(n);
      // a node that is gone holds nothing; one the cache shows with its CIDR is counted above
      if (!cur || cur.spec?.podCIDR) handedOut.delete(n);
      else used.add(cidr);
    }
    allocated.set(used.size);
    const node = nodes.get(name);
    if (!node) return;
    const d = decidePodCIDR(node, ctx.options.podCIDR, ctx.options.nodeCIDRMaskSize, used);
    if (d.action === 'full') {
      recorder.event(node, 'Warning', 'CIDRNotAvailable', `Node ${name} status is now: CIDRNotAvailable (no free /${ctx.options.nodeCIDRMaskSize} in ${ctx.options.podCIDR})`);
      throw new Error(`no free pod CIDR for node ${name}`);
    }
    if (d.action === 'none') return;
    const cidr = handedOut.get(name) ?? d.cidr;
    handedOut.set(name, cidr);
    try {
      await ctx.client.patch(R.nodes, name, { spec: { podCIDR: cidr, podCIDRs: [cidr] } }, { type: 'merge' });
    } catch (err) {
      if (isNotFound(err)) {
        handedOut.delete(name);
        return;
      }
      throw err;
    }
    recorder.event(node, 'Normal', 'CIDRAssignmentSucceeded', `Node ${name} got pod CIDR ${cidr}`);
    log.info({ node: name, cidr }, 'pod CIDR assigned');
  };
  return c.run({ informers: [nodes], workers: 1, sync });
}
