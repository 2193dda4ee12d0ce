// Render-only microbenchmark (for `node --cpu-prof`): full renders and incremental re-renders of
// 1,000 policies x 1,000 pods. Prints JSON. No root needed.
import { NetpolRenderer, renderNetpol } from '../../src/netpol/render.js';
import { benchPod, benchPolicy, benchSnapshot } from './netpol-fixture.js';

const opts = { podCIDR: '10.244.0.0/22', dropLog: { tag: 'bench', ratePerSec: 20 } };
const snap = benchSnapshot(1000);
const time = (fn: () => unknown): number => {
  const t0 = performance.now();
  fn();
  return Math.round((performance.now() - t0) * 10) / 10;
};
const fresh = [0, 1, 2].map(() => time(() => renderNetpol(snap, opts)));
const renderer = new NetpolRenderer(opts);
renderer.render(snap);
const policyChange = [1, 2, 3].map((k) => time(() => renderer.render({ ...snap, policies: snap.policies.map((p, i) => (i === 0 ? benchPolicy(0, 9000 + k) : p)) })));
const podChange = [1, 2, 3].map((k) => time(() => renderer.render({ ...snap, pods: snap.pods.map((p, i) => (i === 5 ? { ...benchPod(5), labels: { app: `a${k}` } } : p)) })));
console.log(JSON.stringify({ full_render_ms: fresh, one_policy_rerender_ms: policyChange, one_pod_rerender_ms: podChange }));
