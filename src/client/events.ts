import type { KubeObject } from '../api/object.js';
import { R } from '../api/registry.js';
import type { ApiClient } from './types.js';
import { componentLogger } from '../util/log.js';

const log = componentLogger('events');

export interface EventRecorder {
  /** type Normal|Warning; reason CamelCase (ScalingReplicaSet, FailedScheduling ...) */
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/**
 * Writes core/v1 Events about objects so `kubectl describe` tells the story. Repeats of the same
 * (object, reason, message) within the process bump `count` instead of creating new Events.
 * Failures are logged, never thrown: events are best-effort.
 */
export class ApiEventRecorder implements EventRecorder {
  private readonly seen = new Map<string, { name: string; namespace: string; count: number }>();
  constructor(private readonly client: ApiClient, private readonly component: string, private readonly host?: string) {}

  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.write(obj, type, reason, message).catch((err) => log.debug({ err: String(err), reason }, 'event write failed'));
  }

  private async write(obj: KubeObject, type: string, reason: string, message: string): Promise<void> {
    const m = obj.metadata ?? {};
    const namespace = m.namespace || 'default';
    const key = `${m.uid}|${reason}|${message}`;
    const now = new Date().toISOString();
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
