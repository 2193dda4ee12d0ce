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
 * out a live address twice. Calls are serialized. The file is read once per instance and the state
 * kept in memory afterwards (this instance is its only writer); every change is saved before the
 * call returns.
 */
export class FileIpam {
  private chain: Promise<unknown> = Promise.resolve();
  private state?: IpamState;
  readonly cidr: string;
  constructor(private readonly dir: string, cidr: string) {
    this.cidr = cidrString(parseCidr(cidr));
  }

  private get file(): string {
    return join(this.dir, `${this.cidr.replace(/[./]/g, '_')}.json`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
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

  private async current(): Promise<IpamState> {
    return (this.state ??= await this.load());
  }

  private async save(s: IpamState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify(s, null, 1));
    await rename(tmp, this.file);
    this.state = s;
  }

  allocate(podUid: string): Promise<string> {
    return this.serial(async () => {
      const cur = await this.current();
      const { ip, state } = allocate(cur, podUid);
      if (state !== cur) await this.save(state);
      return ip;
    });
  }

  release(podUid: string): Promise<void> {
    return this.serial(async () => {
      const cur = await this.current();
      const next = release(cur, podUid);
      if (Object.keys(next.allocations).length !== Object.keys(cur.allocations).length) await this.save(next);
    });
  }

  /** Drops every allocation whose pod uid is not in `live` (garbage after crashes). */
  retain(live: Set<string>): Promise<void> {
    return this.serial(async () => {
      const cur = await this.current();
      const allocations = Object.fromEntries(Object.entries(cur.allocations).filter(([, uid]) => live.has(uid)));
      if (Object.keys(allocations).length !== Object.keys(cur.allocations).length) await this.save({ ...cur, allocations });
    });
  }
}
