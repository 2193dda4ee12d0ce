import type { StepResult, SuiteResult } from './runner.js';

/**
 * Output of `skiff policy test`: truth-table matrices (rows = from, columns = to; `.` allowed,
 * `X` denied; a cell that differs from the expectation shows the observed value followed by `*`),
 * TAP, or JSON.
 */

function matrix(step: StepResult, port: string): string {
  const pods = step.pods;
  const w = Math.max(4, port.length + 1, ...pods.map((p) => p.length + 1));
  const cell = (s: string) => s.padEnd(w);
  const byPair = new Map(step.probes.filter((p) => p.port === port).map((p) => [`${p.from}>${p.to}`, p]));
  const lines = [`${cell(port)}${pods.map(cell).join('')}`];
  for (const from of pods) {
    const cells = pods.map((to) => {
      const p = byPair.get(`${from}>${to}`);
      if (!p) return cell('?');
      return cell(`${p.actual ? '.' : 'X'}${p.actual !== p.expected ? '*' : ''}`);
    });
    lines.push(`${cell(from)}${cells.join('')}`.trimEnd());
  }
  return lines.join('\n');
}

export function formatMatrix(results: SuiteResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`=== ${r.name} (${r.file})`);
    for (const s of r.steps) {
      const verdict = s.error ? `ERROR: ${s.error}` : s.mismatches ? `FAIL: ${s.mismatches} cell(s) differ (marked *)` : 'ok';
      out.push('', `--- ${s.scenario} / ${s.step}: ${verdict}`);
      if (!s.error) for (const port of s.ports) out.push(matrix(s, port));
    }
    out.push('', `${r.ok ? 'PASS' : 'FAIL'} ${r.name}`, '');
  }
  return out.join('\n');
}

export function formatTap(results: SuiteResult[]): string {
  const steps = results.flatMap((r) => r.steps.map((s) => ({ r, s })));
  const out = ['TAP version 14', `1..${steps.length}`];
  steps.forEach(({ r, s }, i) => {
    const ok = !s.error && s.mismatches === 0;
    out.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${r.name} / ${s.scenario} / ${s.step}`);
    if (!ok) {
      out.push('  ---');
      if (s.error) out.push(`  error: ${JSON.stringify(s.error)}`);
      for (const p of s.probes.filter((x) => x.expected !== x.actual)) {
        out.push(`  - ${p.from} -> ${p.to} ${p.port}: expected ${p.expected ? 'allowed' : 'denied'}, got ${p.actual ? 'allowed' : 'denied'}`);
      }
      out.push('  ...');
    }
  });
  return `${out.join('\n')}\n`;
}

export function formatJson(results: SuiteResult[]): string {
  return `${JSON.stringify({ ok: results.every((r) => r.ok), suites: results }, null, 2)}\n`;
}
