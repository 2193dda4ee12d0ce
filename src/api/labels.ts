import type { LabelSelector } from 'kubernetes-types/meta/v1.js';

export type Labels = Record<string, string> | undefined | null;

export type Requirement =
  | { key: string; op: 'In' | 'NotIn'; values: string[] }
  | { key: string; op: 'Exists' | 'DoesNotExist' }
  | { key: string; op: 'Gt' | 'Lt'; values: [string] };

/** A parsed selector: all requirements must hold (AND). Empty = everything. */
export type Selector = Requirement[];

export class SelectorParseError extends Error {}

/**
 * Parses the string form used in `?labelSelector=`: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
 */
export function parseSelector(text: string | undefined | null): Selector {
  const out: Selector = [];
  if (!text || !text.trim()) return out;
  for (const part of splitTop(text)) {
    const p = part.trim();
    if (!p) continue;
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^!\s*([^\s=!(),]+)$/))) out.push({ key: m[1], op: 'DoesNotExist' });
    else if ((m = p.match(/^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/i)))
      out.push({ key: m[1], op: m[2].toLowerCase() === 'in' ? 'In' : 'NotIn', values: m[3].split(',').map((v) => v.trim()).filter((v, i, a) => v !== '' || a.length === 1) });
    else if ((m = p.match(/^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/)))
      out.push({ key: m[1], op: m[2] === '!=' ? 'NotIn' : 'In', values: [m[3]] });
    else if ((m = p.match(/^([^\s=!(),<>]+)\s*([<>])\s*(-?\d+)$/))) out.push({ key: m[1], op: m[2] === '>' ? 'Gt' : 'Lt', values: [m[3]] });
    else if ((m = p.match(/^([^\s=!(),]+)$/))) out.push({ key: m[1], op: 'Exists' });
    else throw new SelectorParseError(`unable to parse requirement: ${JSON.stringify(p)}`);
  }
  return out;
}

function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

export function matchesRequirement(req: Requirement, labels: Labels): boolean {
  const has = !!labels && Object.prototype.hasOwnProperty.call(labels, req.key);
  const v = has ? labels![req.key] : undefined;
  switch (req.op) {
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'In':
      return has && req.values.includes(v!);
    case 'NotIn':
      return !has || !req.values.includes(v!);
    case 'Gt':
      return has && /^-?\d+$/.test(v!) && Number(v) > Number(req.values[0]);
    case 'Lt':
      return has && /^-?\d+$/.test(v!) && Number(v) < Number(req.values[0]);
  }
}

export function matches(sel: Selector, labels: Labels): boolean {
  return sel.every((r) => matchesRequirement(r, labels));
}

/**
 * A metav1.LabelSelector as a Selector. `null`/undefined selects nothing (returns null);
 * `{}` selects everything (returns []), as Kubernetes defines for workloads and NetworkPolicy.
 */
export function fromLabelSelector(ls: LabelSelector | undefined | null): Selector | null {
  if (!ls) return null;
  const out: Selector = [];
  for (const k of Object.keys(ls.matchLabels ?? {}).sort()) out.push({ key: k, op: 'In', values: [ls.matchLabels![k]] });
  for (const e of ls.matchExpressions ?? []) {
    if (e.operator === 'In' || e.operator === 'NotIn') out.push({ key: e.key, op: e.operator, values: [...(e.values ?? [])] });
    else if (e.operator === 'Exists' || e.operator === 'DoesNotExist') out.push({ key: e.key, op: e.operator });
    else throw new SelectorParseError(`unsupported operator ${JSON.stringify(e.operator)}`);
  }
  return out;
}

/** Convenience: does a LabelSelector (null = nothing) select these labels? */
export function labelSelectorMatches(ls: LabelSelector | undefined | null, labels: Labels): boolean {
  const sel = fromLabelSelector(ls);
  return sel !== null && matches(sel, labels);
}

/** The string form of a selector (for Scale.status.selector, kubectl). */
export function selectorToString(ls: LabelSelector | undefined | null): string {
  const sel = fromLabelSelector(ls) ?? [];
  return sel
    .map((r) => {
      if (r.op === 'Exists') return r.key;
      if (r.op === 'DoesNotExist') return `!${r.key}`;
      if (r.op === 'Gt' || r.op === 'Lt') return `${r.key}${r.op === 'Gt' ? '>' : '<'}${r.values[0]}`;
      if (r.op === 'In' && r.values.length === 1) return `${r.key}=${r.values[0]}`;
      if (r.op === 'NotIn' && r.values.length === 1) return `${r.key}!=${r.values[0]}`;
      return `${r.key} ${r.op === 'In' ? 'in' : 'notin'} (${(r as { values: string[] }).values.join(',')})`;
    })
    .join(',');
}
