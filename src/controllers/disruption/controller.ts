import type { ControllerContext } from '../context.js';
import { objectKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import type { KubeObject } from '../../api/object.js';
import { byNamespace } from '../../client/informer.js';
import { componentLogger } from '../../util/log.js';
import { isNotFound } from '../../scheduler/apierr.js';
import type { PodObj } from '../../scheduler/cache.js';
import { Controller } from '../run.js';
import { computePdbStatus, pdbSelects, type PdbObj } from './reconcile.js';

const log = componentLogger('disruption-controller');

type Scalable = KubeObject & { spec?: { replicas?: number } };

/** Keeps PodDisruptionBudget status (healthy, desired, expected, disruptionsAllowed) current. */
export function startDisruptionController(ctx: ControllerContext): { stop(): void } {
  const pdbs = ctx.informers.get<PdbObj>(R.poddisruptionbudgets);
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('namespace', byNamespace);
  const rss = ctx.informers.get<Scalable>(R.replicasets);
  const stss = ctx.informers.get<Scalable>(R.statefulsets);
  pdbs.addIndex('namespace', byNamespace);
  const c = new Controller({ name: 'disruption', log });
  pdbs.addHandlers(c.handlers());
  pods.addHandlers(c.handlers<PodObj>((p) => pdbs.byIndex('namespace', p.metadata?.namespace ?? '').filter((pdb) => pdbSelects(pdb, p)).map(objectKey)));
  const replicasOf = (kind: string, name: string, ns: string) => {
    const inf = kind === 'ReplicaSet' ? rss : kind === 'StatefulSet' ? stss : undefined;
    return inf?.get(`${ns}/${name}`)?.spec?.replicas;
  };
  const sync = async (key: string): Promise<void> => {
    const pdb = pdbs.get(key);
    if (!pdb) return;
    const status = computePdbStatus(pdb, pods.byIndex('namespace', pdb.metadata?.namespace ?? ''), replicasOf, ctx.clock.now());
    const same = JSON.stringify({ ...status, conditions: undefined }) === JSON.stringify({ ...(pdb.status ?? {}), conditions: undefined }) && pdb.status?.conditions?.[0]?.status === status.conditions?.[0]?.status;
    if (same) return;
    await ctx.client.update(R.poddisruptionbudgets, { ...pdb, status }, { subresource: 'status' }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    // disrupted pods expire: look again later
    if (status.disruptedPods) c.queue.addAfter(key, 30_000);
  };
  return c.run({ informers: [pdbs, pods, rss, stss], workers: ctx.options.workers, sync });
}
