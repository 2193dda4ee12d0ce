// Bench: render + apply of N policies over 1,000 pods in a throwaway netns, and one policy change.
// Prints JSON. Run as root: node --import=<ts loader> scripts/bench/netpol.ts
import { createNetns, deleteNetns, uniqueName } from '../../src/host/netns.js';
import { NetpolApplier } from '../../src/netpol/apply.js';
import { toNamespaceInfo, toPodInfo, toPolicyInfo, type Snapshot } from '../../src/netpol/model.js';
import { renderNetpol } from '../../src/netpol/render.js';
import { makeNamespace, makePod, makePolicy } from '../../src/netpol/testing.js';

function snapshot(policies: number, pods = 1000): Snapshot {
  const ns = Array.from({ length: 10 }, (_, i) => `ns${i}`);
  return {
    nodeName: 'n',
    namespaces: ns.map((n) => toNamespaceInfo(makeNamespace(n, { team: n }))),
    pods: Array.from({ length: pods }, (_, i) => toPodInfo(makePod(ns[i % 10], `p${i}`, { labels: { app: `a${i % 100}` }, ip: `10.244.${Math.floor(i / 250)}.${(i % 250) + 2}`, node: 'n', ports: ['http=80/TCP'] }))!),
    policies: Array.from({ length: policies }, (_, i) => toPolicyInfo(makePolicy(ns[i % 10], `pol${i}`, {
      podSelector: { matchLabels: { app: `a${i % 100}` } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: `a${(i + 1) % 100}` } } }, { namespaceSelector: { matchLabels: { team: ns[(i + 3) % 10] } } }], ports: [{ port: 'http' }, { port: 8000 + (i % 50) }] }],
    }))),
  };
}

const out: Record<string, unknown> = {};
const name = uniqueName('npbench');
const host = await createNetns(name);
try {
  for (const n of [100, 1000]) {
    const snap = snapshot(n);
    const opts = { podCIDR: '10.244.0.0/22', dropLog: { tag: 'bench', ratePerSec: 20 } };
    let t0 = performance.now();
    const r = renderNetpol(snap, opts);
    const renderMs = performance.now() - t0;
    const applier = new NetpolApplier(host);
    await applier.cleanup();
    await applier.ensureBase(opts);
    t0 = performance.now();
    await applier.apply(r);
    const fullMs = performance.now() - t0;
    snap.policies[0] = toPolicyInfo(makePolicy('ns0', 'pol0', { podSelector: { matchLabels: { app: 'a0' } }, ingress: [{ ports: [{ port: 9999 }] }] }));
    t0 = performance.now();
    const stats = await applier.apply(renderNetpol(snap, opts));
    const changeMs = performance.now() - t0;
    out[`policies_${n}`] = { pods: 1000, chains: r.chains.size, sets: r.sets.size, render_ms: Math.round(renderMs), full_sync_ms: Math.round(renderMs + fullMs), one_change_ms: Math.round(changeMs), changed_chains: stats.changedChains };
  }
} finally {
  await deleteNetns(name);
}
console.log(JSON.stringify(out));
