import type { Node } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../api/object.js';
import { formatCidr, nextFreeSubnet, parseCidr } from './cidr.js';

export type NodeObj = KubeObject & Node;

export type IpamDecision =
  | { action: 'none'; cidr: string }
  | { action: 'assign'; cidr: string }
  | { action: 'full' };

/**
 * The pod CIDR a node should have: the one it holds (normalised), else the lowest free /mask of
 * the cluster range. `used` is every CIDR held by an existing node or handed out and not yet seen.
 */
export function decidePodCIDR(node: NodeObj, clusterCIDR: string, maskSize: number, used: ReadonlySet<string>): IpamDecision {
  const have = node.spec?.podCIDR;
  if (have) return { action: 'none', cidr: formatCidr(parseCidr(have)) };
  const cidr = nextFreeSubnet(parseCidr(clusterCIDR), maskSize, used);
  return cidr ? { action: 'assign', cidr } : { action: 'full' };
}
