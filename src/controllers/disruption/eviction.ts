import type { FastifyInstance } from 'fastify';
import type { PodDisruptionBudgetStatus } from 'kubernetes-types/policy/v1.js';
import { R } from '../../api/registry.js';
import type { ApiClient } from '../../client/types.js';
import { apiErrorStatus, isConflict } from '../../scheduler/apierr.js';
import type { PodObj } from '../../scheduler/cache.js';
import { componentLogger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { isHealthy, pdbSelects, type PdbObj } from './reconcile.js';

const log = componentLogger('eviction');
const evictionResults = counter({ name: 'skiff_eviction_requests_total', help: 'pods/eviction requests by result', labelNames: ['result'] as const });

export type EvictionDecision =
  | { allowed: true; pdb?: PdbObj }
  | { allowed: false; code: 429 | 500; reason: string; message: string; causes?: { reason: string; message: string }[] };

/**
 * May this pod be evicted now? Pods that are not running (pending, finished, being deleted) and
 * pods no budget selects may always go. More than one budget is refused (500, as Kubernetes
 * does). A budget with no disruptions left refuses with 429; an unhealthy pod may go while the
 * budget is otherwise met (unhealthyPodEvictionPolicy IfHealthyBudget).
 */
export function checkEviction(pod: PodObj, pdbs: readonly PdbObj[]): EvictionDecision {
  const phase = pod.status?.phase;
  if (pod.metadata?.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending') return { allowed: true };
  const matching = pdbs.filter((p) => pdbSelects(p, pod));
  if (matching.length === 0) return { allowed: true };
  if (matching.length > 1) return { allowed: false, code: 500, reason: 'InternalError', message: 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.' };
  const pdb = matching[0];
  const st: Partial<PodDisruptionBudgetStatus> = pdb.status ?? {};
  if (!isHealthy(pod)) {
    const alwaysAllow = pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow';
    if (alwaysAllow || (st.currentHealthy ?? 0) >= (st.desiredHealthy ?? 0)) return { allowed: true };
  }
  if ((st.observedGeneration ?? 0) < (pdb.metadata?.generation ?? 0) || (st.disruptionsAllowed ?? 0) <= 0) {
    return {
      allowed: false,
      code: 429,
      reason: 'TooManyRequests',
      message: "Cannot evict pod as it would violate the pod's disruption budget.",
      causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb.metadata!.name} needs ${st.desiredHealthy ?? 0} healthy pods and has ${st.currentHealthy ?? 0} currently` }],
    };
  }
  return isHealthy(pod) ? { allowed: true, pdb } : { allowed: true };
}

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 300 ? 'Success' : 'Failure', reason: code < 300 ? undefined : reason, message, code, ...(details ? { details } : {}) };
}

/**
 * The pods/eviction subresource as a fastify plugin for the apiserver:
 * POST /api/v1/namespaces/:ns/pods/:name/eviction. Takes one disruption out of the budget
 * (status update with optimistic concurrency, so two evictions cannot both take the last one),
 * then deletes the pod with the Eviction's deleteOptions.
 */
export function evictionPlugin(opts: { client: ApiClient }): (app: FastifyInstance) => Promise<void> {
  const { client } = opts;
  return async (app) => {
    app.post<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/pods/:name/eviction', async (req, reply) => {
      const { ns, name } = req.params;
      const body = (typeof req.body === 'string' ? JSON.parse(req.body || '{}') : Buffer.isBuffer(req.body) ? JSON.parse(req.body.toString() || '{}') : (req.body ?? {})) as {
        deleteOptions?: { gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } };
      };
      for (let attempt = 0; ; attempt++) {
        try {
          const pod = await client.get<PodObj>(R.pods, name, ns);
          const pdbs = (await client.list<PdbObj>(R.poddisruptionbudgets, { namespace: ns })).items;
          const d = checkEviction(pod, pdbs);
          if (!d.allowed) {
            evictionResults.inc({ result: String(d.code) });
            return reply.code(d.code).send(status(d.code, d.reason, d.message, d.causes ? { causes: d.causes } : undefined));
          }
          if (d.pdb) {
            const st: Partial<PodDisruptionBudgetStatus> = d.pdb.status ?? {};
            const next = {
              ...d.pdb,
              status: { ...st, disruptionsAllowed: (st.disruptionsAllowed ?? 1) - 1, disruptedPods: { ...(st.disruptedPods ?? {}), [name]: new Date().toISOString() } },
            } as PdbObj;
            await client.update(R.poddisruptionbudgets, next, { subresource: 'status' });
          }
          await client.delete(R.pods, name, ns, { gracePeriodSeconds: body.deleteOptions?.gracePeriodSeconds, preconditions: body.deleteOptions?.preconditions });
          evictionResults.inc({ result: '201' });
          log.info({ pod: `${ns}/${name}`, pdb: d.pdb?.metadata?.name }, 'pod evicted');
          return reply.code(201).send(status(201, '', ''));
        } catch (err) {
          if (isConflict(err) && attempt < 5) continue;
          const code = apiErrorStatus(err) ?? 500;
          evictionResults.inc({ result: String(code) });
          const reason = code === 404 ? 'NotFound' : code === 409 ? 'Conflict' : 'InternalError';
          return reply.code(code).send(status(code, reason, err instanceof Error ? err.message : String(err)));
        }
      }
    });
  };
}
