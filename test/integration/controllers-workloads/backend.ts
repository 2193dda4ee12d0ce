/**
 * The API the integration tests run against: the real in-process apiserver from
 * test/helpers/apiserver.ts when it is in the tree, else FakeApiClient (reported in the test name).
 */
import { FakeApiClient } from '../../../src/client/fake.js';
import type { ApiClient } from '../../../src/client/types.js';

export interface Backend {
  client: ApiClient;
  real: boolean;
  close(): Promise<void>;
}

type Helper = { startTestApiserver(): Promise<{ client: ApiClient; url: string; close(): Promise<void> }> };

export async function startBackend(): Promise<Backend> {
  const path = '../../helpers/apiserver.js';
  const helper = (await import(path).catch(() => null)) as Helper | null;
  if (helper && process.env.SKIFF_TEST_FAKE_API !== '1') {
    const s = await helper.startTestApiserver();
    return { client: s.client, real: true, close: () => s.close() };
  }
  return { client: new FakeApiClient(), real: false, close: async () => undefined };
}
