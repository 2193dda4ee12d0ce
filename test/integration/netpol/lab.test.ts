import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSuite } from '../../../src/netpol/lab/runner.js';
import { parseSuite } from '../../../src/netpol/lab/scenario.js';
import { formatMatrix } from '../../../src/netpol/lab/report.js';

/** Root + netns: every suite in policies/ runs green, and a wrong truth table is caught. */

const POLICIES = join(dirname(fileURLToPath(import.meta.url)), '../../../policies');
const labNetns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('npl-'));

for (const file of ['upstream-xyz.yaml']) {
  t.test(`suite ${file}`, async (t) => {
    const suite = parseSuite(readFileSync(join(POLICIES, file), 'utf8'), file);
    const res = await runSuite(suite, { timeoutMs: 600 });
    if (!res.ok) t.comment(formatMatrix([res]));
    for (const s of res.steps) t.ok(!s.error && s.mismatches === 0, `${s.scenario} / ${s.step}${s.error ? `: ${s.error}` : ''}`);
  });
}

t.test('a wrong expectation is reported, and the lab cleans up', async (t) => {
  const before = labNetns().length;
  const suite = parseSuite(`
name: wrong on purpose
namespaces: {x: {ns: x}}
ports: [80/TCP, 80/UDP]
pods: {x/a: {labels: {pod: a}}, x/b: {labels: {pod: b}}}
scenarios:
  - name: s
    steps:
      - name: expects a deny that no policy makes
        expect: {rules: ["deny x/b -> x/a"]}
`, 'inline');
  const res = await runSuite(suite, { timeoutMs: 600, retries: 0 });
  t.notOk(res.ok);
  t.same(res.steps[0].probes.filter((p) => p.expected !== p.actual).map((p) => `${p.from}>${p.to} ${p.port}`).sort(), ['x/b>x/a 80/TCP', 'x/b>x/a 80/UDP']);
  t.match(formatMatrix([res]), /x\/b\s+\.\*/);
  t.equal(labNetns().length, before, 'no lab netns left behind');
});
