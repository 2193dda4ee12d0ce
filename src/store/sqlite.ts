import Database from 'better-sqlite3';
import { closeSync, fdatasync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CreateGuard, KV, ListResult, Store, StoreEvent, StoreWatch } from './types.js';
import { StoreError } from './types.js';

type PendingWrite = { apply: () => { result: unknown; event: StoreEvent }; resolve: (v: unknown) => void; reject: (err: unknown) => void };
/** A committed batch waiting for its WAL fsync: its events and the callers to answer once durable. */
type Unsynced = { rev: number; events: StoreEvent[]; settle: () => void; fail: (err: Error) => void };

type Outcome = { ok: true; result: unknown; event: StoreEvent } | { ok: false; err: unknown };

type Row = { rev: number; key: string; value: Buffer; create_rev: number; deleted: number; prev_rev: number | null };

/**
 * The embedded store: one SQLite file in WAL mode. A write is durable when it returns: writes are
 * group-committed (one transaction per event-loop turn), then ONE fdatasync of the WAL file runs on
 * the libuv thread pool (synchronous=NORMAL, so SQLite itself does not fsync on the event loop);
 * callers are answered and watchers notified only after that fsync. Reads never expose a revision
 * that is not yet durable: they wait for it (at most one fsync). A `log` table keeps every revision
 * (for watch replay and list-at-revision) until compaction and holds the values; `current` maps each
 * live key to its latest revision (small rows: a value is written once per change, not twice).
 */
export class SqliteStore implements Store {
  readonly name = 'sqlite';
  private readonly db: Database.Database;
  private readonly watchers = new Set<{ prefix: string; cb: (ev: StoreEvent) => void }>();
  private rev: number;
  private compacted: number;
  private readonly stmts: Record<string, Database.Statement>;
  /** one group commit: the batch's writes in order, in one transaction */
  private readonly applyBatch: (batch: PendingWrite[], outcomes: Outcome[], startRev: number) => void;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private closed = false;
  /** highest revision whose WAL frames are fsynced (== rev when idle) */
  private durableRev: number;
  private readonly unsynced: Unsynced[] = [];
  private readonly readWaiters: { rev: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private syncing = false;
  /** the WAL file, fsynced after each group commit; null when SQLite syncs itself (no WAL, :memory:) */
  private walFd: number | null = null;
  private readonly asyncSync: boolean;
  private failed: Error | undefined;

  constructor(readonly file: string) {
    this.db = new Database(file);
    const mode = String(this.db.pragma('journal_mode = WAL', { simple: true }));
    this.asyncSync = mode === 'wal' && file !== '' && file !== ':memory:';
    this.db.pragma(this.asyncSync ? 'synchronous = NORMAL' : 'synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS log (rev INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL,
        create_rev INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, prev_rev INTEGER);
      CREATE INDEX IF NOT EXISTS log_key_rev ON log(key, rev);
      CREATE TABLE IF NOT EXISTS current (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, num INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta(name, num) VALUES ('compacted', 0), ('rev', 0);
    `);
    migrateCurrent(this.db);
    this.stmts = {
      get: this.db.prepare('SELECT c.key, c.rev, c.create_rev, l.value FROM current c JOIN log l ON l.rev = c.rev WHERE c.key = ?'),
      insLog: this.db.prepare('INSERT INTO log(rev, key, value, create_rev, deleted, prev_rev) VALUES (?, ?, ?, ?, ?, ?)'),
      // create-if-absent: no row changed means the key exists (and nothing was written)
      insCur: this.db.prepare('INSERT INTO current(key, rev, create_rev) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING'),
      setCur: this.db.prepare('UPDATE current SET rev = ? WHERE key = ?'),
      revOf: this.db.prepare('SELECT rev FROM current WHERE key = ?'),
      del: this.db.prepare('DELETE FROM current WHERE key = ?'),
      setRev: this.db.prepare("UPDATE meta SET num = ? WHERE name = 'rev'"),
      listCur: this.db.prepare('SELECT c.key, c.rev, c.create_rev, l.value FROM current c JOIN log l ON l.rev = c.rev WHERE c.key >= ? AND c.key < ? AND c.key > ? ORDER BY c.key LIMIT ?'),
      listAt: this.db.prepare(`SELECT l.key, l.rev, l.create_rev, l.value FROM log l
        JOIN (SELECT key, MAX(rev) AS rev FROM log WHERE key >= ? AND key < ? AND key > ? AND rev <= ? GROUP BY key) m ON l.rev = m.rev
        WHERE l.deleted = 0 ORDER BY l.key LIMIT ?`),
      since: this.db.prepare('SELECT rev, key, value, create_rev, deleted, prev_rev FROM log WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev'),
      prevVal: this.db.prepare('SELECT value FROM log WHERE rev = ?'),
    };
    this.applyBatch = this.db.transaction((batch: PendingWrite[], outcomes: Outcome[], startRev: number) => {
      for (const w of batch) {
        try {
          outcomes.push({ ok: true, ...w.apply() });
        } catch (err) {
          // A precondition failed before this write touched the database: only it fails.
          if (!(err instanceof StoreError)) throw err;
          outcomes.push({ ok: false, err });
        }
      }
      if (this.rev !== startRev) this.stmts.setRev.run(this.rev);
    });
    const meta = this.db.prepare('SELECT name, num FROM meta').all() as { name: string; num: number }[];
    const maxLog = (this.db.prepare('SELECT MAX(rev) AS m FROM log').get() as { m: number | null }).m ?? 0;
    this.rev = Math.max(maxLog, meta.find((m) => m.name === 'rev')?.num ?? 0);
    this.compacted = meta.find((m) => m.name === 'compacted')?.num ?? 0;
    this.durableRev = this.rev;
    if (this.asyncSync) {
      this.walFd = openSync(`${file}-wal`, 'r');
      // the WAL may have just been created: make its directory entry durable once
      const dirFd = openSync(dirname(file), 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
  }

  async get(key: string): Promise<KV | null> {
    const kv = this.getSync(key);
    // A live value at a durable revision is durable; absence may come from a delete not yet synced.
    await this.durable(kv ? kv.modRevision : this.rev);
    return kv;
  }

  /** Resolves once `rev` is durable (immediately when it already is). */
  private durable(rev: number): Promise<void> | void {
    if (rev <= this.durableRev) return;
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => this.readWaiters.push({ rev, resolve, reject }));
  }

  private getSync(key: string): KV | null {
    const r = this.stmts.get.get(key) as { key: string; rev: number; create_rev: number; value: Buffer } | undefined;
    return r ? { key: r.key, value: r.value, modRevision: r.rev, createRevision: r.create_rev } : null;
  }

  async list(prefix: string, opts: { revision?: number; limit?: number; startAfter?: string } = {}): Promise<ListResult> {
    const end = prefixEnd(prefix);
    const limit = opts.limit && opts.limit > 0 ? opts.limit + 1 : -1;
    const after = opts.startAfter ?? '';
    let rows: { key: string; rev: number; create_rev: number; value: Buffer }[];
    const revision = opts.revision && opts.revision > 0 ? opts.revision : this.rev;
    if (opts.revision && opts.revision > 0 && opts.revision < this.rev) {
      if (opts.revision < this.compacted) throw new StoreError('Expired', `revision ${opts.revision} has been compacted`, this.rev);
      rows = this.stmts.listAt.all(prefix, end, after, opts.revision, limit) as typeof rows;
    } else {
      rows = this.stmts.listCur.all(prefix, end, after, limit) as typeof rows;
    }
    const more = limit > 0 && rows.length === limit;
    if (more) rows.pop();
    await this.durable(revision);
    return { items: rows.map((r) => ({ key: r.key, value: r.value, modRevision: r.rev, createRevision: r.create_rev })), revision, more };
  }

  async create(key: string, value: Buffer, guard?: CreateGuard): Promise<number> {
    return this.enqueue(() => {
      if (guard) {
        const g = this.stmts.revOf.get(guard.key) as { rev: number } | undefined;
        if (g?.rev !== guard.modRevision) throw new StoreError('Conflict', `guard ${guard.key} is at ${g?.rev ?? 'nothing'}, not ${guard.modRevision}`);
      }
      const rev = this.rev + 1;
      if (this.stmts.insCur.run(key, rev, rev).changes === 0) throw new StoreError('AlreadyExists', `key ${key} exists`);
      this.rev = rev;
      this.stmts.insLog.run(rev, key, value, rev, 0, null);
      return { result: rev, event: { type: 'put', key, value, modRevision: rev, created: true } };
    });
  }

  async update(key: string, value: Buffer, expectedRevision?: number): Promise<number> {
    return this.enqueue(() => {
      const cur = this.checkCurrent(key, expectedRevision);
      const rev = ++this.rev;
      this.stmts.insLog.run(rev, key, value, cur.createRevision, 0, cur.modRevision);
      this.stmts.setCur.run(rev, key);
      return { result: rev, event: { type: 'put', key, value, prevValue: cur.value, modRevision: rev, created: false } };
    });
  }

  async delete(key: string, expectedRevision?: number): Promise<{ revision: number; prev: KV }> {
    return this.enqueue(() => {
      const cur = this.checkCurrent(key, expectedRevision);
      const rev = ++this.rev;
      this.stmts.insLog.run(rev, key, cur.value, cur.createRevision, 1, cur.modRevision);
      this.stmts.del.run(key);
      return { result: { revision: rev, prev: cur }, event: { type: 'delete', key, value: cur.value, prevValue: cur.value, modRevision: rev, created: false } };
    });
  }

  /** The live entry of `key` if the CAS precondition holds (checked before anything is written). */
  private checkCurrent(key: string, expectedRevision?: number): KV {
    const cur = this.getSync(key);
    if (!cur) throw new StoreError('NotFound', `key ${key} not found`);
    if (expectedRevision !== undefined && cur.modRevision !== expectedRevision) throw new StoreError('Conflict', `key ${key} is at ${cur.modRevision}, not ${expectedRevision}`);
    return cur;
  }

  /**
   * Group commit: writes issued in the same turn of the event loop (and those that arrive while a
   * commit is running) are applied in order in ONE transaction, so one fsync covers them all. Each
   * write is acknowledged only after that transaction has committed, and watchers are notified in
   * revision order right after the commit, before any caller sees its result.
   */
  private enqueue<T>(apply: () => { result: T; event: StoreEvent }): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('Unavailable', 'store is closed'));
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ apply, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const startRev = this.rev;
    const outcomes: Outcome[] = [];
    try {
      this.applyBatch(batch, outcomes, startRev);
    } catch (err) {
      // The transaction rolled back: nothing of this batch is stored.
      this.rev = startRev;
      for (const w of batch) w.reject(err);
      return;
    }
    const events = outcomes.flatMap((o) => (o.ok ? [o.event] : []));
    // Failed preconditions are answered after the sync too: they may rest on a not-yet-durable write.
    const settle = (): void => outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.result) : batch[i].reject(o.err)));
    if (this.walFd === null) {
      this.durableRev = this.rev;
      for (const ev of events) this.notify(ev);
      settle();
      return;
    }
    this.unsynced.push({ rev: this.rev, events, settle, fail: (err) => batch.forEach((w) => w.reject(err)) });
    this.syncWal();
  }

  /** One fdatasync at a time covers every batch committed before it started. */
  private syncWal(): void {
    if (this.syncing || !this.unsynced.length || this.walFd === null) return;
    this.syncing = true;
    const target = this.rev;
    fdatasync(this.walFd, (err) => {
      this.syncing = false;
      if (err) return this.failSync(err);
      this.durableRev = target;
      while (this.unsynced.length && this.unsynced[0].rev <= target) {
        const b = this.unsynced.shift()!;
        for (const ev of b.events) this.notify(ev);
        b.settle();
      }
      for (let i = this.readWaiters.length - 1; i >= 0; i--) {
        if (this.readWaiters[i].rev <= target) this.readWaiters.splice(i, 1)[0].resolve();
      }
      this.syncWal();
    });
  }

  /** The WAL could not be synced: nothing unsynced may be acknowledged; the store stops serving. */
  private failSync(err: Error): void {
    this.failed = new StoreError('Unavailable', `fsync of the write-ahead log failed: ${err.message}`);
    for (const b of this.unsynced.splice(0)) b.fail(this.failed);
    for (const w of this.readWaiters.splice(0)) w.reject(this.failed);
  }

  async watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void): Promise<StoreWatch> {
    if (fromRevision < this.compacted) throw new StoreError('Expired', `revision ${fromRevision} has been compacted (oldest ${this.compacted})`, this.rev);
    const end = prefixEnd(prefix);
    const w = { prefix, cb: onEvent };
    // Replay and subscribe in the same tick: better-sqlite3 is synchronous, so no write interleaves.
    const rows = this.stmts.since.all(fromRevision, prefix, end) as Row[];
    // Rows past the durable revision are still waiting for their fsync: they reach this watcher
    // through notify() like every other watcher's, so replaying them here would duplicate them.
    for (const r of rows) if (r.rev <= this.durableRev) onEvent(this.rowEvent(r));
    this.watchers.add(w);
    return { stop: () => void this.watchers.delete(w) };
  }

  private rowEvent(r: Row): StoreEvent {
    const prevValue = r.prev_rev ? (this.stmts.prevVal.get(r.prev_rev) as { value: Buffer } | undefined)?.value : undefined;
    return { type: r.deleted ? 'delete' : 'put', key: r.key, value: r.value, prevValue, modRevision: r.rev, created: !r.deleted && r.create_rev === r.rev };
  }

  async currentRevision(): Promise<number> {
    return this.durableRev;
  }

  async compactedRevision(): Promise<number> {
    return this.compacted;
  }

  async compact(revision: number): Promise<void> {
    const target = Math.min(revision, this.rev);
    if (target <= this.compacted) return;
    this.db.transaction(() => {
      // Keep each key's latest entry at or below the target so list-at-revision still works there.
      this.db.prepare('DELETE FROM log WHERE rev < ? AND rev NOT IN (SELECT MAX(rev) FROM log WHERE rev <= ? GROUP BY key)').run(target, target);
      this.db.prepare('DELETE FROM log WHERE rev < ? AND deleted = 1').run(target);
      this.db.prepare("UPDATE meta SET num = ? WHERE name = 'compacted'").run(target);
    })();
    this.compacted = target;
  }

  async backup(file: string): Promise<void> {
    await this.db.backup(file);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    while (this.unsynced.length && !this.failed) await new Promise<void>((r) => this.readWaiters.push({ rev: this.rev, resolve: r, reject: () => r() }));
    this.watchers.clear();
    this.db.close();
    if (this.walFd !== null) closeSync(this.walFd);
    this.walFd = null;
  }

  private notify(ev: StoreEvent): void {
    for (const w of this.watchers) if (ev.key.startsWith(w.prefix)) w.cb(ev);
  }
}

/**
 * Stores written before the live index lost its value column kept every value twice (in `log` and
 * in `current`): rebuild `current` as (key, rev, create_rev), values read from `log` by revision.
 */
function migrateCurrent(db: Database.Database): void {
  const cols = (db.prepare("SELECT name FROM pragma_table_info('current')").all() as { name: string }[]).map((c) => c.name);
  if (!cols.includes('value')) return;
  db.transaction(() => {
    db.exec(`
      CREATE TABLE current_v2 (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO current_v2(key, rev, create_rev) SELECT key, rev, create_rev FROM current;
      DROP TABLE current;
      ALTER TABLE current_v2 RENAME TO current;
    `);
  })();
}

/** The smallest string greater than every string with this prefix. */
export function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}
