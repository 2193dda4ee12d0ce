import type { NodeSelectorRequirement, NodeSelectorTerm } from 'kubernetes-types/core/v1.js';
import { matchesRequirement, type Requirement } from '../../api/labels.js';
import type { NodeInfo } from '../cache.js';
import { normalize, type FilterPlugin, type ScorePlugin } from '../framework.js';

function requirementMatches(r: NodeSelectorRequirement, values: Record<string, string>): boolean {
  const op = r.operator as Requirement['op'];
  if (op === 'Gt' || op === 'Lt') return matchesRequirement({ key: r.key, op, values: [r.values?.[0] ?? ''] }, values);
  if (op === 'Exists' || op === 'DoesNotExist') return matchesRequirement({ key: r.key, op }, values);
  if (op === 'In' || op === 'NotIn') return matchesRequirement({ key: r.key, op, values: [...(r.values ?? [])] }, values);
  return false;
}

/** One NodeSelectorTerm: all matchExpressions (labels) and matchFields (metadata.name) hold; an empty term matches nothing. */
export function termMatches(term: NodeSelectorTerm, node: NodeInfo): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  return exprs.every((r) => requirementMatches(r, node.labels)) && fields.every((r) => r.key === 'metadata.name' && requirementMatches({ ...r, key: 'n' }, { n: node.name }));
}

/** Required node affinity: terms are ORed. */
export function nodeSelectorMatches(terms: readonly NodeSelectorTerm[], node: NodeInfo): boolean {
  return terms.some((t) => termMatches(t, node));
}

/** NodeAffinity: spec.nodeSelector and requiredDuringScheduling terms filter; preferred terms score. */
export const nodeAffinity: FilterPlugin & ScorePlugin = {
  name: 'NodeAffinity',
  weight: 2,
  filter: (s, n) => {
    const spec = s.pod.pod.spec;
    const sel = spec?.nodeSelector ?? {};
    for (const [k, v] of Object.entries(sel)) if (n.labels[k] !== v) return "node(s) didn't match Pod's node affinity/selector";
    const req = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (req && !nodeSelectorMatches(req.nodeSelectorTerms, n)) return "node(s) didn't match Pod's node affinity/selector";
    return undefined;
  },
  score: (s, nodes) => {
    const pref = s.pod.pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    if (pref.length === 0) return nodes.map(() => 0);
    return normalize(nodes.map((n) => pref.reduce((sum, p) => sum + (termMatches(p.preference, n) ? p.weight : 0), 0)));
  },
};
