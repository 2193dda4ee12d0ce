// The apiserver of scripts/bench/apiserver.ts in a process of its own, as a real apiserver runs
// apart from its clients: its CPU is measured alone and it gets a core of its own when one is free.
// Started by the bench with fork(): argv = sqlite FILE | etcd ENDPOINT. It answers the parent's
// messages: {type: 'cpu'} (process.cpuUsage()), {type: 'commits'} (when each watched create was
// acknowledged by the store, epoch ms), {type: 'profile-start' | 'profile-stop'} (SERVER_CPU_PROF), {type: 'close'}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from '../../src/apiserver/app.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { logger } from '../../src/util/log.js';
import { timedStore, type ServerMessage, type ServerRequest } from './apiserver-lib.js';

logger.level = process.env.SKIFF_LOG_LEVEL ?? 'silent';
const [backend, where] = process.argv.slice(2);
const backendStore = backend === 'sqlite' ? new SqliteStore(where) : new EtcdStore([where]);
const committed = new Map<string, number>();
const app = await build({ store: timedStore(backendStore, committed) });
await app.listen({ host: '127.0.0.1', port: 0 });
const send = (m: ServerMessage): void => void process.send!(m);
send({ type: 'ready', url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` });

// SERVER_CPU_PROF=DIR: each measured phase is profiled on its own (DIR/<phase>.cpuprofile)
const profiler = process.env.SERVER_CPU_PROF ? new Session() : undefined;
profiler?.connect();
if (profiler) mkdirSync(process.env.SERVER_CPU_PROF!, { recursive: true });
const post = (method: string, params?: object): Promise<unknown> => new Promise((resolve, reject) => profiler!.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));

process.on('message', (m: ServerRequest) => {
  if (m.type === 'cpu') send({ type: 'cpu', id: m.id, usage: process.cpuUsage() });
  else if (m.type === 'profile-start' && profiler) void post('Profiler.enable').then(() => post('Profiler.start')).then(() => send({ type: 'profile', id: m.id }));
  else if (m.type === 'profile-stop' && profiler) {
    void post('Profiler.stop').then((r) => {
      writeFileSync(join(process.env.SERVER_CPU_PROF!, `${m.name ?? 'phase'}.cpuprofile`), JSON.stringify((r as { profile: unknown }).profile));
      send({ type: 'profile', id: m.id });
    });
  } else if (m.type === 'profile-start' || m.type === 'profile-stop') send({ type: 'profile', id: m.id });
  else if (m.type === 'commits') send({ type: 'commits', id: m.id, commits: [...committed] });
  else if (m.type === 'close') {
    void (async () => {
      await app.close();
      await backendStore.close();
      send({ type: 'closed', id: m.id });
      process.exit(0);
    })();
  }
});
// the parent went away: do not linger
process.on('disconnect', () => process.exit(1));
