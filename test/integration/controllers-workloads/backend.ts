/**
 * The API the integration tests run against: the real in-process apiserver from
 * test/helpers/apiserver.ts when it is in the tree, else FakeApiClient (reported in the test name).
 */
import { FakeApiClient } from '../../../src/client/fake.js';
import type { ApiClient } from '../../../src/client/types.js';

export interface Backend {
  client: ApiClient;
  real: boolean;
  /** Runs `fn` at close, before the apiserver stops (last deferred first): watches must end before it closes. */
  defer(fn: () => Promise<void> | void): void;
  close(): Promise<void>;
}

type Helper = { startTestApiserver(): Promise<{ client: ApiClient; url: string; close(): Promise<void> }> };

export async function startBackend(): Promise<Backend> {
  const path = '../../helpers/apiserver.js';
  const helper = (await import(path).catch(() => null)) as Helper | null;
  const deferred: (() => Promise<void> | void)[] = [];
  const runDeferred = async (): Promise<void> => {
    for (const fn of deferred.splice(0).reverse()) await fn();
  };
  const defer = (fn: () => Promise<void> | void): void => void deferred.push(fn);
  if (helper && process.env.SKIFF_TEST_FAKE_API !== '1') {
    const s = await helper.startTestApiserver();
    return { client: s.client, real: true, defer, close: async () => (await runDeferred(), await s.close()) };
  }
  return { client: new FakeApiClient(), real: false, defer, close: runDeferred };
}
