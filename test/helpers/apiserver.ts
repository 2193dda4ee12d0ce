import type { AddressInfo } from 'node:net';
import { SqliteStore } from '../../src/store/sqlite.js';
import { build } from '../../src/apiserver/app.js';
import { RestClient } from '../../src/client/rest.js';
import type { ApiClient } from '../../src/client/types.js';
import type { ApiserverHooks } from '../../src/apiserver/hooks.js';
import type { Store } from '../../src/store/types.js';

export interface TestApiserver {
  client: ApiClient & { close(): void };
  url: string;
  store: Store;
  close(): Promise<void>;
}

/**
 * An in-process apiserver on an in-memory SQLite store, listening on a loopback port (plain HTTP,
 * no auth unless hooks are given). For integration tests of components against the real API.
 */
export async function startTestApiserver(opts: { hooks?: ApiserverHooks; store?: Store; serviceCIDR?: string } = {}): Promise<TestApiserver> {
  const store = opts.store ?? new SqliteStore(':memory:');
  const app = await build({ store, hooks: opts.hooks, serviceCIDR: opts.serviceCIDR });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const client = new RestClient({ server: url });
  return {
    client,
    url,
    store,
    async close() {
      client.close();
      await app.close();
      await store.close();
    },
  };
}
