import { execa } from 'execa';
import { SkiffError } from '../util/errors.js';

export interface ExecOptions {
  /** Text written to the command's stdin (iptables-restore, ipset restore). */
  input?: string;
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean;
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * The one exec seam of the dataplane. A Host is a network namespace that a node's networking lives
 * in: the root namespace on a real machine (`netns === null`), a named netns in tests and labs.
 * Every ip/iptables/ipset/conntrack/docker call goes through `exec`.
 */
export interface Host {
  readonly netns: string | null;
  exec(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

/** Runs commands for real, inside `netns` when one is given (`ip netns exec NAME cmd ...`). */
export class LocalHost implements Host {
  constructor(readonly netns: string | null = null) {}

  async exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const [file, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, cmd, ...args]] : [cmd, [...args]];
    const res = await execa(file, argv, {
      input: opts.input,
      reject: false,
      timeout: opts.timeoutMs ?? 120_000,
      stripFinalNewline: false,
    });
    const out: ExecResult = { stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? ''), exitCode: res.exitCode ?? -1 };
    if (out.exitCode !== 0 && !opts.allowFail) {
      throw new SkiffError('ERR_EXEC', `${cmd} ${args.join(' ')} exited ${out.exitCode}: ${out.stderr.trim()}`, {
        details: { cmd, args, exitCode: out.exitCode, stderr: out.stderr, netns: this.netns },
      });
    }
    return out;
  }
}

/** Records every call and answers from a handler; for unit tests of apply shells. */
export class FakeHost implements Host {
  readonly calls: { cmd: string; args: string[]; input?: string }[] = [];
  constructor(
    private readonly handler: (cmd: string, args: readonly string[], input?: string) => Partial<ExecResult> | undefined = () => undefined,
    readonly netns: string | null = 'fake',
  ) {}

  async exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ cmd, args: [...args], input: opts.input });
    const r = { stdout: '', stderr: '', exitCode: 0, ...(this.handler(cmd, args, opts.input) ?? {}) };
    if (r.exitCode !== 0 && !opts.allowFail) {
      throw new SkiffError('ERR_EXEC', `${cmd} ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
    }
    return r;
  }
}
