/**
 * Test harness for the workload controllers: a controller manager over any ApiClient (the real
 * in-process apiserver, or FakeApiClient), a fake clock, fake nodes and a fake kubelet that binds
 * unscheduled pods round-robin (standing in for the scheduler) and marks them Running/Ready, or
 * Succeeded/Failed as a test decides.
 */
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../../../src/api/object.js';
import { objectKey } from '../../../src/api/object.js';
import { R } from '../../../src/api/registry.js';
import { FakeEventRecorder } from '../../../src/client/events.js';
import { InformerFactory } from '../../../src/client/factory.js';
import type { ApiClient, Informer } from '../../../src/client/types.js';
import { defaultControllerOptions, realClock, type Clock, type ControllerContext } from '../../../src/controllers/context.js';
import { startControllerManager } from '../../../src/controllers/manager.js';

/** run: Running+Ready; notready: Running, not Ready; succeed/fail: terminal; pending: never bound nor started */
export type PodFate = 'run' | 'notready' | 'succeed' | 'fail' | 'pending';

export class FakeClock implements Clock {
  constructor(public t = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Harness {
  client: ApiClient;
  clock: Clock;
  events: FakeEventRecorder;
  informers: InformerFactory;
  pods: Informer<Pod & KubeObject>;
  stop(): Promise<void>;
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export type Truthy<T> = Exclude<T, false | '' | 0 | null | undefined>;

export async function eventually<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000): Promise<Truthy<T>> {
  const start = Date.now();
  const deadline = start + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) {
        if (process.env.SKIFF_TEST_PROFILE) process.stderr.write(`# ${what}: ${Date.now() - start} ms\n`);
        return v as Truthy<T>;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function createNodes(client: ApiClient, names: string[], extra: (name: string) => Record<string, unknown> = () => ({})): Promise<void> {
  for (const name of names) {
    await client.create(R.nodes, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      ...extra(name),
      status: { conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu: '8', memory: '16Gi', pods: '110' } },
    });
  }
}

/** Binds a pod with the binding subresource, or by a spec patch where the client has none (fake). */
async function bind(client: ApiClient, pod: Pod, node: string): Promise<void> {
  const ns = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  try {
    const r = await client.request('POST', `/api/v1/namespaces/${ns}/pods/${name}/binding`, {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace: ns },
      target: { apiVersion: 'v1', kind: 'Node', name: node },
    });
    if (r.status < 300) return;
  } catch {
    // FakeApiClient serves no subresources
  }
  await client.patch(R.pods, name, { spec: { nodeName: node } }, { namespace: ns, type: 'merge' });
}

/**
 * The fake kubelet: binds, then sets the status `fate(pod)` asks for; pods being deleted are removed
 * at once (grace period 0).
 */
export function startFakeKubelet(client: ApiClient, pods: Informer<Pod & KubeObject>, nodes: string[], fate: (pod: Pod) => PodFate = () => 'run', opts: { bind?: boolean } = {}): () => void {
  let rr = 0;
  let stopped = false;
  const busy = new Set<string>();
  const handle = async (pod: Pod): Promise<void> => {
    const ns = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    if (pod.metadata?.deletionTimestamp) {
      await client.delete(R.pods, name, ns, { gracePeriodSeconds: 0 }).catch(() => undefined);
      return;
    }
    const want = fate(pod);
    if (want === 'pending') return;
    if (!pod.spec?.nodeName) {
      if (opts.bind === false) return;
      const affinityNode = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.[0]?.values?.[0];
      await bind(client, pod, affinityNode ?? nodes[rr++ % nodes.length]);
      return;
    }
    const phase = want === 'run' || want === 'notready' ? 'Running' : want === 'succeed' ? 'Succeeded' : 'Failed';
    if (pod.status?.phase === phase) return;
    const now = new Date().toISOString();
    const ready = want === 'run' ? 'True' : 'False';
    await client.patch(
      R.pods,
      name,
      {
        status: {
          phase,
          podIP: `10.244.0.${(Math.abs(hash(name)) % 250) + 2}`,
          startTime: now,
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            { type: 'Ready', status: ready, lastTransitionTime: now },
            { type: 'ContainersReady', status: ready, lastTransitionTime: now },
          ],
          containerStatuses: (pod.spec.containers ?? []).map((c) => ({ name: c.name, image: c.image, imageID: '', ready: want === 'run', restartCount: 0, state: want === 'run' || want === 'notready' ? { running: { startedAt: now } } : { terminated: { exitCode: want === 'succeed' ? 0 : 1, reason: want === 'succeed' ? 'Completed' : 'Error' } } })),
        },
      },
      { namespace: ns, type: 'merge', subresource: 'status' },
    );
  };
  const kick = (pod: Pod): void => {
    const key = objectKey(pod);
    if (stopped || busy.has(key)) return;
    busy.add(key);
    void handle(pod)
      .catch(() => undefined)
      .finally(() => {
        busy.delete(key);
        const cur = pods.get(key);
        if (cur && cur.metadata?.resourceVersion !== pod.metadata?.resourceVersion) kick(cur);
      });
  };
  pods.addHandlers({ add: kick, update: (_o, n) => kick(n) });
  return () => {
    stopped = true;
  };
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

/** A controller manager (only `controllers`) over `client`, with a fake kubelet on `nodes`. */
export async function startHarness(
  client: ApiClient,
  opts: { controllers: string[]; nodes?: string[]; fate?: (pod: Pod) => PodFate; clock?: FakeClock; tuning?: { jobBackoffBaseMs?: number; cronResyncMs?: number; namespaceRecheckMs?: number } },
): Promise<Harness> {
  const clock: Clock = opts.clock ?? realClock;
  const events = new FakeEventRecorder();
  const informers = new InformerFactory(client);
  const ctx: ControllerContext = { client, informers, recorder: () => events, clock, options: { ...defaultControllerOptions, workers: 4 } };
  const pods = informers.get<Pod & KubeObject>(R.pods);
  let stopKubelet = (): void => undefined;
  if (opts.nodes) stopKubelet = startFakeKubelet(client, pods, opts.nodes, opts.fate);
  const mgr = await startControllerManager(ctx, { controllers: opts.controllers, tuning: opts.tuning });
  return {
    client,
    clock,
    events,
    informers,
    pods,
    stop: async () => {
      stopKubelet();
      await mgr.stop();
    },
  };
}
