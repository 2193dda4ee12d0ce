import type { Host } from './host.js';
import { SkiffError } from '../util/errors.js';

/** Which iptables flavour programs the kernel: the nf_tables shim or the legacy x_tables one. */
export type IptablesBackend = 'nft' | 'legacy';

export type Table = 'filter' | 'nat' | 'mangle' | 'raw';

/** A jump out of a built-in chain that must exist (ensured one by one, never via restore). */
export interface JumpRule {
  table: Table;
  /** Built-in chain, e.g. PREROUTING. */
  chain: string;
  /** The rule spec after `-A CHAIN`, e.g. ['-m', 'comment', '--comment', 'SKIFF-...', '-j', 'SKIFF-SERVICES']. */
  args: string[];
  /** Insert at the top (default) or append. */
  position?: 'prepend' | 'append';
}

/**
 * What the dataplane needs from iptables. `restore` programs a whole document atomically per
 * table; `save` lists a table; the rest manage single rules and chains in built-in chains.
 */
export interface Iptables {
  readonly backend: IptablesBackend;
  /** Runs `iptables-restore [--noflush]` with `text`; throws ERR_IPTABLES_RESTORE with the failing line. */
  restore(text: string, opts?: { noflush?: boolean }): Promise<void>;
  /** `iptables-save -t TABLE` output. */
  save(table: Table): Promise<string>;
  /** Creates the chain if missing. */
  ensureChain(table: Table, chain: string): Promise<void>;
  /** Adds the rule unless `-C` finds it; returns true when it was added. */
  ensureRule(rule: JumpRule): Promise<boolean>;
  /** Deletes the rule if present; returns true when one was deleted. */
  deleteRule(table: Table, chain: string, args: string[]): Promise<boolean>;
  /** Flushes and deletes a chain if it exists. */
  deleteChain(table: Table, chain: string): Promise<void>;
}

const WAIT = ['-w', '5'];

/** Runs the real iptables binaries of one backend through the Host exec seam. */
export class HostIptables implements Iptables {
  constructor(
    private readonly host: Host,
    readonly backend: IptablesBackend,
  ) {}

  private bin(kind: '' | '-restore' | '-save'): string {
    return `iptables-${this.backend}${kind}`;
  }

  async restore(text: string, opts: { noflush?: boolean } = {}): Promise<void> {
    const args = [...WAIT, ...(opts.noflush ? ['--noflush'] : [])];
    const res = await this.host.exec(this.bin('-restore'), args, { input: text, allowFail: true, timeoutMs: 30 * 60_000 });
    if (res.exitCode !== 0) throw restoreError(text, res.stderr, res.exitCode);
  }

  async save(table: Table): Promise<string> {
    return (await this.host.exec(this.bin('-save'), ['-t', table])).stdout;
  }

  async ensureChain(table: Table, chain: string): Promise<void> {
    const res = await this.host.exec(this.bin(''), [...WAIT, '-t', table, '-N', chain], { allowFail: true });
    if (res.exitCode !== 0 && !/exists/i.test(res.stderr)) {
      throw new SkiffError('ERR_IPTABLES', `creating chain ${table}/${chain}: ${res.stderr.trim()}`);
    }
  }

  async ensureRule(rule: JumpRule): Promise<boolean> {
    const check = await this.host.exec(this.bin(''), [...WAIT, '-t', rule.table, '-C', rule.chain, ...rule.args], { allowFail: true });
    if (check.exitCode === 0) return false;
    const op = rule.position === 'append' ? '-A' : '-I';
    await this.host.exec(this.bin(''), [...WAIT, '-t', rule.table, op, rule.chain, ...rule.args]);
    return true;
  }

  async deleteRule(table: Table, chain: string, args: string[]): Promise<boolean> {
    const res = await this.host.exec(this.bin(''), [...WAIT, '-t', table, '-D', chain, ...args], { allowFail: true });
    return res.exitCode === 0;
  }

  async deleteChain(table: Table, chain: string): Promise<void> {
    await this.host.exec(this.bin(''), [...WAIT, '-t', table, '-F', chain], { allowFail: true });
    await this.host.exec(this.bin(''), [...WAIT, '-t', table, '-X', chain], { allowFail: true });
  }
}

/** Builds ERR_IPTABLES_RESTORE naming the failing line and a few lines around it. */
export function restoreError(text: string, stderr: string, exitCode: number): SkiffError {
  const m = /line:?\s*(\d+)/i.exec(stderr);
  const lineNo = m ? Number(m[1]) : undefined;
  const lines = text.split('\n');
  const context = lineNo
    ? lines
        .slice(Math.max(0, lineNo - 3), lineNo + 2)
        .map((l, i) => `${Math.max(1, lineNo - 2) + i}${Math.max(1, lineNo - 2) + i === lineNo ? '>' : ':'} ${l}`)
        .join('\n')
    : undefined;
  const failingLine = lineNo ? lines[lineNo - 1] : undefined;
  return new SkiffError('ERR_IPTABLES_RESTORE', `iptables-restore exited ${exitCode}: ${stderr.trim()}${failingLine ? ` (line ${lineNo}: ${failingLine})` : ''}`, {
    details: { exitCode, stderr, line: lineNo, failingLine, context },
  });
}

/** Hint chain (in mangle) that marks which backend skiff programs, like kube-proxy's KUBE-IPTABLES-HINT. */
export const HINT_CHAIN = 'SKIFF-IPTABLES-HINT';

/**
 * Picks the backend the host already uses, as kube-proxy's iptables-wrapper does: a hint chain
 * (ours or kube-proxy's) wins, otherwise the backend holding more rules, otherwise what the
 * `iptables` binary on PATH reports.
 */
export async function detectBackend(host: Host): Promise<IptablesBackend> {
  const scores: Record<IptablesBackend, { hint: boolean; rules: number }> = { nft: { hint: false, rules: 0 }, legacy: { hint: false, rules: 0 } };
  for (const b of ['nft', 'legacy'] as const) {
    const res = await host.exec(`iptables-${b}-save`, [], { allowFail: true });
    if (res.exitCode !== 0) continue;
    scores[b] = scoreSave(res.stdout);
  }
  if (scores.nft.hint !== scores.legacy.hint) return scores.nft.hint ? 'nft' : 'legacy';
  if (scores.nft.rules !== scores.legacy.rules) return scores.nft.rules > scores.legacy.rules ? 'nft' : 'legacy';
  const v = await host.exec('iptables', ['--version'], { allowFail: true });
  return /legacy/.test(v.stdout) ? 'legacy' : 'nft';
}

export function scoreSave(save: string): { hint: boolean; rules: number } {
  let rules = 0;
  let hint = false;
  for (const line of save.split('\n')) {
    if (line.startsWith('-A ')) rules++;
    else if (line.startsWith(`:${HINT_CHAIN} `) || line.startsWith(':KUBE-IPTABLES-HINT ')) hint = true;
  }
  return { hint, rules };
}

/** Chain names declared in an `iptables-save` table dump (`:NAME POLICY [p:b]`). */
export function chainsInSave(save: string): string[] {
  const out: string[] = [];
  for (const line of save.split('\n')) if (line.startsWith(':')) out.push(line.slice(1).split(' ')[0]);
  return out;
}

/** Quotes one word for iptables-restore input (comments with spaces). */
export function quoteArg(s: string): string {
  if (SAFE_WORD.test(s)) return s;
  return NEEDS_ESCAPE.test(s) ? `"${s.replace(/(["\\])/g, '\\$1')}"` : `"${s}"`;
}

const SAFE_WORD = /^[A-Za-z0-9_./:,=+@%-]+$/;
const NEEDS_ESCAPE = /["\\]/;
