// The benchmark's cluster: 10 namespaces, `pods` pods (100 label values), `policies` policies, each
// selecting one label value and allowing a pod selector and a namespace selector on a named and a
// numbered port. Shared by scripts/bench/netpol.ts and scripts/bench/netpol-render.ts.
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type PodInfo, type PolicyInfo, type Snapshot } from '../../src/netpol/model.js';
import { makeNamespace, makePod, makePolicy } from '../../src/netpol/testing.js';

export const NAMESPACES = Array.from({ length: 10 }, (_, i) => `ns${i}`);

export function benchPod(i: number): PodInfo {
  return toPodInfo(makePod(NAMESPACES[i % 10], `p${i}`, { labels: { app: `a${i % 100}` }, ip: `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`, node: 'n', ports: ['http=80/TCP'] }))!;
}

export function benchPolicy(i: number, port = 8000 + (i % 50)): PolicyInfo {
  const ns = NAMESPACES;
  return toPolicyInfo(makePolicy(ns[i % 10], `pol${i}`, {
    podSelector: { matchLabels: { app: `a${i % 100}` } },
    ingress: [{ from: [{ podSelector: { matchLabels: { app: `a${(i + 1) % 100}` } } }, { namespaceSelector: { matchLabels: { team: ns[(i + 3) % 10] } } }], ports: [{ port: 'http' }, { port }] }],
  }));
}

export function benchSnapshot(policies: number, pods = 1000): Snapshot {
  return {
    nodeName: 'n',
    namespaces: NAMESPACES.map((n) => toNamespaceInfo(makeNamespace(n, { team: n }))),
    pods: Array.from({ length: pods }, (_, i) => benchPod(i)),
    policies: Array.from({ length: policies }, (_, i) => benchPolicy(i)),
  };
}
