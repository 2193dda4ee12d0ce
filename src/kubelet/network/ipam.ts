import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError } from '../../util/errors.js';
import { intToIp, ipToInt, parseCidr, podAddressRange, cidrString, cidrContains } from './cidr.js';

/** IPAM state: which pod uid holds which address, plus where the next search starts. */
export interface IpamState {
  cidr: string;
  /** ip -> pod uid */
  allocations: Record<string, string>;
  /** last handed out, so a freed address is not reused at once */
  last?: string;
}

/**
 * Pure: the address for `podUid` in `state` (its existing one, or the next free after `last`).
 * Returns the new state; throws ERR_IPAM_EXHAUSTED when the range is full.
 */
export function allocate(state: IpamState, podUid: string): { ip: string; state: IpamState } {
  for (const [ip, uid] of Object.entries(state.allocations)) if (uid === podUid) return { ip, state };
  const c = parseCidr(state.cidr);
  const { first, last } = podAddressRange(c);
  const size = last - first + 1;
  let start = state.last && cidrContains(c, state.last) ? ipToInt(state.last) + 1 : first;
  if (start > last || start < first) start = first;
  for (let i = 0; i < size; i++) {
    const n = first + ((start - first + i) % size);
    const ip = intToIp(n);
    if (!(ip in state.allocations)) {
      return { ip, state: { cidr: state.cidr, allocations: { ...state.allocations, [ip]: podUid }, last: ip } };
    }
  }
  throw new SkiffError('ERR_IPAM_EXHAUSTED', `no free address in ${state.cidr}`);
}

/** Pure: the state without `podUid`'s address. */
export function release(state: IpamState, podUid: string): IpamState {
  const allocations = Object.fromEntries(Object.entries(state.allocations).filter(([, uid]) => uid !== podUid));
  return { ...state, allocations };
}

/**
 * IPAM kept on disk (one JSON file per range, written atomically) so a kubelet restart never hands
 * out a live address twice. The file is read once per instance and the state kept in memory (this
 * instance is its only writer); changes are made in memory one at a time, and every change is on
 * disk before its call returns. Writes coalesce: changes made while a write runs share the next one,
 * so 30 pods starting at once wait for two or three writes, not thirty in a row.
 */
export class FileIpam {
  private state?: IpamState;
  private loading?: Promise<IpamState>;
  private writing?: Promise<void>;
  private nextWrite?: Promise<void>;
  readonly cidr: string;
  constructor(private readonly dir: string, cidr: string) {
    this.cidr = cidrString(parseCidr(cidr));
  }

  private get file(): string {
    return join(this.dir, `${this.cidr.replace(/[./]/g, '_')}.json`);
  }

  async load(): Promise<IpamState> {
    try {
      const s = JSON.parse(await readFile(this.file, 'utf8')) as IpamState;
      return { cidr: this.cidr, allocations: s.allocations ?? {}, last: s.last };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { cidr: this.cidr, allocations: {} };
      throw new SkiffError('ERR_IPAM_STATE', `cannot read IPAM state ${this.file}`, { cause: err });
    }
  }

  /** The state in memory, read from disk on first use (concurrent first calls share the read). */
  private async current(): Promise<IpamState> {
    if (this.state) return this.state;
    this.loading ??= this.load().finally(() => { this.loading = undefined; });
    const s = await this.loading;
    return (this.state ??= s);
  }

  /** Applies a pure change to the state in memory and waits until it is on disk. */
  private async change<T>(fn: (s: IpamState) => { result: T; state: IpamState }): Promise<T> {
    await this.current();
    const { result, state } = fn(this.state!);
    if (state !== this.state) {
      this.state = state;
      await this.persist();
    }
    return result;
  }

  /** Writes the state as it is when the write starts; a call during a write waits for one more (shared). */
  private persist(): Promise<void> {
    if (!this.writing) {
      this.writing = this.write(this.state!).finally(() => { this.writing = undefined; });
      return this.writing;
    }
    this.nextWrite ??= this.writing.catch(() => undefined).then(() => {
      this.nextWrite = undefined;
      return this.persist();
    });
    return this.nextWrite;
  }

  private async write(s: IpamState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify(s, null, 1));
    await rename(tmp, this.file);
  }

  allocate(podUid: string): Promise<string> {
    return this.change((cur) => {
      const { ip, state } = allocate(cur, podUid);
      return { result: ip, state };
    });
  }

  release(podUid: string): Promise<void> {
    return this.change((cur) => {
      const next = release(cur, podUid);
      return { result: undefined, state: Object.keys(next.allocations).length !== Object.keys(cur.allocations).length ? next : cur };
    });
  }

  /** Drops every allocation whose pod uid is not in `live` (garbage after crashes). */
  retain(live: Set<string>): Promise<void> {
    return this.change((cur) => {
      const allocations = Object.fromEntries(Object.entries(cur.allocations).filter(([, uid]) => live.has(uid)));
      return { result: undefined, state: Object.keys(allocations).length !== Object.keys(cur.allocations).length ? { ...cur, allocations } : cur };
    });
  }
}
