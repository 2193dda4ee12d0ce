import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../util/errors.js';
import type { LabNetwork } from './network.js';
import { formatJson, formatMatrix, formatTap } from './report.js';
import { runSuite, type SuiteResult } from './runner.js';
import { parseSuite } from './scenario.js';

export { runPolicyExplain } from '../explain-cli.js';

const TEST_USAGE = `usage: skiff policy test PATH... [--format matrix|tap|json] [--timeout MS]

Runs NetworkPolicy scenario suites (YAML files, or every .yaml/.yml under a folder) in network
namespaces on this host and compares reachability with each step's truth table. Needs root.
Exit code: 0 all green, 1 a mismatch or error, 2 usage.`;

function suiteFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => (e.isDirectory() ? suiteFiles(join(path, e.name)) : /\.ya?ml$/.test(e.name) ? [join(path, e.name)] : []));
}

interface TestArgs {
  paths: string[];
  format: 'matrix' | 'tap' | 'json';
  timeoutMs?: number;
}

function parseTestArgs(args: string[]): TestArgs | string {
  const out: TestArgs = { paths: [], format: 'matrix' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') return TEST_USAGE;
    if (a === '--format' || a.startsWith('--format=')) {
      const v = a.includes('=') ? a.split('=')[1] : args[++i];
      if (v !== 'matrix' && v !== 'tap' && v !== 'json') return `unknown format ${v}\n${TEST_USAGE}`;
      out.format = v;
    } else if (a === '--timeout') out.timeoutMs = Number(args[++i]);
    else if (a.startsWith('-')) return `unknown flag ${a}\n${TEST_USAGE}`;
    else out.paths.push(a);
  }
  return out.paths.length ? out : TEST_USAGE;
}

/** `skiff policy test PATH [--format matrix|tap|json]`; returns the exit code. */
export async function runPolicyTest(args: string[]): Promise<number> {
  const parsed = parseTestArgs(args);
  if (typeof parsed === 'string') {
    process.stderr.write(`${parsed}\n`);
    return parsed === TEST_USAGE && args.some((a) => a === '--help' || a === '-h') ? 0 : 2;
  }
  let current: LabNetwork | null = null;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    process.stderr.write('interrupted: cleaning up the lab\n');
    void (current?.destroy() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: SuiteResult[] = [];
  try {
    const files = parsed.paths.flatMap(suiteFiles);
    for (const file of files) {
      if (interrupted) break;
      let suite;
      try {
        suite = parseSuite(readFileSync(file, 'utf8'), file);
      } catch (err) {
        results.push({ file, name: file, ok: false, steps: [{ scenario: '(parse)', step: '(parse)', pods: [], ports: [], probes: [], mismatches: 0, error: errorMessage(err) }] });
        continue;
      }
      results.push(await runSuite(suite, { timeoutMs: parsed.timeoutMs, onLab: (l) => (current = l) }));
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const text = parsed.format === 'json' ? formatJson(results) : parsed.format === 'tap' ? formatTap(results) : formatMatrix(results);
  process.stdout.write(text);
  return results.every((r) => r.ok) ? 0 : 1;
}
