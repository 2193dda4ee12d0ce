// `skiff component NAME`: one component of `skiff up --split` in its own process. The supervisor
// (supervisor.ts) starts it with an IPC channel: the child reports "ready" over it once started, and
// exits when the channel closes (the supervisor died, even by kill -9), so no orphan outlives it.
import { InformerFactory } from '../client/factory.js';
import {
  adminClient,
  readClusterCerts,
  startApiserver,
  startControllers,
  startDnsComponent,
  startIngressComponent,
  startKubeletComponent,
  startNetpolComponent,
  startProxyComponent,
  startSchedulerComponent,
  type ClusterOptions,
} from './cluster.js';

/** Every component `skiff up --split` can run as its own process, in start order. */
export const COMPONENTS = ['apiserver', 'controller-manager', 'scheduler', 'dns', 'ingress', 'netpol', 'proxy', 'kubelet'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export const isComponent = (name: string): name is ComponentName => (COMPONENTS as readonly string[]).includes(name);

/** Starts component NAME in this process against the local apiserver; resolves with its stop. */
export async function startComponent(name: ComponentName, o: ClusterOptions, identity: string): Promise<{ stop(): Promise<void> }> {
  if (name === 'apiserver') return startApiserver(o);
  const pki = readClusterCerts(o.dataDir);
  const client = adminClient(o, pki, `skiff-${name}`);
  const informers = new InformerFactory(client);
  informers.start();
  const ctx = { client, informers, identity };
  const agent = { ...o, client, pki };
  const starters: Record<Exclude<ComponentName, 'apiserver'>, () => Promise<{ stop(): Promise<void> }>> = {
    'controller-manager': () => startControllers(o, ctx),
    scheduler: () => startSchedulerComponent(o, ctx),
    dns: () => startDnsComponent(o, client),
    ingress: () => startIngressComponent(o, client),
    netpol: () => startNetpolComponent(agent),
    proxy: () => startProxyComponent(agent),
    kubelet: () => startKubeletComponent(agent),
  };
  const h = await starters[name]();
  return {
    async stop() {
      await h.stop();
      informers.stop();
      client.close();
    },
  };
}
