// Render-only bench: the whole ruleset for N Services x 10 endpoints, best of 5 (CPU ms). Prints JSON.
//   node --import=<ts loader> scripts/bench/proxy-render.ts [N]
import { assembleRuleset, isLargeCluster, renderRestore, renderServicePort } from '../../src/proxy/render.js';
import type { EndpointInfo, ServicePortInfo } from '../../src/proxy/model.js';

const n = Number(process.argv[2] ?? 10000);
const ctx = { nodeName: 'bench-node', clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/12', largeCluster: isLargeCluster(n * 10) };
const input: [ServicePortInfo, EndpointInfo[]][] = [];
for (let i = 0; i < n; i++) {
  const key = `ns${i % 50}/svc${i}:http/TCP`;
  const sp: ServicePortInfo = {
    key, namespace: `ns${i % 50}`, name: `svc${i}`, portName: 'http', protocol: 'TCP', port: 80, clusterIP: `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    externalIPs: [], loadBalancerIPs: [], loadBalancerSourceRanges: [], affinitySeconds: 0, externalPolicyLocal: false, internalPolicyLocal: false,
  };
  const eps = Array.from({ length: 10 }, (_, j): EndpointInfo => {
    const k = i * 10 + j + 1;
    return { ip: `10.${128 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`, port: 8080, ready: true, serving: true, terminating: false, nodeName: `node${j % 3}` };
  });
  input.push([sp, eps]);
}
const runs: { cpuMs: number; wallMs: number }[] = [];
let bytes = 0;
for (let r = 0; r < 5; r++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const doc = renderRestore(assembleRuleset(input.map(([sp, eps]) => renderServicePort(sp, eps, ctx)), ctx), null);
  const c = process.cpuUsage(c0);
  bytes = doc.text.length;
  runs.push({ cpuMs: Math.round((c.user + c.system) / 1000), wallMs: Math.round(performance.now() - t0) });
}
const best = (k: 'cpuMs' | 'wallMs') => Math.min(...runs.map((x) => x[k]));
process.stdout.write(JSON.stringify({ bench: 'proxy-render', services: n, endpointsPerService: 10, bytes, bestCpuMs: best('cpuMs'), bestWallMs: best('wallMs'), runs }) + '\n');
