import type { Host } from '../host/host.js';
import type { Protocol, Snapshot } from './model.js';
import { EGRESS_CHAIN, INGRESS_CHAIN } from './names.js';
import { renderNetpol, type RenderOptions } from './render.js';
import { endpointOf, evaluate, Selection, type Verdict } from './select.js';
import { FilterTracer, type TraceStep } from './trace.js';

/**
 * `skiff policy explain`: the verdict for a connection with the policies and rules that decided
 * it (reference semantics), the chain and rule of the rendered rules that match (traced), and, for
 * the side programmed on this host, the kernel's rule with its packet counters.
 */

export interface KernelRule {
  chain: string;
  line: string;
  packets: number;
  bytes: number;
}

export interface Explanation {
  from: string;
  to: string;
  port: number;
  protocol: Protocol;
  verdict: Verdict;
  /** rules of pod chains the packet matched in the rendered state, egress side first */
  steps: TraceStep[];
  kernel: { direction: 'ingress' | 'egress'; rule: KernelRule | null; note?: string }[];
}

export function explainConnection(snap: Snapshot, from: string, to: string, port: number, protocol: Protocol, ropts: RenderOptions = {}): Omit<Explanation, 'kernel'> {
  const sel = new Selection(snap);
  const src = endpointOf(sel, from);
  const dst = endpointOf(sel, to);
  if (!src || !dst) throw new Error(`unknown endpoint ${!src ? from : to} (want ns/pod with an IP, or an address)`);
  const verdict = evaluate(sel, src, dst, port, protocol);
  const steps: TraceStep[] = [];
  // Egress is programmed on the source pod's node, ingress on the destination pod's.
  for (const [dir, ep] of [['egress', src], ['ingress', dst]] as const) {
    if (!ep.pod) continue;
    const tracer = new FilterTracer(renderNetpol({ ...snap, nodeName: ep.pod.nodeName }, ropts));
    const trace = tracer.trace({ src: src.ip, dst: dst.ip, protocol: protocol.toLowerCase() as 'tcp', dport: port });
    const prefix = dir === 'ingress' ? 'SKIFF-NP-I-' : 'SKIFF-NP-E-';
    steps.push(...trace.steps.filter((s) => s.chain.startsWith(prefix) && s.target !== 'LOG'));
  }
  return { from, to, port, protocol, verdict, steps };
}

/** Parses `iptables-save -c` output into chain -> rules with counters. */
export function parseCounters(save: string): Map<string, KernelRule[]> {
  const out = new Map<string, KernelRule[]>();
  for (const l of save.split('\n')) {
    const m = l.match(/^\[(\d+):(\d+)\] -A (\S+) (.*)$/);
    if (!m) continue;
    const list = out.get(m[3]) ?? [];
    list.push({ chain: m[3], line: `-A ${m[3]} ${m[4]}`, packets: Number(m[1]), bytes: Number(m[2]) });
    out.set(m[3], list);
  }
  return out;
}

/** Follows the kernel's dispatch (root, then /28 block chain) to the chain programmed for an address. */
export function kernelChainFor(rules: Map<string, KernelRule[]>, dir: 'ingress' | 'egress', ip: string): string | null {
  const flag = dir === 'ingress' ? '-d' : '-s';
  let chain = dir === 'ingress' ? INGRESS_CHAIN : EGRESS_CHAIN;
  for (let depth = 0; depth < 3; depth++) {
    const hit = (rules.get(chain) ?? []).find((r) => r.line.includes(` ${flag} ${ip}/32 `));
    if (hit) return hit.line.match(/-g (\S+)/)?.[1] ?? null;
    const block = (rules.get(chain) ?? []).find((r) => {
      const m = r.line.match(new RegExp(`${flag} (\\d+\\.\\d+\\.\\d+\\.\\d+)/(\\d+) -g`));
      if (!m) return false;
      const size = 2 ** (32 - Number(m[2]));
      const n = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
      return n(ip) - (n(ip) % size) === n(m[1]);
    });
    if (!block) return null;
    chain = block.line.match(/-g (\S+)/)![1];
  }
  return null;
}

/** Adds the kernel rule and counters for each direction programmed on `host`'s node. */
export async function kernelRules(host: Host, exp: Omit<Explanation, 'kernel'>, srcIp: string, dstIp: string, iptables = 'iptables'): Promise<Explanation['kernel']> {
  const save = await host.exec(`${iptables}-save`, ['-c', '-t', 'filter']);
  const rules = parseCounters(save.stdout);
  const out: Explanation['kernel'] = [];
  for (const dir of ['egress', 'ingress'] as const) {
    const chain = kernelChainFor(rules, dir, dir === 'ingress' ? dstIp : srcIp);
    if (!chain) {
      out.push({ direction: dir, rule: null, note: 'not isolated on this host (no chain programmed here)' });
      continue;
    }
    const kr = rules.get(chain) ?? [];
    const step = exp.steps.find((s) => s.chain.startsWith(dir === 'ingress' ? 'SKIFF-NP-I-' : 'SKIFF-NP-E-'));
    const rule = step && step.target !== 'DROP' ? kr[step.index] : [...kr].reverse().find((r) => r.line.endsWith('-j DROP'));
    out.push({ direction: dir, rule: rule ?? null, note: rule ? undefined : 'chain found but rule not matched' });
  }
  return out;
}

export function formatExplanation(e: Explanation): string {
  const v = e.verdict;
  const lines = [`${e.from} -> ${e.to} ${e.port}/${e.protocol}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`];
  for (const [dir, d] of [['egress', v.egress], ['ingress', v.ingress]] as const) {
    if (!d.applies) lines.push(`  ${dir}: not a pod of this cluster: no policy applies`);
    else if (d.isolatedBy.length === 0) lines.push(`  ${dir} of ${d.pod}: not isolated (no policy selects it for ${dir}): allowed`);
    else {
      lines.push(`  ${dir} of ${d.pod}: isolated by ${d.isolatedBy.join(', ')}`);
      lines.push(d.allowedBy.length ? `    allowed by ${d.allowedBy.map((r) => `${r.policy} ${r.direction}[${r.rule}]`).join(', ')}` : '    no rule allows it: denied');
    }
  }
  for (const s of e.steps) lines.push(`  rendered: ${s.chain} rule ${s.index + 1}: ${s.line}`);
  for (const k of e.kernel) {
    if (k.rule) lines.push(`  kernel ${k.direction}: ${k.rule.line}  [packets ${k.rule.packets}, bytes ${k.rule.bytes}]`);
    else lines.push(`  kernel ${k.direction}: ${k.note}`);
  }
  return `${lines.join('\n')}\n`;
}
