import type { Host } from '../host/host.js';
import { SkiffError } from '../util/errors.js';
import { EGRESS_CHAIN, INGRESS_CHAIN, isOwnedChain, isOwnedSet, KNOWN_SET, MAIN_CHAIN } from './names.js';
import type { Rendered, RenderOptions } from './render.js';
import { renderNetpol } from './render.js';
import { planRestore, stateOf, type AppliedState, type KernelInventory } from './restore.js';

/**
 * Apply, thin: runs what restore.ts planned through the Host exec seam, in the order that never
 * opens a selected pod: sets first (new sets are unreferenced, changed ones are swapped), then one
 * iptables-restore, then KNOWN additions and destroying sets nothing references anymore.
 */

export interface ApplyStats {
  full: boolean;
  changedChains: number;
  changedSets: number;
}

export interface ApplierOptions {
  /** iptables flavour: 'iptables' (nft, default) or 'iptables-legacy' */
  iptables?: string;
}

const JUMP_COMMENT = 'skiff network policy';

export class NetpolApplier {
  private state: AppliedState | null = null;
  private readonly ipt: string;

  constructor(readonly host: Host, opts: ApplierOptions = {}) {
    this.ipt = opts.iptables ?? 'iptables';
  }

  /** The next apply lists the kernel and rewrites everything (after failures, periodically). */
  forceFull(): void {
    this.state = null;
  }

  async inventory(): Promise<KernelInventory> {
    const [save, list] = await Promise.all([this.host.exec(`${this.ipt}-save`, ['-t', 'filter']), this.host.exec('ipset', ['list', '-n'])]);
    const chains = new Set(save.stdout.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]).filter(isOwnedChain));
    const sets = new Set(list.stdout.split('\n').map((s) => s.trim()).filter(isOwnedSet));
    const known = new Set<string>();
    if (sets.has(KNOWN_SET)) {
      const out = await this.host.exec('ipset', ['save', KNOWN_SET]);
      for (const l of out.stdout.split('\n')) {
        const m = l.match(/^add \S+ (\S+)/);
        if (m) known.add(m[1]);
      }
    }
    return { chains, sets, known };
  }

  /**
   * Makes the gate exist before anything else: KNOWN (kept if present, so a restart keeps its pods
   * reachable), the main chain with the gate rules when missing, and the jump from FORWARD.
   */
  async ensureBase(opts: RenderOptions): Promise<void> {
    await this.host.exec('sysctl', ['-q', '-w', 'net.bridge.bridge-nf-call-iptables=1'], { allowFail: true });
    await this.host.exec('ipset', ['-exist', 'create', KNOWN_SET, 'hash:ip', 'family', 'inet']);
    const inv = await this.inventory();
    if (!inv.chains.has(MAIN_CHAIN)) {
      const base = renderNetpol({ pods: [], namespaces: [], policies: [], nodeName: '' }, opts);
      const lines = ['*filter', `:${MAIN_CHAIN} - [0:0]`, `:${EGRESS_CHAIN} - [0:0]`, `:${INGRESS_CHAIN} - [0:0]`, ...base.chains.get(MAIN_CHAIN)!, 'COMMIT'];
      await this.restore(`${lines.join('\n')}\n`);
    }
    await this.ensureJump();
  }

  private async ensureJump(): Promise<void> {
    const rule = ['FORWARD', '-m', 'comment', '--comment', JUMP_COMMENT, '-j', MAIN_CHAIN];
    const has = await this.host.exec(this.ipt, ['-w', '5', '-C', ...rule], { allowFail: true });
    if (has.exitCode !== 0) await this.host.exec(this.ipt, ['-w', '5', '-I', rule[0], '1', ...rule.slice(1)]);
  }

  private async restore(text: string): Promise<void> {
    try {
      await this.host.exec(`${this.ipt}-restore`, ['-w', '5', '--noflush'], { input: text });
    } catch (err) {
      throw new SkiffError('ERR_NETPOL_RESTORE', 'iptables-restore failed', { cause: err });
    }
  }

  private async ipset(text: string): Promise<void> {
    try {
      await this.host.exec('ipset', ['-exist', 'restore'], { input: text });
    } catch (err) {
      throw new SkiffError('ERR_NETPOL_IPSET', 'ipset restore failed', { cause: err });
    }
  }

  async apply(r: Rendered): Promise<ApplyStats> {
    const full = this.state === null;
    const inv = full ? await this.inventory() : null;
    const plan = planRestore(this.state, r, inv);
    this.state = null; // a failure below leaves the next sync full
    if (plan.ipsetBefore) await this.ipset(plan.ipsetBefore);
    if (plan.iptables) await this.restore(plan.iptables);
    if (full) await this.ensureJump();
    if (plan.ipsetAfter) await this.ipset(plan.ipsetAfter);
    this.state = stateOf(r, plan.orphans);
    return { full, changedChains: plan.changedChains, changedSets: plan.changedSets };
  }

  /** Removes everything the engine owns from this host (lab teardown, `--cleanup`). */
  async cleanup(): Promise<void> {
    const rule = ['FORWARD', '-m', 'comment', '--comment', JUMP_COMMENT, '-j', MAIN_CHAIN];
    while ((await this.host.exec(this.ipt, ['-w', '5', '-D', ...rule], { allowFail: true })).exitCode === 0);
    const inv = await this.inventory();
    if (inv.chains.size > 0) {
      const chains = [...inv.chains].sort();
      const lines = ['*filter', ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT'];
      await this.restore(`${lines.join('\n')}\n`);
    }
    for (const s of inv.sets) await this.host.exec('ipset', ['destroy', s], { allowFail: true });
    this.state = null;
  }
}
