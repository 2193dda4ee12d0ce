import type { KubeObject } from '../../api/object.js';
import { labelSelectorMatches } from '../../api/labels.js';
import type { PolicyRule } from '../../apiserver/auth/rbac.js';

export type { PolicyRule };

export type ClusterRoleObj = KubeObject & {
  rules?: PolicyRule[];
  aggregationRule?: { clusterRoleSelectors?: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }[] };
};

/**
 * The rules an aggregated ClusterRole should hold: the union, without duplicates, of the rules of
 * every other ClusterRole one of its selectors matches, in name order (as Kubernetes' controller).
 * Returns null when the role is not aggregated or already holds exactly these rules.
 */
export function desiredAggregatedRules(role: ClusterRoleObj, all: ClusterRoleObj[]): PolicyRule[] | null {
  const selectors = role.aggregationRule?.clusterRoleSelectors;
  if (!selectors) return null;
  const sources = all
    .filter((r) => r.metadata?.name !== role.metadata?.name)
    .filter((r) => selectors.some((s) => labelSelectorMatches(s as never, r.metadata?.labels)))
    .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
  const seen = new Set<string>();
  const rules: PolicyRule[] = [];
  for (const src of sources) {
    for (const rule of src.rules ?? []) {
      const key = JSON.stringify(rule);
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push(structuredClone(rule));
    }
  }
  return JSON.stringify(rules) === JSON.stringify(role.rules ?? []) ? null : rules;
}
