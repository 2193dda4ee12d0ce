import type { ApiCore } from './core.js';
import { findResource } from '../api/registry.js';
import { StatusError } from './errors.js';

/** The `kubernetes` Service in default (first address of the service range) and its Endpoints. */
export async function ensureKubernetesService(core: ApiCore, advertise: { address: string; port: number }): Promise<void> {
  const svcInfo = findResource('', 'services')!;
  const epInfo = findResource('', 'endpoints')!;
  const ip = core.allocators.firstIP();
  const existing = await core.storage(svcInfo).tryGet('kubernetes', 'default');
  if (!existing) {
    await core
      .create(svcInfo, 'default', {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
        spec: { type: 'ClusterIP', clusterIP: ip, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: advertise.port }], sessionAffinity: 'None' },
      }, {})
      .catch(async (err) => {
        if (err instanceof StatusError && err.code === 409) return;
        // another apiserver on the same store is creating it: its claim on the IP makes ours a 422
        if (err instanceof StatusError && err.code === 422) {
          for (let i = 0; i < 50; i++) {
            if (await core.storage(svcInfo).tryGet('kubernetes', 'default')) return;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        throw err;
      });
  }
  const ep = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [{ addresses: [{ ip: advertise.address }], ports: [{ name: 'https', port: advertise.port, protocol: 'TCP' }] }],
  };
  const cur = await core.storage(epInfo).tryGet('kubernetes', 'default');
  if (!cur) await core.create(epInfo, 'default', ep, {}).catch(() => undefined);
  else if (JSON.stringify(cur.subsets) !== JSON.stringify(ep.subsets)) await core.update(epInfo, 'default', 'kubernetes', { ...ep, metadata: { ...ep.metadata, resourceVersion: cur.metadata?.resourceVersion } }, {}).catch(() => undefined);
}
