// A real apiserver (build) over HTTPS with securityHooks on an on-disk SQLite store; for the
// security integration tests. Loopback only; everything lives in one temp dir removed on close.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { build } from '../../../src/apiserver/app.js';
import { SqliteStore } from '../../../src/store/sqlite.js';
import { loadEncryption } from '../../../src/store/encryption.js';
import { RestClient } from '../../../src/client/rest.js';
import type { ApiClient } from '../../../src/client/types.js';
import { ensurePki, tlsServerOptions, type Pki } from '../../../src/util/pki.js';
import { securityHooks, type SecurityHooks, type SecurityOptions } from '../../../src/apiserver/auth/index.js';

export interface Secured {
  dir: string;
  dbFile: string;
  url: string;
  port: number;
  pki: Pki;
  hooks: SecurityHooks;
  admin: RestClient;
  store: SqliteStore;
  close(): Promise<void>;
}

/** Forwards to a client made once the port is known (the hooks need a client before build). */
function lateClient(box: { c?: ApiClient }): ApiClient {
  return new Proxy({} as ApiClient, {
    get: (_t, k: keyof ApiClient) => (...args: unknown[]) => {
      if (!box.c) throw new Error('apiserver not listening yet');
      return (box.c[k] as (...a: unknown[]) => unknown)(...args);
    },
  });
}

/** `dir` reuses a data dir (restart tests); it is then left in place on close. */
export async function startSecuredApiserver(opts: { limits?: SecurityOptions['limits']; dir?: string } = {}): Promise<Secured> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'skiff-secured-'));
  const pki = await ensurePki(dir);
  const dbFile = join(dir, 'state.db');
  const store = new SqliteStore(dbFile);
  const box: { c?: RestClient } = {};
  const hooks = await securityHooks({ client: lateClient(box), dataDir: dir, pki, limits: opts.limits });
  const app = await build({ store, hooks, https: tlsServerOptions(pki), transformer: loadEncryption(dir) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  const admin = new RestClient({ server: url, ca: pki.caCert, cert: pki.adminCert, key: pki.adminKey });
  box.c = admin;
  await hooks.start();
  return {
    dir,
    dbFile,
    url,
    port,
    pki,
    hooks,
    admin,
    store,
    async close() {
      await hooks.stop();
      admin.close();
      await app.close();
      await store.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
