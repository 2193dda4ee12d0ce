/** A stored value at a revision. `value` is the encoded object (JSON text, or ciphertext for Secrets). */
export interface KV {
  key: string;
  value: Buffer;
  /** revision of the last change to this key (the object's resourceVersion) */
  modRevision: number;
  createRevision: number;
}

export interface ListResult {
  items: KV[];
  /** the store revision the list was read at */
  revision: number;
  /** set when `limit` cut the list: the last key returned, to continue from */
  more: boolean;
}

export interface StoreEvent {
  type: 'put' | 'delete';
  key: string;
  /** new value for put; the last value for delete */
  value: Buffer;
  prevValue?: Buffer;
  modRevision: number;
  /** true when the put created the key */
  created: boolean;
}

export interface CreateGuard {
  key: string;
  modRevision: number;
}

export interface StoreWatch {
  stop(): void;
}

export type StoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Expired' | 'Unavailable';

export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, message: string, readonly currentRevision?: number) {
    super(message);
    this.name = 'StoreError';
  }
}

/**
 * The one storage contract. Revisions are global and increase with every write; an object's
 * resourceVersion is its modRevision. Watches replay from any revision not yet compacted and
 * fail with Expired (410) below it.
 */
export interface Store {
  readonly name: string;
  get(key: string): Promise<KV | null>;
  /** Keys with `prefix`, sorted, optionally at a past `revision`, after `startAfter`, at most `limit`. */
  list(prefix: string, opts?: { revision?: number; limit?: number; startAfter?: string }): Promise<ListResult>;
  /**
   * Fails with AlreadyExists. Returns the new revision. With `guard`, the write happens only if
   * `guard.key` is (still) at `guard.modRevision`, checked atomically with it; else it fails with
   * Conflict (an absent guard key is not at any revision). The apiserver guards a create in a
   * namespace with the namespace's revision, instead of reading the namespace first.
   */
  create(key: string, value: Buffer, guard?: CreateGuard): Promise<number>;
  /** Compare-and-swap on modRevision when `expectedRevision` is given; NotFound if absent. */
  update(key: string, value: Buffer, expectedRevision?: number): Promise<number>;
  /** Returns the deletion revision and the last value. */
  delete(key: string, expectedRevision?: number): Promise<{ revision: number; prev: KV }>;
  /** Events for keys with `prefix` with revision > fromRevision, in order. Throws Expired if compacted. */
  watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void, onError?: (err: Error) => void): Promise<StoreWatch>;
  currentRevision(): Promise<number>;
  compactedRevision(): Promise<number>;
  /** Drops history older than `revision`. */
  compact(revision: number): Promise<void>;
  /** Consistent online snapshot to a file (backup). */
  backup?(file: string): Promise<void>;
  close(): Promise<void>;
}
