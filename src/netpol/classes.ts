import { matches, type Selector } from '../api/labels.js';
import type { Direction, NamespaceInfo, Peer, PodInfo, PolicyInfo, Snapshot } from './model.js';
import { podKey } from './model.js';
import { podPeerKey, selectorKey } from './select.js';

/**
 * The per-render index behind `render.ts`. Pods of one namespace with identical labels form a
 * label class: every selector matches the whole class or none of it, so selectors are evaluated
 * once per class (a few hundred) instead of once per pod, and every answer is memoized for the
 * render. Keys of pods and labels are memoized on the (immutable) slim structs across renders.
 */

const labelKeys = new WeakMap<Record<string, string>, string>();
const podKeys = new WeakMap<PodInfo, string>();
const portKeys = new WeakMap<PodInfo, string>();

/** A canonical string of a label map (label keys and values cannot hold ',' or '\n'). */
export function labelsKey(labels: Record<string, string>): string {
  let k = labelKeys.get(labels);
  if (k === undefined) {
    k = Object.keys(labels).sort().map((l) => `${l}=${labels[l]}`).join(',');
    labelKeys.set(labels, k);
  }
  return k;
}

export function podKeyOf(p: PodInfo): string {
  let k = podKeys.get(p);
  if (k === undefined) {
    k = podKey(p);
    podKeys.set(p, k);
  }
  return k;
}

const classKeys = new WeakMap<PodInfo, string>();

/** namespace + labels: the key of a pod's label class */
function classKeyOf(p: PodInfo): string {
  let k = classKeys.get(p);
  if (k === undefined) {
    k = `${p.namespace}\n${labelsKey(p.labels)}`;
    classKeys.set(p, k);
  }
  return k;
}

/** What a pod's named ports resolve to: ingress chains of pods with the same key are identical. */
export function portsKey(p: PodInfo): string {
  let k = portKeys.get(p);
  if (k === undefined) {
    k = p.ports.map((cp) => `${cp.name ?? ''}=${cp.port}/${cp.protocol}`).sort().join(',');
    portKeys.set(p, k);
  }
  return k;
}

export interface LabelClass {
  namespace: string;
  labels: Record<string, string>;
  /** namespace + labels, unique per class */
  key: string;
  pods: PodInfo[];
  /** isolating policies per direction, filled on first use */
  iso: Partial<Record<Direction, PolicyInfo[]>>;
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T): number => {
  const ka = key(a);
  const kb = key(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

export class RenderIndex {
  readonly classesByNs = new Map<string, LabelClass[]>();
  readonly nsByName = new Map<string, NamespaceInfo>();
  readonly policiesByNs = new Map<string, PolicyInfo[]>();
  /** This node's pods, sorted by namespace/name. */
  readonly localPods: PodInfo[];
  readonly allPods: readonly PodInfo[];
  private readonly nsMemo = new Map<string, string[]>();
  private readonly peerMemo = new Map<string, PodInfo[]>();
  private readonly classOf = new Map<PodInfo, LabelClass>();
  private readonly classes = new Map<string, LabelClass>();
  private readonly samePolicies = new Map<string, boolean>();
  private readonly localUnsorted: PodInfo[];

  /**
   * `prev`: the index of the previous render. A label class whose namespace has the very same
   * policy objects as then keeps its isolating policies (the same arrays) without matching again.
   */
  constructor(snap: Snapshot, private prev: RenderIndex | null = null) {
    if (prev) prev.prev = null;
    this.allPods = snap.pods;
    for (const ns of snap.namespaces) this.nsByName.set(ns.name, ns);
    const classes = this.classes;
    for (const p of snap.pods) {
      const key = classKeyOf(p);
      const c = classes.get(key);
      if (c) {
        c.pods.push(p);
        this.classOf.set(p, c);
      } else {
        const created: LabelClass = { namespace: p.namespace, labels: p.labels, key, pods: [p], iso: {} };
        classes.set(key, created);
        this.classOf.set(p, created);
        const list = this.classesByNs.get(p.namespace);
        if (list) list.push(created);
        else this.classesByNs.set(p.namespace, [created]);
      }
    }
    this.localUnsorted = snap.pods.filter((p) => p.nodeName === snap.nodeName);
    const same = prev && prev.localUnsorted.length === this.localUnsorted.length && prev.localUnsorted.every((p, i) => p === this.localUnsorted[i]);
    this.localPods = same ? prev.localPods : [...this.localUnsorted].sort(byKey(podKeyOf));
    const pols = [...snap.policies].sort(byKey(podKeyOf as (p: { namespace: string; name: string }) => string));
    for (const pol of pols) {
      const list = this.policiesByNs.get(pol.namespace);
      if (list) list.push(pol);
      else this.policiesByNs.set(pol.namespace, [pol]);
    }
  }

  /** Namespaces a namespaceSelector selects, sorted. */
  namespaces(sel: Selector): string[] {
    const key = selectorKey(sel);
    let out = this.nsMemo.get(key);
    if (!out) {
      out = [...this.nsByName.values()].filter((ns) => matches(sel, ns.labels)).map((ns) => ns.name).sort();
      this.nsMemo.set(key, out);
    }
    return out;
  }

  /** Pods a pod peer selects, on every node (order: by namespace, then label class). */
  peerPods(policyNs: string, peer: Extract<Peer, { kind: 'pods' }>): PodInfo[] {
    const key = podPeerKey(policyNs, peer);
    let out = this.peerMemo.get(key);
    if (!out) {
      out = [];
      const namespaces = peer.namespaceSelector === null ? [policyNs] : this.namespaces(peer.namespaceSelector);
      for (const ns of namespaces) {
        for (const c of this.classesByNs.get(ns) ?? []) if (matches(peer.podSelector, c.labels)) out.push(...c.pods);
      }
      this.peerMemo.set(key, out);
    }
    return out;
  }

  /** The label class of a pod of this snapshot. */
  classOfPod(pod: PodInfo): LabelClass {
    const c = this.classOf.get(pod);
    if (!c) throw new Error(`pod ${podKeyOf(pod)} is not in this snapshot`);
    return c;
  }

  /** Policies that select `pod` and isolate it in `dir`, sorted by namespace/name (memoized per label class). */
  isolating(pod: PodInfo, dir: Direction): PolicyInfo[] {
    const c = this.classOfPod(pod);
    let out = c.iso[dir];
    if (!out) {
      out = this.previousIsolating(c, dir) ?? (this.policiesByNs.get(pod.namespace) ?? []).filter(
        (pol) => (dir === 'ingress' ? pol.ingressIsolation : pol.egressIsolation) && matches(pol.podSelector, pod.labels),
      );
      c.iso[dir] = out;
    }
    return out;
  }

  private previousIsolating(c: LabelClass, dir: Direction): PolicyInfo[] | undefined {
    const old = this.prev?.classes.get(c.key)?.iso[dir];
    if (!old) return undefined;
    let same = this.samePolicies.get(c.namespace);
    if (same === undefined) {
      const a = this.policiesByNs.get(c.namespace) ?? [];
      const b = this.prev!.policiesByNs.get(c.namespace) ?? [];
      same = a.length === b.length && a.every((p, i) => p === b[i]);
      this.samePolicies.set(c.namespace, same);
    }
    return same ? old : undefined;
  }
}
