import Database from 'better-sqlite3';
import type { KV, ListResult, Store, StoreEvent, StoreWatch } from './types.js';
import { StoreError } from './types.js';

type Row = { rev: number; key: string; value: Buffer; create_rev: number; deleted: number; prev_rev: number | null };

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL, so a write is durable when
 * it returns. A `log` table keeps every revision (for watch replay and list-at-revision) until
 * compaction; `current` indexes the live value of each key.
 */
export class SqliteStore implements Store {
  readonly name = 'sqlite';
  private readonly db: Database.Database;
  private readonly watchers = new Set<{ prefix: string; cb: (ev: StoreEvent) => void }>();
  private rev: number;
  private compacted: number;
  private readonly stmts: Record<string, Database.Statement>;

  constructor(readonly file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS log (rev INTEGER PRIMARY KEY, key TEXT NOT NULL, value BLOB NOT NULL,
        create_rev INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, prev_rev INTEGER);
      CREATE INDEX IF NOT EXISTS log_key_rev ON log(key, rev);
      CREATE TABLE IF NOT EXISTS current (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, num INTEGER NOT NULL);
      INSERT OR IGNORE INTO meta(name, num) VALUES ('compacted', 0), ('rev', 0);
    `);
    this.stmts = {
      get: this.db.prepare('SELECT key, rev, create_rev, value FROM current WHERE key = ?'),
      insLog: this.db.prepare('INSERT INTO log(rev, key, value, create_rev, deleted, prev_rev) VALUES (?, ?, ?, ?, ?, ?)'),
      upsert: this.db.prepare('INSERT INTO current(key, rev, create_rev, value) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET rev = excluded.rev, value = excluded.value'),
      del: this.db.prepare('DELETE FROM current WHERE key = ?'),
      setRev: this.db.prepare("UPDATE meta SET num = ? WHERE name = 'rev'"),
      listCur: this.db.prepare('SELECT key, rev, create_rev, value FROM current WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?'),
      listAt: this.db.prepare(`SELECT l.key, l.rev, l.create_rev, l.value FROM log l
        JOIN (SELECT key, MAX(rev) AS rev FROM log WHERE key >= ? AND key < ? AND key > ? AND rev <= ? GROUP BY key) m ON l.rev = m.rev
        WHERE l.deleted = 0 ORDER BY l.key LIMIT ?`),
      since: this.db.prepare('SELECT rev, key, value, create_rev, deleted, prev_rev FROM log WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev'),
      prevVal: this.db.prepare('SELECT value FROM log WHERE rev = ?'),
    };
    const meta = this.db.prepare('SELECT name, num FROM meta').all() as { name: string; num: number }[];
    const maxLog = (this.db.prepare('SELECT MAX(rev) AS m FROM log').get() as { m: number | null }).m ?? 0;
    this.rev = Math.max(maxLog, meta.find((m) => m.name === 'rev')?.num ?? 0);
    this.compacted = meta.find((m) => m.name === 'compacted')?.num ?? 0;
  }

  async get(key: string): Promise<KV | null> {
    return this.getSync(key);
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
    return { items: rows.map((r) => ({ key: r.key, value: r.value, modRevision: r.rev, createRevision: r.create_rev })), revision, more };
  }

  async create(key: string, value: Buffer): Promise<number> {
    const rev = this.db.transaction(() => {
      if (this.getSync(key)) throw new StoreError('AlreadyExists', `key ${key} exists`);
      const rev = ++this.rev;
      this.stmts.insLog.run(rev, key, value, rev, 0, null);
      this.stmts.upsert.run(key, rev, rev, value);
      this.stmts.setRev.run(rev);
      return rev;
    })();
    this.notifyCreate(key, value, rev);
    return rev;
  }

  async update(key: string, value: Buffer, expectedRevision?: number): Promise<number> {
    let prev!: KV;
    const rev = this.db.transaction(() => {
      const cur = this.getSync(key);
      if (!cur) throw new StoreError('NotFound', `key ${key} not found`);
      if (expectedRevision !== undefined && cur.modRevision !== expectedRevision) throw new StoreError('Conflict', `key ${key} is at ${cur.modRevision}, not ${expectedRevision}`);
      prev = cur;
      const r = ++this.rev;
      this.stmts.insLog.run(r, key, value, cur.createRevision, 0, cur.modRevision);
      this.stmts.upsert.run(key, r, cur.createRevision, value);
      this.stmts.setRev.run(r);
      return r;
    })();
    this.notify({ type: 'put', key, value, prevValue: prev.value, modRevision: rev, created: false });
    return rev;
  }

  async delete(key: string, expectedRevision?: number): Promise<{ revision: number; prev: KV }> {
    let prev!: KV;
    const rev = this.db.transaction(() => {
      const cur = this.getSync(key);
      if (!cur) throw new StoreError('NotFound', `key ${key} not found`);
      if (expectedRevision !== undefined && cur.modRevision !== expectedRevision) throw new StoreError('Conflict', `key ${key} is at ${cur.modRevision}, not ${expectedRevision}`);
      prev = cur;
      const r = ++this.rev;
      this.stmts.insLog.run(r, key, cur.value, cur.createRevision, 1, cur.modRevision);
      this.stmts.del.run(key);
      this.stmts.setRev.run(r);
      return r;
    })();
    this.notify({ type: 'delete', key, value: prev.value, prevValue: prev.value, modRevision: rev, created: false });
    return { revision: rev, prev };
  }

  async watch(prefix: string, fromRevision: number, onEvent: (ev: StoreEvent) => void): Promise<StoreWatch> {
    if (fromRevision < this.compacted) throw new StoreError('Expired', `revision ${fromRevision} has been compacted (oldest ${this.compacted})`, this.rev);
    const end = prefixEnd(prefix);
    const w = { prefix, cb: onEvent };
    // Replay and subscribe in the same tick: better-sqlite3 is synchronous, so no write interleaves.
    const rows = this.stmts.since.all(fromRevision, prefix, end) as Row[];
    for (const r of rows) onEvent(this.rowEvent(r));
    this.watchers.add(w);
    return { stop: () => void this.watchers.delete(w) };
  }

  private rowEvent(r: Row): StoreEvent {
    const prevValue = r.prev_rev ? (this.stmts.prevVal.get(r.prev_rev) as { value: Buffer } | undefined)?.value : undefined;
    return { type: r.deleted ? 'delete' : 'put', key: r.key, value: r.value, prevValue, modRevision: r.rev, created: !r.deleted && r.create_rev === r.rev };
  }

  async currentRevision(): Promise<number> {
    return this.rev;
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
    this.watchers.clear();
    this.db.close();
  }

  private notify(ev: StoreEvent): void {
    for (const w of this.watchers) if (ev.key.startsWith(w.prefix)) w.cb(ev);
  }

  /** create() notifies here, outside the transaction. */
  private notifyCreate(key: string, value: Buffer, rev: number): void {
    this.notify({ type: 'put', key, value, modRevision: rev, created: true });
  }
}

/** The smallest string greater than every string with this prefix. */
export function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}
