import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import type { ApiClient } from './types.js';
import { componentLogger } from '../util/log.js';

const log = componentLogger('events');

export interface EventRecorder {
  /** type Normal|Warning; reason CamelCase (ScalingReplicaSet, FailedScheduling ...) */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/** Events written at once per recorder; the rest wait in order (a burst never crowds out other requests). */
const MAX_IN_FLIGHT = 4;
/** Events waiting beyond this many are dropped, oldest first (as the Kubernetes broadcaster does). */
const MAX_QUEUED = 5000;

/**
 * Writes core/v1 Events about objects so `kubectl describe` tells the story. Repeats of the same
 * (object, reason, message) within the process bump `count` instead of creating new Events.
 * Writes go out a few at a time, in order. Failures are logged, never thrown: events are best-effort.
 */
export class ApiEventRecorder implements EventRecorder {
  private readonly seen = new Map<string, { name: string; namespace: string; count: number }>();
  private readonly pending: (() => Promise<void>)[] = [];
  private inFlight = 0;
  constructor(private readonly client: ApiClient, private readonly component: string, private readonly host?: string) {}

  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (this.pending.length >= MAX_QUEUED) this.pending.shift();
    const now = new Date().toISOString();
    this.pending.push(() => this.write(obj, type, reason, message, now).catch((err) => log.debug({ err: String(err), reason }, 'event write failed')));
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.pending.length > 0) {
      const next = this.pending.shift()!;
      this.inFlight++;
      void next().finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async write(obj: KubeObject, type: string, reason: string, message: string, now: string): Promise<void> {
    const m = obj.metadata ?? {};
    const namespace = m.namespace || 'default';
    const key = `${m.uid}|${reason}|${message}`;
    const prev = this.seen.get(key);
    if (prev) {
      prev.count++;
      await this.client.patch(R.events, prev.name, { count: prev.count, lastTimestamp: now }, { namespace, type: 'merge' });
      return;
    }
    const name = `${m.name}.${Date.now().toString(16)}${Math.random().toString(16).slice(2, 6)}`;
    this.seen.set(key, { name, namespace, count: 1 });
    if (this.seen.size > 5000) this.seen.delete(this.seen.keys().next().value as string);
    await this.client.create(
      R.events,
      {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion },
        type,
        reason,
        message,
        source: { component: this.component, host: this.host },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
      namespace,
    );
  }
}

/** Keeps events in memory, for unit tests. */
export class FakeEventRecorder implements EventRecorder {
  readonly events: { key: string; type: string; reason: string; message: string }[] = [];
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const m = obj.metadata ?? {};
    this.events.push({ key: m.namespace ? `${m.namespace}/${m.name}` : `${m.name}`, type, reason, message });
  }
}
