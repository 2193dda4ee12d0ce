import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SkiffError } from '../util/errors.js';
import { counter } from '../util/metrics.js';
import type { Store } from './types.js';

/**
 * Turns stored values into what lies on disk and back. The store calls it for every value of the
 * resources it covers (Secrets); values of other resources pass through unchanged.
 */
export interface ValueTransformer {
  toStorage(resource: string, plain: Buffer): Buffer;
  fromStorage(resource: string, stored: Buffer): Buffer;
}

/** One AES-256 key; the first key of the file encrypts, all of them decrypt. */
export interface EncryptionKey {
  name: string;
  /** 32 bytes, base64 */
  secret: string;
}

export interface EncryptionConfig {
  resources: string[];
  keys: EncryptionKey[];
}

/** Values on disk look like Kubernetes' aesgcm provider: `k8s:enc:aesgcm:v1:<key>:` + nonce + ciphertext + tag. */
const PREFIX = 'k8s:enc:aesgcm:v1:';
const NONCE = 12;
const TAG = 16;

const ops = counter({ name: 'skiff_encryption_operations_total', help: 'Encrypt/decrypt operations of the at-rest transformer', labelNames: ['op', 'result'] as const });

export const ENCRYPTION_FILE = 'encryption.json';

function keyBytes(k: EncryptionKey): Buffer {
  const b = Buffer.from(k.secret, 'base64');
  if (b.length !== 32) throw new SkiffError('ERR_ENCRYPTION_KEY', `encryption key "${k.name}" must be 32 bytes (base64), got ${b.length}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(k.name)) throw new SkiffError('ERR_ENCRYPTION_KEY', `invalid encryption key name "${k.name}"`);
  return b;
}

/** AES-GCM transformer over a key list: encrypts with keys[0], decrypts with whichever key the value names. */
export class AesGcmTransformer implements ValueTransformer {
  private readonly keys: Map<string, Buffer>;
  private readonly primary: string;
  private readonly resources: Set<string>;

  constructor(cfg: EncryptionConfig) {
    if (!cfg.keys.length) throw new SkiffError('ERR_ENCRYPTION_KEY', 'encryption config has no keys');
    this.keys = new Map(cfg.keys.map((k) => [k.name, keyBytes(k)]));
    this.primary = cfg.keys[0].name;
    this.resources = new Set(cfg.resources);
  }

  covers(resource: string): boolean {
    return this.resources.has(resource);
  }

  toStorage(resource: string, plain: Buffer): Buffer {
    if (!this.covers(resource)) return plain;
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.primary)!, nonce);
    cipher.setAAD(Buffer.from(resource));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    ops.inc({ op: 'encrypt', result: 'ok' });
    return Buffer.concat([Buffer.from(`${PREFIX}${this.primary}:`), nonce, body, cipher.getAuthTag()]);
  }

  fromStorage(resource: string, stored: Buffer): Buffer {
    const parsed = parseStored(stored);
    // Values written before encryption was enabled are read as they are; a rewrite encrypts them.
    if (!parsed) return stored;
    const key = this.keys.get(parsed.keyName);
    if (!key) {
      ops.inc({ op: 'decrypt', result: 'unknown_key' });
      throw new SkiffError('ERR_ENCRYPTION_UNKNOWN_KEY', `value of ${resource} was encrypted with key "${parsed.keyName}", which is not in ${ENCRYPTION_FILE}`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, parsed.nonce);
      decipher.setAAD(Buffer.from(resource));
      decipher.setAuthTag(parsed.tag);
      const out = Buffer.concat([decipher.update(parsed.body), decipher.final()]);
      ops.inc({ op: 'decrypt', result: 'ok' });
      return out;
    } catch (cause) {
      ops.inc({ op: 'decrypt', result: 'error' });
      throw new SkiffError('ERR_ENCRYPTION_DECRYPT', `cannot decrypt a value of ${resource} with key "${parsed.keyName}"`, { cause });
    }
  }

  /** True when a stored value is not encrypted with the current write key (plaintext or an older key). */
  isStale(resource: string, stored: Buffer): boolean {
    if (!this.covers(resource)) return false;
    return parseStored(stored)?.keyName !== this.primary;
  }
}

function parseStored(stored: Buffer): { keyName: string; nonce: Buffer; body: Buffer; tag: Buffer } | undefined {
  if (stored.length < PREFIX.length || stored.subarray(0, PREFIX.length).toString() !== PREFIX) return undefined;
  const end = stored.indexOf(':', PREFIX.length);
  if (end < 0) throw new SkiffError('ERR_ENCRYPTION_FORMAT', 'encrypted value has no key name');
  const keyName = stored.subarray(PREFIX.length, end).toString();
  const rest = stored.subarray(end + 1);
  if (rest.length < NONCE + TAG) throw new SkiffError('ERR_ENCRYPTION_FORMAT', 'encrypted value is truncated');
  return { keyName, nonce: rest.subarray(0, NONCE), body: rest.subarray(NONCE, rest.length - TAG), tag: rest.subarray(rest.length - TAG) };
}

function newKey(name: string): EncryptionKey {
  return { name, secret: randomBytes(32).toString('base64') };
}

function writeConfig(path: string, cfg: EncryptionConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function readEncryptionConfig(dataDir: string): EncryptionConfig | undefined {
  const path = join(dataDir, ENCRYPTION_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const cfg = JSON.parse(readFileSync(path, 'utf8')) as EncryptionConfig;
    if (!Array.isArray(cfg.keys) || !Array.isArray(cfg.resources)) throw new Error('needs "resources" and "keys" arrays');
    return cfg;
  } catch (cause) {
    throw new SkiffError('ERR_ENCRYPTION_CONFIG', `cannot read ${path}`, { cause });
  }
}

/**
 * Loads DIR/encryption.json (creating it, 0600, with one fresh key for `secrets` on first start)
 * and returns the transformer the store applies to Secrets.
 */
export function loadEncryption(dataDir: string): AesGcmTransformer {
  let cfg = readEncryptionConfig(dataDir);
  if (!cfg) {
    cfg = { resources: ['secrets'], keys: [newKey(`key-${Date.now()}`)] };
    writeConfig(join(dataDir, ENCRYPTION_FILE), cfg);
  }
  return new AesGcmTransformer(cfg);
}

/**
 * Key rotation step 1: puts a new key first (it encrypts from the next start or reload on), keeping
 * the old ones so existing values still decrypt. Returns the new key's name.
 */
export function rotateEncryptionKey(dataDir: string, name = `key-${Date.now()}`): string {
  const cfg = readEncryptionConfig(dataDir) ?? { resources: ['secrets'], keys: [] };
  if (cfg.keys.some((k) => k.name === name)) throw new SkiffError('ERR_ENCRYPTION_KEY', `key "${name}" already exists`);
  cfg.keys = [newKey(name), ...cfg.keys];
  writeConfig(join(dataDir, ENCRYPTION_FILE), cfg);
  return name;
}

/** Key rotation step 3 (after a rewrite): drops every key but the write key. */
export function pruneEncryptionKeys(dataDir: string): string[] {
  const cfg = readEncryptionConfig(dataDir);
  if (!cfg || cfg.keys.length < 2) return [];
  const dropped = cfg.keys.slice(1).map((k) => k.name);
  cfg.keys = cfg.keys.slice(0, 1);
  writeConfig(join(dataDir, ENCRYPTION_FILE), cfg);
  return dropped;
}

/**
 * Key rotation step 2: re-encrypts, with the current write key, every value under `prefix` that is
 * plaintext or under an older key (compare-and-swap per key, so concurrent writes win). Returns how
 * many values were rewritten.
 */
export async function rewriteEncrypted(store: Store, t: AesGcmTransformer, resource: string, prefix: string): Promise<number> {
  let rewritten = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list(prefix, { limit: 500, startAfter });
    for (const kv of page.items) {
      if (!t.isStale(resource, kv.value)) continue;
      const plain = t.fromStorage(resource, kv.value);
      try {
        await store.update(kv.key, t.toStorage(resource, plain), kv.modRevision);
        rewritten++;
      } catch (err) {
        // Changed or deleted since we read it: the writer already stored it with the current key.
        if ((err as { code?: string }).code !== 'Conflict' && (err as { code?: string }).code !== 'NotFound') throw err;
      }
    }
    if (!page.more || !page.items.length) return rewritten;
    startAfter = page.items[page.items.length - 1].key;
  }
}
