import type { KubeObject } from '../api/object.js';
import { objectKey } from '../api/object.js';
import { R } from '../api/registry.js';
import type { EventRecorder } from '../client/events.js';
import type { InformerFactory } from '../client/factory.js';
import type { ApiClient, Informer } from '../client/types.js';
import { componentLogger } from '../util/log.js';
import { counter, gauge, histogram } from '../util/metrics.js';
import { isNotFound } from './apierr.js';
import { SchedulerCache, toPodInfo, type NodeObj, type PodObj } from './cache.js';
import { schedulePod, type ClusterLookups, type FilterPlugin, type PvcObj, type PvObj, type ScorePlugin } from './framework.js';
import { defaultFilters, defaultScores } from './plugins/index.js';
import { SchedulingQueue } from './queue.js';

const log = componentLogger('scheduler');
const attempts = counter({ name: 'skiff_scheduler_schedule_attempts_total', help: 'Scheduling attempts by result', labelNames: ['result'] as const });
const latency = histogram({ name: 'skiff_scheduler_scheduling_algorithm_seconds', help: 'Time to filter and score one pod', buckets: [0.0001, 0.0005, 0.002, 0.01, 0.05, 0.2] });
const pending = gauge({ name: 'skiff_scheduler_pending_pods', help: 'Pods waiting in the scheduling queue', labelNames: ['queue'] as const });

/** Writes a pod's placement. The API binder POSTs pods/<name>/binding. */
export interface Binder {
  bind(pod: PodObj, nodeName: string): Promise<void>;
}

export class ApiBinder implements Binder {
  constructor(private readonly client: ApiClient) {}
  async bind(pod: PodObj, nodeName: string): Promise<void> {
    const ns = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const res = await this.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}/binding`, {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace: ns, uid: pod.metadata?.uid },
      target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
    });
    if (res.status >= 300) {
      const msg = (res.body as { message?: string } | undefined)?.message ?? `status ${res.status}`;
      throw Object.assign(new Error(`binding ${ns}/${name} to ${nodeName}: ${msg}`), { statusCode: res.status });
    }
  }
}

export interface SchedulerOptions {
  client: ApiClient;
  informers: InformerFactory;
  recorder: EventRecorder;
  schedulerName?: string;
  binder?: Binder;
  filters?: readonly FilterPlugin[];
  scores?: readonly ScorePlugin[];
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often parked unschedulable pods are retried even without a cluster event (default 30 s). */
  flushIntervalMs?: number;
}

/** `Scheduled` events are written once no binding has started for this long (or have waited the max). */
const EVENT_QUIET_MS = 500;
const EVENT_MAX_DELAY_MS = 5000;

const prioOf = (p: PodObj | undefined) => p?.spec?.priority ?? 0;
const isTerminal = (p: PodObj) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
const schedulingRelevant = (p: PodObj) => JSON.stringify([p.spec, p.metadata?.labels, p.metadata?.annotations]);

/**
 * The scheduling loop: pops a pod, filters and scores the cached nodes synchronously (one
 * consistent view), assumes the pod on the chosen node and binds in the background, so the next
 * pod is scheduled while the binding is in flight.
 */
export class Scheduler {
  readonly cache = new SchedulerCache();
  readonly queue: SchedulingQueue;
  private readonly pods: Informer<PodObj>;
  private readonly nodes: Informer<NodeObj>;
  private readonly pvcs: Informer<PvcObj>;
  private readonly pvs: Informer<PvObj>;
  private readonly binder: Binder;
  private readonly name: string;
  private readonly lookups: ClusterLookups;
  private running = false;
  private cycles = 0;
  private flushTimer?: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<void>>();
  private readonly deferred: { pod: PodObj; message: string; at: number }[] = [];
  private eventTimer?: NodeJS.Timeout;
  private lastBindAt = 0;

  constructor(private readonly opts: SchedulerOptions) {
    this.name = opts.schedulerName ?? 'default-scheduler';
    this.binder = opts.binder ?? new ApiBinder(opts.client);
    this.queue = new SchedulingQueue({ initialBackoffMs: opts.initialBackoffMs, maxBackoffMs: opts.maxBackoffMs });
    this.pods = opts.informers.get<PodObj>(R.pods);
    this.nodes = opts.informers.get<NodeObj>(R.nodes);
    this.pvcs = opts.informers.get<PvcObj>(R.persistentvolumeclaims);
    this.pvs = opts.informers.get<PvObj>(R.persistentvolumes);
    this.lookups = { pvc: (ns, name) => this.pvcs.get(`${ns}/${name}`), pv: (name) => this.pvs.get(name) };
    this.registerHandlers();
  }

  private responsible(p: PodObj): boolean {
    return (p.spec?.schedulerName ?? 'default-scheduler') === this.name && !p.spec?.nodeName && !p.metadata?.deletionTimestamp && !isTerminal(p);
  }

  private registerHandlers(): void {
    const moveAll = () => this.queue.moveAllUnschedulable((k) => prioOf(this.pods.get(k)));
    this.nodes.addHandlers({
      add: (n) => {
        this.cache.upsertNode(n);
        moveAll();
      },
      update: (o, n) => {
        this.cache.upsertNode(n);
        if (JSON.stringify([o.spec, o.metadata?.labels, o.status?.allocatable]) !== JSON.stringify([n.spec, n.metadata?.labels, n.status?.allocatable])) moveAll();
      },
      delete: (n) => this.cache.removeNode(n.metadata!.name!),
    });
    this.pods.addHandlers({
      add: (p) => this.onPod(undefined, p),
      update: (o, p) => this.onPod(o, p),
      delete: (p) => {
        const key = objectKey(p);
        this.queue.forget(key);
        if (this.cache.isPlaced(key)) {
          this.cache.removePod(key);
          moveAll();
        }
      },
    });
    const volumeChange = { add: moveAll, update: moveAll };
    this.pvcs.addHandlers(volumeChange);
    this.pvs.addHandlers(volumeChange);
  }

  private onPod(old: PodObj | undefined, p: PodObj): void {
    const key = objectKey(p);
    if (p.spec?.nodeName) {
      const wasPlaced = this.cache.isPlaced(key);
      this.cache.upsertPod(p);
      if (isTerminal(p) && wasPlaced) this.queue.moveAllUnschedulable((k) => prioOf(this.pods.get(k)));
      this.queue.forget(key);
      return;
    }
    if (!this.responsible(p)) {
      this.queue.forget(key);
      return;
    }
    // status-only updates (our own PodScheduled condition) must not retry the pod at once
    if (old && !this.cache.isAssumed(key) && schedulingRelevant(old) === schedulingRelevant(p)) return;
    if (!this.cache.isAssumed(key)) this.queue.add(key, prioOf(p));
  }

  async start(): Promise<void> {
    await Promise.all([this.pods.synced(), this.nodes.synced(), this.pvcs.synced(), this.pvs.synced()]);
    this.running = true;
    this.flushTimer = setInterval(() => this.queue.moveAllUnschedulable((k) => prioOf(this.pods.get(k))), this.opts.flushIntervalMs ?? 30_000);
    void this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.queue.close();
    await Promise.allSettled([...this.inflight]);
    this.maybeFlushEvents(true);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const key = await this.queue.pop();
      if (key === undefined) return;
      try {
        this.scheduleOne(key);
      } catch (err) {
        log.error({ key, err: String(err) }, 'scheduling cycle failed');
        this.queue.retryLater(key);
      }
      // let informer events and binding completions run between cycles
      const s = this.queue.stats();
      if (s.active === 0 || ++this.cycles % 10 === 0) {
        pending.set({ queue: 'active' }, s.active);
        pending.set({ queue: 'backoff' }, s.backoff);
        pending.set({ queue: 'unschedulable' }, s.unschedulable);
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  /** One scheduling cycle for one pod (synchronous up to the background binding). */
  scheduleOne(key: string): void {
    const pod = this.pods.get(key);
    if (!pod || !this.responsible(pod) || this.cache.isPlaced(key)) return;
    const end = latency.startTimer();
    const result = schedulePod({ pod: toPodInfo(pod), nodes: this.cache.nodeList(), lookups: this.lookups, data: new Map() }, this.opts.filters ?? defaultFilters, this.opts.scores ?? defaultScores);
    end();
    if (result.node === undefined) {
      attempts.inc({ result: 'unschedulable' });
      this.queue.markUnschedulable(key);
      this.opts.recorder.event(pod, 'Warning', 'FailedScheduling', result.message);
      void this.setUnschedulableCondition(pod, result.message);
      log.debug({ pod: key, message: result.message }, 'unschedulable');
      return;
    }
    const nodeName = result.node;
    this.cache.assume(pod, nodeName);
    this.lastBindAt = Date.now();
    const p = this.bind(pod, key, nodeName);
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async bind(pod: PodObj, key: string, nodeName: string): Promise<void> {
    try {
      await this.binder.bind(pod, nodeName);
      attempts.inc({ result: 'scheduled' });
      this.queue.forget(key);
      this.deferEvent(pod, `Successfully assigned ${key} to ${nodeName}`);
    } catch (err) {
      attempts.inc({ result: 'error' });
      this.cache.forget(key);
      if (isNotFound(err)) return this.queue.forget(key);
      log.warn({ pod: key, node: nodeName, err: String(err) }, 'binding failed');
      this.opts.recorder.event(pod, 'Warning', 'FailedScheduling', `Binding rejected: ${String((err as Error).message ?? err)}`);
      this.queue.retryLater(key, prioOf(pod));
    }
  }

  /**
   * Bindings are the critical path and share the apiserver with event writes (one `Scheduled`
   * event per pod would be a fifth of a rollout's writes): the events wait until the scheduler has
   * been quiet (no binding in flight or started) for EVENT_QUIET_MS, at most EVENT_MAX_DELAY_MS,
   * so a burst of pods, a rollout's slow-start batches included, binds first.
   */
  private deferEvent(pod: PodObj, message: string): void {
    if (this.deferred.length >= 10_000) this.deferred.shift();
    this.deferred.push({ pod, message, at: Date.now() });
    this.eventTimer ??= setInterval(() => this.maybeFlushEvents(), EVENT_QUIET_MS / 2);
  }

  private maybeFlushEvents(force = false): void {
    const oldest = this.deferred[0]?.at;
    const now = Date.now();
    const busy = this.inflight.size > 0 || now - this.lastBindAt < EVENT_QUIET_MS;
    if (!force && oldest !== undefined && busy && now - oldest < EVENT_MAX_DELAY_MS) return;
    for (const { pod, message } of this.deferred.splice(0)) this.opts.recorder.event(pod, 'Normal', 'Scheduled', message);
    if (this.eventTimer) clearInterval(this.eventTimer);
    this.eventTimer = undefined;
  }

  private async setUnschedulableCondition(pod: PodObj, message: string): Promise<void> {
    const now = new Date().toISOString();
    const others = (pod.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
    const prev = (pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
    if (prev?.status === 'False' && prev.message === message) return;
    const cond = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: now };
    try {
      await this.opts.client.patch<KubeObject>(R.pods, pod.metadata!.name!, { status: { conditions: [...others, cond] } }, { namespace: pod.metadata!.namespace, subresource: 'status', type: 'merge' });
    } catch (err) {
      log.debug({ pod: objectKey(pod), err: String(err) }, 'could not set PodScheduled condition');
    }
  }
}
