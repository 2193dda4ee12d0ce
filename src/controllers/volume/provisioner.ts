import { mkdir, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { SkiffError } from '../../util/errors.js';
import type { PvObj } from './reconcile.js';

/** Makes and removes the storage behind dynamically provisioned PVs. */
export interface VolumeProvisioner {
  readonly name: string;
  /** Directory root PVs point into. */
  readonly root: string;
  /** The node holding the directories, when they exist on one node only (PVs get node affinity). */
  readonly node?: string;
  create(pv: PvObj): Promise<void>;
  delete(pv: PvObj): Promise<void>;
}

/** hostPath directories under DIR/volumes; deletes only `pvc-*` directories inside that root. */
export class HostPathProvisioner implements VolumeProvisioner {
  readonly name = 'skiff.io/hostpath';
  readonly root: string;
  /** `node`: the node whose filesystem holds DIR/volumes (the server's own node in `skiff up`). */
  constructor(
    dataDir: string,
    readonly node?: string,
  ) {
    this.root = resolve(dataDir, 'volumes');
  }

  private pathOf(pv: PvObj): string {
    const p = resolve(pv.spec?.hostPath?.path ?? '');
    const base = p.slice(this.root.length + 1);
    if (!p.startsWith(this.root + sep) || !/^pvc-[0-9a-z-]+$/.test(base)) throw new SkiffError('ERR_PROVISION_PATH', `refusing path ${p} outside ${this.root}`);
    return p;
  }

  async create(pv: PvObj): Promise<void> {
    await mkdir(this.pathOf(pv), { recursive: true, mode: 0o777 });
  }

  async delete(pv: PvObj): Promise<void> {
    await rm(this.pathOf(pv), { recursive: true, force: true });
  }
}
