import type { Lease } from 'kubernetes-types/coordination/v1.js';
import type { ControllerContext } from '../context.js';
import type { KubeObject } from '../../api/object.js';
import { objectKey } from '../../api/object.js';
import { R } from '../../api/registry.js';
import { componentLogger } from '../../util/log.js';
import { counter, gauge } from '../../util/metrics.js';
import { isNotFound } from '../../scheduler/apierr.js';
import type { NodeObj, PodObj } from '../../scheduler/cache.js';
import { Controller } from '../run.js';
import { desiredTaints, nodeHealth, planEvictions, unknownConditions, type NodeHealth } from './reconcile.js';

const log = componentLogger('nodelifecycle-controller');
const evictions = counter({ name: 'skiff_nodelifecycle_evictions_total', help: 'Pods evicted from tainted nodes' });
const unhealthy = gauge({ name: 'skiff_nodelifecycle_unhealthy_nodes', help: 'Nodes not Ready', labelNames: ['health'] as const });

type LeaseObj = KubeObject & Lease;
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/**
 * Node lifecycle: watches kubelet heartbeats (Leases in kube-node-lease and the node's Ready
 * condition). A node silent for nodeMonitorGracePeriodSeconds gets Ready=Unknown and the
 * unreachable NoExecute taint, its pods are marked not ready, and they are evicted once their
 * toleration runs out. Times come from ctx.clock (heartbeats are timed when observed, so clock
 * skew between hosts does not matter).
 */
export function startNodeLifecycleController(ctx: ControllerContext, opts: { monitorPeriodMs?: number } = {}): { stop(): void } {
  const nodes = ctx.informers.get<NodeObj>(R.nodes);
  const leases = ctx.informers.get<LeaseObj>(R.leases, { namespace: NODE_LEASE_NAMESPACE });
  const pods = ctx.informers.get<PodObj>(R.pods);
  pods.addIndex('nodeName', (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []));
  const recorder = ctx.recorder('node-controller');
  const c = new Controller({ name: 'nodelifecycle', log });
  /** per node: the last heartbeat fingerprint seen, and when (ctx.clock) it was seen */
  const heard = new Map<string, { print: string; at: number }>();
  const lastHealth = new Map<string, NodeHealth>();

  nodes.addHandlers(c.handlers());
  // a node's Lease has the node's name
  const { add, update } = c.handlers<LeaseObj>((l) => l.metadata?.name);
  leases.addHandlers({ add, update });
  const timer = setInterval(() => {
    for (const n of nodes.list()) c.enqueue(n.metadata!.name!);
  }, opts.monitorPeriodMs ?? 5000);

  const lastHeard = (node: NodeObj): number => {
    const name = node.metadata!.name!;
    const lease = leases.get(`${NODE_LEASE_NAMESPACE}/${name}`);
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    const print = `${lease?.spec?.renewTime ?? ''}|${ready?.lastHeartbeatTime ?? ''}|${ready?.status ?? ''}`;
    const prev = heard.get(name);
    // our own Unknown write changes the status but is no heartbeat
    if (!prev || (prev.print !== print && !(ready?.status === 'Unknown' && ready.reason?.startsWith('NodeStatus')))) heard.set(name, { print, at: ctx.clock.now() });
    else if (prev.print !== print) heard.set(name, { print, at: prev.at });
    return heard.get(name)!.at;
  };

  const sync = async (name: string): Promise<void> => {
    const node = nodes.get(name);
    if (!node) {
      heard.delete(name);
      lastHealth.delete(name);
      return;
    }
    const now = ctx.clock.now();
    const nowIso = new Date(now).toISOString();
    const health = nodeHealth(node, lastHeard(node), now, ctx.options.nodeMonitorGracePeriodSeconds);
    if (lastHealth.get(name) !== health) {
      if (health !== 'Ready') recorder.event(node, 'Normal', 'NodeNotReady', `Node ${name} status is now: ${health === 'Unknown' ? 'NodeStatusUnknown' : 'NodeNotReady'}`);
      else if (lastHealth.has(name)) recorder.event(node, 'Normal', 'NodeReady', `Node ${name} status is now: NodeReady`);
      lastHealth.set(name, health);
      unhealthy.set({ health: 'Unknown' }, [...lastHealth.values()].filter((h) => h === 'Unknown').length);
      unhealthy.set({ health: 'NotReady' }, [...lastHealth.values()].filter((h) => h === 'NotReady').length);
    }
    const onNode = pods.byIndex('nodeName', name);
    if (health === 'Unknown') {
      const conds = unknownConditions(node, nowIso);
      if (conds) {
        await ctx.client.patch(R.nodes, name, { status: { conditions: conds } }, { subresource: 'status', type: 'merge' });
        log.info({ node: name }, 'node silent: Ready=Unknown');
        await markPodsNotReady(ctx, onNode, nowIso);
      }
    }
    const taints = desiredTaints(node, health, nowIso);
    if (taints) await ctx.client.update(R.nodes, { ...node, spec: { ...node.spec, taints } });
    const effective = taints ?? node.spec?.taints ?? [];
    const plan = planEvictions(onNode, effective, ctx.options.podEvictionTimeoutSeconds, now);
    for (const p of plan.evict) {
      recorder.event(p, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${objectKey(p)}`);
      await ctx.client.delete(R.pods, p.metadata!.name!, p.metadata!.namespace).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      evictions.inc();
    }
    if (plan.nextAtMs !== undefined) c.queue.addAfter(name, Math.max(10, plan.nextAtMs - now));
  };

  return c.run({ informers: [nodes, leases, pods], workers: ctx.options.workers, sync, onStop: () => clearInterval(timer) });
}

/** Ready=False (reason NodeNotReady) on the pods of a lost node, so Services stop sending them traffic. */
async function markPodsNotReady(ctx: ControllerContext, list: readonly PodObj[], nowIso: string): Promise<void> {
  for (const p of list) {
    const conds = p.status?.conditions ?? [];
    const ready = conds.find((c) => c.type === 'Ready');
    if (!ready || ready.status === 'False') continue;
    const next = conds.map((c) => (c.type === 'Ready' ? { ...c, status: 'False', reason: 'NodeNotReady', lastTransitionTime: nowIso } : c));
    await ctx.client.patch(R.pods, p.metadata!.name!, { status: { conditions: next } }, { namespace: p.metadata!.namespace, subresource: 'status', type: 'merge' }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }
}
