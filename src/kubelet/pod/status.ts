import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from 'kubernetes-types/core/v1.js';
import type { ContainerInfo } from '../runtime/types.js';
import { parseQuantity } from './quantity.js';

/** What the pod worker knows about one container of a pod. */
export interface ContainerView {
  name: string;
  image: string;
  /** newest runtime instance, and the one before it */
  latest?: ContainerInfo;
  previous?: ContainerInfo;
  /** set when the container is not running for a known reason (ContainerCreating, CrashLoopBackOff ...) */
  waiting?: { reason: string; message?: string };
  /** the latest instance will not be restarted (restartPolicy says so) */
  final: boolean;
  ready: boolean;
  started: boolean;
}

export interface PodView {
  init: ContainerView[];
  app: ContainerView[];
  podIP: string;
  hostIP: string;
  initDone: boolean;
  initFailed: boolean;
  runtime: string;
  /** a reason when the sandbox is not ready */
  sandboxError?: string;
}

const iso = (ms: number): string => new Date(ms || Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');

function terminated(c: ContainerInfo, runtime: string): ContainerState {
  return {
    terminated: {
      exitCode: c.exitCode,
      reason: c.oomKilled ? 'OOMKilled' : c.exitCode === 0 ? 'Completed' : 'Error',
      startedAt: c.startedAt ? iso(c.startedAt) : undefined,
      finishedAt: c.finishedAt ? iso(c.finishedAt) : undefined,
      containerID: `${runtime}://${c.id}`,
    },
  };
}

/** Pure: one containerStatuses entry. */
export function renderContainerStatus(v: ContainerView, runtime: string): ContainerStatus {
  const l = v.latest;
  let state: ContainerState;
  if (l?.state === 'running') state = { running: { startedAt: iso(l.startedAt) } };
  else if (l?.state === 'exited' && (v.final || !v.waiting)) state = terminated(l, runtime);
  else state = { waiting: { reason: v.waiting?.reason ?? 'ContainerCreating', message: v.waiting?.message } };
  const lastSource = l?.state === 'exited' && !(v.final || !v.waiting) ? l : v.previous;
  const restartCount = l ? l.attempt : 0;
  return {
    name: v.name,
    state,
    lastState: lastSource && lastSource.state === 'exited' ? terminated(lastSource, runtime) : {},
    ready: v.ready,
    started: v.started,
    restartCount,
    image: v.image,
    imageID: l?.imageId ?? '',
    containerID: l ? `${runtime}://${l.id}` : undefined,
  } as ContainerStatus;
}

/** Pure: the pod phase from its containers (restartPolicy decides what "all exited" means). */
export function podPhase(_pod: Pod, v: PodView): PodStatus['phase'] {
  if (v.initFailed) return 'Failed';
  if (!v.initDone) return 'Pending';
  if (v.app.some((c) => !c.latest)) return 'Pending';
  const allExited = v.app.every((c) => c.latest?.state === 'exited');
  if (!allExited) return 'Running';
  if (v.app.every((c) => c.final) && v.app.every((c) => c.latest?.exitCode === 0)) return 'Succeeded';
  if (v.app.every((c) => c.final)) return 'Failed';
  return 'Running';
}

/** Pure: Guaranteed / Burstable / BestEffort per the Kubernetes rules. */
export function qosClass(pod: Pod): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const all: Container[] = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const lim = c.resources?.limits ?? {};
    const req = c.resources?.requests ?? {};
    for (const r of ['cpu', 'memory']) {
      const l = lim[r];
      const q = req[r] ?? l;
      if (l !== undefined || q !== undefined) any = true;
      if (l === undefined || parseQuantity(l) !== parseQuantity(q)) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

function condition(prev: PodCondition[] | undefined, type: string, ok: boolean, reason?: string, now = new Date()): PodCondition {
  const status = ok ? 'True' : 'False';
  const old = prev?.find((c) => c.type === type);
  const t = old && old.status === status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { type, status, lastProbeTime: null, lastTransitionTime: t, ...(ok || !reason ? {} : { reason }) } as unknown as PodCondition;
}

/** Pure: the pod status the kubelet reports for `v` (conditions keep their transition times). */
export function renderPodStatus(pod: Pod, v: PodView, now = new Date()): PodStatus {
  const prev = pod.status?.conditions;
  const phase = podPhase(pod, v);
  const containersReady = v.app.length > 0 && v.app.every((c) => c.ready);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const conditions: PodCondition[] = [
    condition(prev, 'PodReadyToStartContainers', !!v.podIP && !terminal, undefined, now),
    condition(prev, 'Initialized', v.initDone, 'ContainersNotInitialized', now),
    condition(prev, 'Ready', containersReady && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady', now),
    condition(prev, 'ContainersReady', containersReady && !terminal, terminal ? 'PodCompleted' : 'ContainersNotReady', now),
    prev?.find((c) => c.type === 'PodScheduled') ?? condition(prev, 'PodScheduled', true, undefined, now),
  ];
  const startTime = pod.status?.startTime ?? now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    phase,
    conditions,
    hostIP: v.hostIP,
    hostIPs: [{ ip: v.hostIP }],
    podIP: v.podIP || undefined,
    podIPs: v.podIP ? [{ ip: v.podIP }] : undefined,
    startTime,
    qosClass: qosClass(pod),
    initContainerStatuses: v.init.length ? v.init.map((c) => renderContainerStatus(c, v.runtime)) : undefined,
    containerStatuses: v.app.map((c) => renderContainerStatus(c, v.runtime)),
    ...(v.sandboxError ? { message: v.sandboxError } : {}),
  };
}
