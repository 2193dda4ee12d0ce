import type { ApiClient } from '../client/types.js';
import type { Host } from '../host/host.js';
import { startNetpolAgent } from './agent.js';

export { startNetpolAgent, type NetpolHandle, type NetpolOptions } from './agent.js';
export { renderNetpol } from './render.js';
export { NetpolApplier } from './apply.js';

/**
 * The node agent's NetworkPolicy engine: informers over pods, namespaces and networkpolicies;
 * programs this node's pods (spec.nodeName === nodeName, with pod IPs) in `host`'s network
 * namespace. Resolves once the KNOWN gate is in place and the first full sync is done.
 */
export async function startNetpol(opts: {
  client: ApiClient;
  host: Host;
  nodeName: string;
  podCIDR?: string;
  dropLog?: { path?: string; ratePerSec?: number } | false;
}): Promise<{ stop(): Promise<void> }> {
  const h = await startNetpolAgent(opts);
  return { stop: () => h.stop() };
}
